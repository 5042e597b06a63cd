"""``nnUNetv2_ensemble -i FOLDER FOLDER [...] -o OUTPUT [-np N] [--save_npz]``"""

from __future__ import annotations

import argparse

from monai_nnunet.cli._common import positive_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-i", nargs="+", required=True,
                        help="prediction folders written with --save_probabilities (CASE.npz + CASE.json)")
    parser.add_argument("-o", required=True, help="output folder")
    parser.add_argument("-np", type=positive_int, default=None, help="worker processes")
    parser.add_argument("--save_npz", action="store_true", help="also write the mean probabilities")


def run_cli(args: argparse.Namespace) -> None:
    from monai_nnunet.evaluation import ensemble_folders

    written = ensemble_folders(args.i, args.o, args.save_npz, args.np)
    print(f"{len(written)} case(s) ensembled into {args.o}")
