"""``nnUNetv2_determine_postprocessing -i PREDICTIONS -ref REFERENCE [-plans_json F] [-dataset_json F] [-np N]
[--remove_postprocessed]``"""

from __future__ import annotations

import argparse

from monai_nnunet.cli._common import positive_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-i", required=True, help="folder of predictions of every training case (e.g. a model's "
                                                  "crossval_results_folds_0_1_2_3_4)")
    parser.add_argument("-ref", required=True, help="folder with the reference segmentations")
    parser.add_argument("-plans_json", default=None, help="plans file (default: INPUT_FOLDER/plans.json)")
    parser.add_argument("-dataset_json", default=None, help="dataset.json (default: INPUT_FOLDER/dataset.json)")
    parser.add_argument("-np", type=positive_int, default=None, help="worker processes")
    parser.add_argument("--remove_postprocessed", action="store_true",
                        help="do not keep the post-processed cases (INPUT_FOLDER/postprocessed)")


def run_cli(args: argparse.Namespace) -> None:
    from monai_nnunet.postprocessing import determine_postprocessing

    determine_postprocessing(args.i, args.ref, args.plans_json, args.dataset_json, args.np,
                             keep_postprocessed_files=not args.remove_postprocessed)
