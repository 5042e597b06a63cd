"""``nnUNetv2_evaluate_simple GT_FOLDER PRED_FOLDER -l 1 2 [-il IGNORE] [-o summary.json] [-np N] [--chill]``"""

from __future__ import annotations

import argparse
from pathlib import Path

from monai_nnunet.cli._common import positive_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("gt_folder", help="folder with the reference segmentations")
    parser.add_argument("pred_folder", help="folder with the predicted segmentations")
    parser.add_argument("-l", type=int, nargs="+", required=True, help="labels to evaluate")
    parser.add_argument("-il", type=int, default=None, help="ignore label")
    parser.add_argument("-o", default=None, help="summary file (default: PRED_FOLDER/summary.json)")
    parser.add_argument("-np", type=positive_int, default=None, help="worker processes")
    parser.add_argument("--chill", action="store_true",
                        help="evaluate the predictions that exist even if some reference cases were not predicted")


def _file_ending(folder: Path) -> str:
    files = sorted(p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise FileNotFoundError(f"reference folder {folder} is empty")
    for ending in (".nii.gz", ".nii", ".nrrd", ".mha", ".png", ".tif", ".tiff"):
        if files[0].endswith(ending):
            return ending
    return Path(files[0]).suffix


def run_cli(args: argparse.Namespace) -> None:
    from monai_nnunet.cli.evaluate_folder import _print_summary
    from monai_nnunet.evaluation import compute_metrics_on_folder

    gt = Path(args.gt_folder)
    if not gt.is_dir():
        raise FileNotFoundError(f"reference folder {gt} does not exist")
    output = args.o or str(Path(args.pred_folder) / "summary.json")
    summary = compute_metrics_on_folder(gt, args.pred_folder, args.l, _file_ending(gt), args.il, output, args.np,
                                        chill=args.chill)
    _print_summary(summary)
