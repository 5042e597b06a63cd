"""A short ResEnc M training on Hippocampus, predicted by this package and by nnU-Net v2's ``nnUNetv2_predict``:
how far the two tools' segmentations of the same checkpoint agree.

    python benchmarks/resenc_agreement.py [--configuration 3d_fullres] [--batch-size 2] [--iterations 30]
                                          [--cases 20] [--np 2] [--nnunet-python PATH]

What it does, in a temporary folder (the shared Hippocampus data is read in place):

1. fingerprint, ``-pl nnUNetPlannerResEncM`` plans and the ``--configuration`` cache (3d_fullres or 2d), all by
   this package; the plans get a configuration ``<configuration>_bs<N>`` (``inherits_from``, ``--batch-size`` N
   instead of the preset's 58 for 3d_fullres / 1618 for 2d, so a CPU step takes seconds), which nnU-Net reads as it
   is;
2. ``nnUNetv2_train 4 <configuration>_bs<N> 0 -p nnUNetResEncUNetMPlans`` for one epoch of ``--iterations``
   iterations (this package's trainer; its final validation runs too);
3. the checkpoint's weights written as an nnU-Net v2 results folder (``monai_to_nnunet_state_dict``: nnU-Net's
   ``ResidualEncoderUNet`` key layout, aliases included), beside the plans and dataset.json;
4. ``nnUNetv2_predict`` of the first ``--cases`` validation cases of fold 0, ``-device cpu``, with mirroring, by
   both tools: ours from our results folder, nnU-Net's from the converted one;
5. prints the fraction of voxels with the same label, the Dice between the tools per class (and each tool's
   Dice against the reference labels) and, from ``--save_probabilities``, the largest and mean absolute difference
   of the two tools' class probabilities (meaningful even when so short a training predicts background only).

nnU-Net runs from a side venv (``--nnunet-python``, ``NNUNET_PYTHON`` or ../nnunet_venv); without it the script
stops after training.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO_ROOT, nnunet_bin, nnunet_python, require_hippocampus  # noqa: E402

sys.path.insert(0, str(REPO_ROOT))

DATASET = "Dataset004_Hippocampus"
PLANS = "nnUNetResEncUNetMPlans"


def _run(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout[-2000:]}\n{result.stderr[:6000]}")
    return time.perf_counter() - start


def _write_nnunet_results(ours: Path, theirs: Path, config: str) -> None:
    """Our fold-0 checkpoint as an nnU-Net v2 results folder, converted as ``nnUNetv2_export_model_to_zip`` does
    (nnU-Net's key layout, ``init_args``, the run's own mirroring axes)."""
    import shutil

    import torch

    from monai_nnunet.model_sharing.nnunet_checkpoint import nnunet_loadable_checkpoint
    from monai_nnunet.utils.files import load_json

    (theirs / "fold_0").mkdir(parents=True)
    for name in ("plans.json", "dataset.json"):
        shutil.copyfile(ours / name, theirs / name)
    checkpoint = torch.load(ours / "fold_0" / "checkpoint_final.pth", map_location="cpu", weights_only=True)
    converted, in_nnunet_layout = nnunet_loadable_checkpoint(checkpoint, load_json(ours / "plans.json"),
                                                             load_json(ours / "dataset.json"), config, 0)
    if not in_nnunet_layout:
        raise SystemExit("the checkpoint's network has no nnU-Net layout")
    torch.save(converted, theirs / "fold_0" / "checkpoint_final.pth")


def _dice(a, b) -> float:
    return float(2 * (a & b).sum() / (a.sum() + b.sum())) if (a.any() or b.any()) else float("nan")


def agreement(ours: Path, theirs: Path, labels: Path) -> dict[str, float]:
    """Voxels with the same label, per-class Dice between the tools and of each tool against the labels."""
    import numpy as np

    from monai_nnunet.dataset.io import read_segmentation

    same = total = 0
    between, ours_gt, theirs_gt = {1: [], 2: []}, {1: [], 2: []}, {1: [], 2: []}
    for file in sorted(ours.glob("*.nii.gz")):
        a, _ = read_segmentation(file)
        b, _ = read_segmentation(theirs / file.name)
        g, _ = read_segmentation(labels / file.name)
        same += int((a == b).sum())
        total += a.size
        for c in (1, 2):
            between[c].append(_dice(a == c, b == c))
            ours_gt[c].append(_dice(a == c, g == c))
            theirs_gt[c].append(_dice(b == c, g == c))
    out = {"same_voxels": same / total, "cases": len(list(ours.glob("*.nii.gz")))}
    diffs = [np.abs(np.load(f)["probabilities"].astype(np.float64)
                    - np.load(theirs / f.name)["probabilities"].astype(np.float64)) for f in sorted(ours.glob("*.npz"))]
    if diffs:
        out["prob_max_diff"] = float(max(d.max() for d in diffs))
        out["prob_mean_diff"] = float(np.mean([d.mean() for d in diffs]))
    for c in (1, 2):
        out[f"dice_between_{c}"] = float(np.nanmean(between[c]))
        out[f"dice_ours_{c}"] = float(np.nanmean(ours_gt[c]))
        out[f"dice_nnunet_{c}"] = float(np.nanmean(theirs_gt[c]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configuration", default="3d_fullres", choices=["3d_fullres", "2d"])
    parser.add_argument("--batch-size", type=int, default=2, help="training batch size (default 2)")
    parser.add_argument("--iterations", type=int, default=30, help="training iterations, one epoch (default 30)")
    parser.add_argument("--cases", type=int, default=20, help="validation cases to predict (default 20)")
    parser.add_argument("--np", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--nnunet-python", default=None, help="python of a venv with nnunetv2 installed")
    args = parser.parse_args()
    config = f"{args.configuration}_bs{args.batch_size}"
    model_name = f"nnUNetTrainer__{PLANS}__{config}"
    data = require_hippocampus()
    nnunet = nnunet_python(args.nnunet_python)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folders = {name: root / f"nnUNet_{name}" for name in ("raw", "preprocessed", "results")}
        for folder in folders.values():
            folder.mkdir()
        (folders["raw"] / DATASET).symlink_to(data)
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), nnUNet_n_proc_DA=str(args.np),
                   **{f"nnUNet_{k}": str(v) for k, v in folders.items()})
        os.environ.update({f"nnUNet_{k}": str(v) for k, v in folders.items()})
        from monai_nnunet.planning.api import extract_fingerprint, plan_experiment, preprocess
        from monai_nnunet.utils.files import load_json, save_json

        start = time.perf_counter()
        extract_fingerprint(4, num_processes=args.np)
        plans_file = plan_experiment(4, "nnUNetPlannerResEncM")
        plans = load_json(plans_file)
        plans["configurations"][config] = {"inherits_from": args.configuration, "batch_size": args.batch_size}
        save_json(plans, plans_file)
        preprocess(4, PLANS, [args.configuration], num_processes=args.np)
        prep = time.perf_counter() - start
        ours_cmd = [sys.executable, "-m", "monai_nnunet"]
        train = _run([*ours_cmd, "train", "4", config, "0", "-p", PLANS, "-device", "cpu", "--epochs", "1",
                      "--iterations_per_epoch", str(args.iterations), "--val_every", "1"], env)
        model = folders["results"] / DATASET / model_name
        patch = plans["configurations"][args.configuration]["patch_size"]
        print(f"ResEnc M ({PLANS}, {config}: patch {patch}, batch {args.batch_size}), "
              f"1 epoch x {args.iterations} iterations on the CPU: planning + preprocessing {prep:.0f} s, training "
              f"{train:.0f} s")
        if nnunet is None:
            print("(nnU-Net v2 not found: pass --nnunet-python to compare the predictions)")
            return
        nnunet_results = root / "nnunet_results"
        _write_nnunet_results(model, nnunet_results / DATASET / model_name, config)
        val = load_json(folders["preprocessed"] / DATASET / "splits_final.json")[0]["val"][: args.cases]
        inputs = root / "input"
        inputs.mkdir()
        for case in val:
            (inputs / f"{case}_0000.nii.gz").symlink_to(data / "imagesTr" / f"{case}_0000.nii.gz")
        common = ["-i", str(inputs), "-d", "4", "-c", config, "-f", "0", "-p", PLANS, "-device", "cpu",
                  "-npp", str(args.np), "-nps", str(args.np), "--disable_progress_bar", "--save_probabilities"]
        t_ours = _run([*ours_cmd, "predict", *common, "-o", str(root / "ours")], env)
        t_theirs = _run([str(nnunet_bin(nnunet, "nnUNetv2_predict")), *common, "-o", str(root / "theirs")],
                        dict(env, nnUNet_results=str(nnunet_results)))
        result = agreement(root / "ours", root / "theirs", data / "labelsTr")
        print(f"nnUNetv2_predict of {result['cases']} fold-0 validation cases, -device cpu, mirroring on: ours "
              f"{t_ours:.0f} s, nnU-Net {t_theirs:.0f} s (whole commands)")
        print("| | anterior (1) | posterior (2) |\n| --- | ---: | ---: |")
        print(f"| Dice between the tools | {result['dice_between_1']:.4f} | {result['dice_between_2']:.4f} |")
        print(f"| Dice ours vs labels | {result['dice_ours_1']:.4f} | {result['dice_ours_2']:.4f} |")
        print(f"| Dice nnU-Net vs labels | {result['dice_nnunet_1']:.4f} | {result['dice_nnunet_2']:.4f} |")
        print(f"voxels with the same label: {100 * result['same_voxels']:.4f}%")
        if "prob_max_diff" in result:
            print(f"class probabilities, |ours - nnU-Net|: max {result['prob_max_diff']:.2e}, mean "
                  f"{result['prob_mean_diff']:.2e}")


if __name__ == "__main__":
    main()
