"""``nnUNetv2_preprocess -d 4 [-plans_name nnUNetPlans] [-c 2d 3d_fullres] [-np N] [--npz]``"""

from __future__ import annotations

import argparse

from monai_nnunet.cli._common import add_num_processes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-d", nargs="+", required=True, metavar="DATASET", help="dataset ids or names")
    parser.add_argument("-plans_name", default="nnUNetPlans", help="plans identifier (default nnUNetPlans)")
    parser.add_argument("-c", nargs="+", default=["2d", "3d_fullres", "3d_lowres"], metavar="CONFIG",
                        help="configurations (default: 2d 3d_fullres 3d_lowres; absent ones are skipped)")
    add_num_processes(parser)
    parser.add_argument("--npz", action="store_true", help="compressed cache (.npz) instead of memory-mappable .npy")
    parser.add_argument("--verbose", action="store_true", help="accepted for nnU-Net compatibility")


def run_cli(args: argparse.Namespace) -> None:
    from monai_nnunet.planning.api import preprocess
    from monai_nnunet.utils.parallel import WorkerPool, default_num_processes

    with WorkerPool(min(args.np) if args.np else default_num_processes()) as pool:
        for dataset in args.d:
            preprocess(dataset, args.plans_name, args.c, compressed=args.npz, pool=pool)
