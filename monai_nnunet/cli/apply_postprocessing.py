"""``nnUNetv2_apply_postprocessing -i INPUT -o OUTPUT -pp_pkl_file postprocessing.json|.pkl [-np N] [-plans_json F]
[-dataset_json F]``"""

from __future__ import annotations

import argparse

from monai_nnunet.cli._common import positive_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-i", required=True, help="folder of predictions")
    parser.add_argument("-o", required=True, help="output folder")
    parser.add_argument("-pp_pkl_file", required=True,
                        help="postprocessing.json, or postprocessing.pkl (then its postprocessing.json twin next to "
                             "it is read: pickles are never loaded)")
    parser.add_argument("-np", type=positive_int, default=None, help="worker processes")
    parser.add_argument("-plans_json", default=None, help="plans file (default: INPUT_FOLDER/plans.json)")
    parser.add_argument("-dataset_json", default=None, help="dataset.json (default: INPUT_FOLDER/dataset.json)")


def run_cli(args: argparse.Namespace) -> None:
    from monai_nnunet.postprocessing import apply_postprocessing_to_folder, load_postprocessing

    pp_fns, pp_fn_kwargs = load_postprocessing(args.pp_pkl_file)
    written = apply_postprocessing_to_folder(args.i, args.o, pp_fns, pp_fn_kwargs, args.plans_json,
                                             args.dataset_json, args.np)
    print(f"post-processed {len(written)} case(s) into {args.o}")
