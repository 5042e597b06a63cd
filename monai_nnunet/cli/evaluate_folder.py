"""``nnUNetv2_evaluate_folder GT_FOLDER PRED_FOLDER -djfile dataset.json [-pfile plans.json] [-o summary.json]
[-np N] [--chill]``"""

from __future__ import annotations

import argparse

from monai_nnunet.cli._common import positive_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("gt_folder", help="folder with the reference segmentations")
    parser.add_argument("pred_folder", help="folder with the predicted segmentations")
    parser.add_argument("-djfile", required=True, help="dataset.json (labels, regions, ignore label, file ending)")
    parser.add_argument("-pfile", default=None, help="plans.json (accepted for nnU-Net compatibility; checked only)")
    parser.add_argument("-o", default=None, help="summary file (default: PRED_FOLDER/summary.json)")
    parser.add_argument("-np", type=positive_int, default=None, help="worker processes")
    parser.add_argument("--chill", action="store_true",
                        help="evaluate the predictions that exist even if some reference cases were not predicted")


def run_cli(args: argparse.Namespace) -> None:
    from monai_nnunet.evaluation import evaluate_folder
    from monai_nnunet.planning.plans import PlansManager

    if args.pfile is not None:
        PlansManager(args.pfile)
    summary = evaluate_folder(args.gt_folder, args.pred_folder, args.djfile, args.o, args.np, chill=args.chill)
    _print_summary(summary)


def _print_summary(summary: dict) -> None:
    for key, values in summary["mean"].items():
        print(f"{key}: Dice {values['Dice']:.4f}  IoU {values['IoU']:.4f}")
    fg = summary["foreground_mean"]
    print(f"foreground mean: Dice {fg['Dice']:.4f}  IoU {fg['IoU']:.4f} ({len(summary['metric_per_case'])} cases)")
