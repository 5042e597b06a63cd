"""Post-processing on real label maps: our ``determine_postprocessing`` and nnU-Net v2's, side by side.

    python benchmarks/postprocessing_hippocampus.py [--cases 40] [--seed 0] [--nnunet-python PATH] [--workdir DIR]

The "predictions" are the first ``--cases`` Hippocampus reference label maps (``../shared/data``, or
``MONAI_NNUNET_HIPPOCAMPUS``, read in place) spoiled deterministically: 2x2x2 specks of label 1 dropped into the
background of most cases (keeping label 1's largest component should help), and in some cases label 2 split by
emptying one slice through its middle (keeping its largest piece should hurt). Both tools choose the post-processing
on the same folder (with 8 workers off: ``-np 1``); the script prints the decisions, the foreground mean Dice before
and after, each tool's time, and whether the decisions, Dice values (to 1e-12) and post-processed label maps agree.
nnU-Net runs from a side venv (``--nnunet-python``, ``NNUNET_PYTHON`` or ``../nnunet_venv``); without one, only our
figures are printed.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import fresh_dir, nnunet_python, require_hippocampus  # noqa: E402
from monai_nnunet.dataset.io import read_segmentation, write_segmentation  # noqa: E402
from monai_nnunet.postprocessing import determine_postprocessing  # noqa: E402

PLANS = {"dataset_name": "Dataset004_Hippocampus", "plans_name": "nnUNetPlans", "image_reader_writer": "SimpleITKIO",
         "transpose_forward": [0, 1, 2], "transpose_backward": [0, 1, 2], "configurations": {},
         "label_manager": "LabelManager"}


def spoil(seg: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = seg.copy()
    for _ in range(int(rng.integers(0, 3))):
        for _attempt in range(50):
            z, y, x = (int(rng.integers(0, max(1, s - 2))) for s in seg.shape)
            if not out[z:z + 2, y:y + 2, x:x + 2].any() and not out[max(0, z - 1):z + 3, max(0, y - 1):y + 3,
                                                                    max(0, x - 1):x + 3].any():
                out[z:z + 2, y:y + 2, x:x + 2] = 1
                break
    if rng.random() < 0.4 and (seg == 2).any():
        zs = np.flatnonzero((seg == 2).any(axis=(1, 2)))
        middle = int(zs[len(zs) // 2])
        out[middle][out[middle] == 2] = 0
    return out


def nan_equal(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(nan_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(nan_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= 1e-12
    return a == b


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--nnunet-python", default=None)
    parser.add_argument("--workdir", default="/tmp/postprocessing_hippocampus")
    args = parser.parse_args()
    data = require_hippocampus()
    work = fresh_dir(Path(args.workdir))
    rng = np.random.default_rng(args.seed)
    labels = sorted((data / "labelsTr").glob("*.nii.gz"))[:args.cases]
    dataset = json.loads((data / "dataset.json").read_text())
    folders = {tool: work / tool for tool in ("ours", "nnunet")}
    for label_file in labels:
        seg, props = read_segmentation(label_file)
        spoiled = spoil(seg[0], rng)
        for folder in folders.values():
            write_segmentation(spoiled, folder / label_file.name, props)
    for folder in folders.values():
        (folder / "dataset.json").write_text(json.dumps(dataset))
        (folder / "plans.json").write_text(json.dumps(PLANS))
    reference = fresh_dir(work / "ref")
    for label_file in labels:
        (reference / label_file.name).symlink_to(label_file)

    start = time.perf_counter()
    determine_postprocessing(folders["ours"], reference, num_processes=1)
    ours_s = time.perf_counter() - start
    ours = json.loads((folders["ours"] / "postprocessing.json").read_text())
    print(f"{len(labels)} cases; ours: steps {ours['postprocessing_kwargs']}, foreground mean Dice "
          f"{ours['input_folder']['foreground_mean']['Dice']:.5f} -> {ours['postprocessed']['foreground_mean']['Dice']:.5f}"
          f" ({ours_s:.1f} s)")
    python = nnunet_python(args.nnunet_python)
    if python is None:
        print("no nnU-Net side venv: comparison skipped")
        return
    script = ("import sys; from nnunetv2.postprocessing.remove_connected_components import determine_postprocessing;"
              " determine_postprocessing(sys.argv[1], sys.argv[2], None, None, num_processes=1)")
    start = time.perf_counter()
    subprocess.run([str(python), "-c", script, str(folders["nnunet"]), str(reference)], check=True,
                   stdout=subprocess.DEVNULL)
    theirs_s = time.perf_counter() - start
    theirs = json.loads((folders["nnunet"] / "postprocessing.json").read_text())
    same_arrays = all(
        np.array_equal(read_segmentation(folders["ours"] / "postprocessed" / f.name)[0],
                       read_segmentation(folders["nnunet"] / "postprocessed" / f.name)[0]) for f in labels)
    print(f"nnU-Net: steps {theirs['postprocessing_kwargs']}, foreground mean Dice "
          f"{theirs['input_folder']['foreground_mean']['Dice']:.5f} -> "
          f"{theirs['postprocessed']['foreground_mean']['Dice']:.5f} ({theirs_s:.1f} s, including its start-up)")
    print(f"same decisions: {ours['postprocessing_kwargs'] == theirs['postprocessing_kwargs']}; same Dice values "
          f"(1e-12): {nan_equal(ours, theirs)}; same post-processed label maps: {same_arrays}")


if __name__ == "__main__":
    main()
