"""Seconds per case of ``nnUNetv2_predict``: this package against nnU-Net v2's predictor, same weights, one run.

    python benchmarks/predict.py [--cases 20] [--np 2] [--device cpu] [--nnunet-python PATH] [--preprocessed DIR]

What it does, in a temporary folder:

1. plans the shared Hippocampus data with this package (fingerprint + plans only; ``--preprocessed`` reuses a
   folder holding ``Dataset004_Hippocampus/nnUNetPlans.json``);
2. builds the 3d_fullres network (``PlansDynUNet``, random He initialisation, fixed seed) and writes it as an
   nnU-Net v2 results folder: ``plans.json``, ``dataset.json`` and ``fold_0/checkpoint_final.pth`` holding the
   weights in nnU-Net's ``PlainConvUNet`` layout (``monai_to_nnunet_state_dict``), so nnU-Net loads them natively
   and this package imports them through its weight mapping;
3. predicts the first ``--cases`` images of ``imagesTr`` with ``-f 0 -device cpu -npp N -nps N``, with and without
   test-time mirroring, alternating the two tools (ours, nnU-Net, ours, nnU-Net). Each run is a fresh
   ``nnUNetv2_predict`` process, timed from start to exit as a user sees it (start-up and model loading included);
4. prints seconds per case, the ratio, and how far the two tools' segmentations agree; one more run of ours with
   ``-mirror_batch_size 1`` (nnU-Net's one forward pass per flip) shows how much the batched flips contribute.

The weights are random, so many voxels sit near a tie between classes and the tools' last-bit differences
(nnU-Net accumulates the windows in float16 on the CPU, its Gaussian is centred half a voxel off for even patch
sizes) flip some of them; the agreement of trained models is higher.

nnU-Net runs from a side venv (``--nnunet-python``, ``NNUNET_PYTHON`` or ../nnunet_venv); without it only our
figures are printed. Both tools pick their CPU thread count the same way (one per core).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO_ROOT, nnunet_bin, nnunet_python, require_hippocampus  # noqa: E402

sys.path.insert(0, str(REPO_ROOT))

DATASET = "Dataset004_Hippocampus"
MODEL = "nnUNetTrainer__nnUNetPlans__3d_fullres"


def prepare(root: Path, data: Path, preprocessed: Path | None, num_processes: int) -> dict[str, Path]:
    """Folders, plans and the nnU-Net-format results folder; returns the nnU-Net folder variables."""
    import shutil

    import torch

    folders = {name: root / f"nnUNet_{name}" for name in ("raw", "preprocessed", "results")}
    for folder in folders.values():
        folder.mkdir(parents=True)
    (folders["raw"] / DATASET).symlink_to(data)
    for name, folder in folders.items():
        os.environ[f"nnUNet_{name}"] = str(folder)
    if preprocessed is not None:
        (folders["preprocessed"] / DATASET).mkdir()
        for name in ("nnUNetPlans.json", "dataset.json"):
            shutil.copy(preprocessed / DATASET / name, folders["preprocessed"] / DATASET / name)
    else:
        from monai_nnunet.planning import plan_and_preprocess

        plan_and_preprocess([4], configurations=["3d_fullres"], num_processes=num_processes, no_preprocessing=True)
    from monai_nnunet.dataset.dataset_json import load_dataset_json
    from monai_nnunet.networks import monai_to_nnunet_state_dict
    from monai_nnunet.planning.plans import PlansManager
    from monai_nnunet.training.configs import resolve_trainer
    from monai_nnunet.utils.files import load_json, save_json

    plans = load_json(folders["preprocessed"] / DATASET / "nnUNetPlans.json")
    dataset_json = load_json(data / "dataset.json")
    dataset = load_dataset_json(data / "dataset.json")
    configuration = PlansManager(plans).get_configuration("3d_fullres")
    torch.manual_seed(0)
    network = resolve_trainer(None).build_network(configuration, dataset.num_channels,
                                                  dataset.num_segmentation_heads, deep_supervision=False)
    model = folders["results"] / DATASET / MODEL
    save_json(plans, model / "plans.json")
    save_json(dataset_json, model / "dataset.json")
    checkpoint = {
        "network_weights": monai_to_nnunet_state_dict(network),
        "optimizer_state": None, "grad_scaler_state": None, "logging": {}, "current_epoch": 0,
        "trainer_name": "nnUNetTrainer", "inference_allowed_mirroring_axes": (0, 1, 2),
        "init_args": {"plans": plans, "configuration": "3d_fullres", "fold": 0, "dataset_json": dataset_json,
                      "device": "cpu"},
    }
    (model / "fold_0").mkdir(parents=True)
    torch.save(checkpoint, model / "fold_0" / "checkpoint_final.pth")
    return folders


def run(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    return elapsed


def _load() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def agreement(ours: Path, theirs: Path) -> tuple[float, float]:
    """(fraction of voxels with the same label, mean foreground Dice between the two tools) over all cases."""
    import numpy as np

    from monai_nnunet.dataset.io import read_segmentation

    same, total, dice = 0, 0, []
    for file in sorted(ours.glob("*.nii.gz")):
        a, _ = read_segmentation(file)
        b, _ = read_segmentation(theirs / file.name)
        same += int((a == b).sum())
        total += a.size
        for label in (1, 2):
            sa, sb = a == label, b == label
            if sa.any() or sb.any():
                dice.append(2 * (sa & sb).sum() / (sa.sum() + sb.sum()))
    return same / total, float(np.mean(dice)) if dice else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=20, help="images of imagesTr to predict (default 20)")
    parser.add_argument("--np", type=int, default=2, help="-npp and -nps of both tools (default 2)")
    parser.add_argument("--device", default="cpu", help="-device of both tools (default cpu)")
    parser.add_argument("--nnunet-python", default=None, help="python of a venv with nnunetv2 installed")
    parser.add_argument("--no-sequential-mirrors", dest="sequential_mirrors", action="store_false",
                        help="skip the extra run of ours with -mirror_batch_size 1")
    parser.add_argument("--preprocessed", type=Path, default=None,
                        help="an nnUNet_preprocessed folder with Dataset004_Hippocampus/nnUNetPlans.json (skips "
                             "planning)")
    args = parser.parse_args()
    data = require_hippocampus()
    nnunet = nnunet_python(args.nnunet_python)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folders = prepare(root, data, args.preprocessed, args.np)
        inputs = root / "input"
        inputs.mkdir()
        images = sorted((data / "imagesTr").glob("*_0000.nii.gz"))[: args.cases]
        for image in images:
            (inputs / image.name).symlink_to(image)
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), **{f"nnUNet_{k}": str(v) for k, v in folders.items()})
        common = ["-i", str(inputs), "-d", "4", "-c", "3d_fullres", "-f", "0", "-device", args.device,
                  "-npp", str(args.np), "-nps", str(args.np)]
        ours = [sys.executable, "-m", "monai_nnunet", "predict", "--disable_progress_bar"]
        tools = {"monai_nnunet": ours}
        if nnunet is not None:
            tools["nnU-Net v2"] = [str(nnunet_bin(nnunet, "nnUNetv2_predict")), "--disable_progress_bar"]
        times: dict[tuple[str, bool], float] = {}
        outputs: dict[tuple[str, bool], Path] = {}
        loads = []
        for tta in (True, False):
            for name, command in tools.items():
                out = root / f"out_{name.replace(' ', '_')}_{'tta' if tta else 'notta'}"
                extra = [] if tta else ["--disable_tta"]
                loads.append(_load())
                times[name, tta] = run([*command, *common, "-o", str(out), *extra], env)
                outputs[name, tta] = out
        if args.sequential_mirrors:  # ours with nnU-Net's one forward pass per flip: where the speed comes from
            loads.append(_load())
            sequential = run([*ours, *common, "-o", str(root / "out_sequential"), "-mirror_batch_size", "1"], env)
        print(f"nnUNetv2_predict, Hippocampus 3d_fullres (patch 40x56x40, random weights), {len(images)} cases of "
              f"imagesTr, fold 0, -device {args.device}, -npp {args.np} -nps {args.np}; one run per tool, wall time "
              f"of the whole command (start-up and model loading included)")
        print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load average before the runs "
              f"{' '.join(f'{x:.1f}' for x in loads)}")
        print(f"| TTA | {' | '.join(f'{n} s/case' for n in tools)} |" + (" nnU-Net / ours | same voxels | Dice "
                                                                          "between tools |" if nnunet else ""))
        print("| --- |" + " ---: |" * (len(tools) + (3 if nnunet else 0)))
        for tta in (True, False):
            per_case = [times[n, tta] / len(images) for n in tools]
            row = f"| {'mirroring' if tta else 'off'} | " + " | ".join(f"{t:.2f}" for t in per_case) + " |"
            if nnunet:
                same, dice = agreement(outputs["monai_nnunet", tta], outputs["nnU-Net v2", tta])
                row += f" {per_case[1] / per_case[0]:.2f} | {100 * same:.3f}% | {dice:.4f} |"
            print(row)
        if args.sequential_mirrors:
            line = (f"ours with -mirror_batch_size 1 (one pass per flip, as nnU-Net): "
                    f"{sequential / len(images):.2f} s/case")
            if nnunet:
                line += f", nnU-Net / ours {times['nnU-Net v2', True] / sequential:.2f}"
            print(line)
        if nnunet is None:
            print("(nnU-Net v2 not found: pass --nnunet-python to compare in the same run)")


if __name__ == "__main__":
    main()
