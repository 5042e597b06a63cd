"""``nnUNetv2_find_best_configuration D [-c 2d 3d_fullres ...] [-tr ...] [-p ...] [-f ...] [-np N]
[--disable_ensembling] [--no_overwrite]``"""

from __future__ import annotations

import argparse

from monai_nnunet.cli._common import positive_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", help="dataset id or name")
    parser.add_argument("-p", nargs="+", default=["nnUNetPlans"], help="plans identifiers (default nnUNetPlans)")
    parser.add_argument("-c", nargs="+", default=["2d", "3d_fullres", "3d_lowres", "3d_cascade_fullres"],
                        help="configurations (default: 2d 3d_fullres 3d_lowres 3d_cascade_fullres; those the plans "
                             "do not define are skipped)")
    parser.add_argument("-tr", nargs="+", default=["nnUNetTrainer"], help="trainers (default nnUNetTrainer)")
    parser.add_argument("-np", type=positive_int, default=None, help="worker processes")
    parser.add_argument("-f", nargs="+", default=["0", "1", "2", "3", "4"], help="folds (default 0 1 2 3 4)")
    parser.add_argument("--disable_ensembling", action="store_true", help="compare single models only")
    parser.add_argument("--no_overwrite", action="store_true", help="reuse merged folders and ensembles already made")


def run_cli(args: argparse.Namespace) -> None:
    from monai_nnunet.evaluation import find_best_configuration
    from monai_nnunet.inference import parse_folds

    find_best_configuration(args.dataset, args.c, args.tr, args.p, parse_folds(args.f),
                            allow_ensembling=not args.disable_ensembling, num_processes=args.np,
                            overwrite=not args.no_overwrite)
