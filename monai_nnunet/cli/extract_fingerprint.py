"""``nnUNetv2_extract_fingerprint -d 4 [-np N] [--verify_dataset_integrity] [--clean]``"""

from __future__ import annotations

import argparse

from monai_nnunet.cli._common import add_num_processes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-d", nargs="+", required=True, metavar="DATASET", help="dataset ids or names")
    add_num_processes(parser)
    parser.add_argument("--verify_dataset_integrity", action="store_true", help="fail on any problem found")
    parser.add_argument("--clean", action="store_true", help="recompute the fingerprint even if it exists")
    parser.add_argument("--verbose", action="store_true", help="accepted for nnU-Net compatibility")


def run_cli(args: argparse.Namespace) -> None:
    from monai_nnunet.planning.api import extract_fingerprint
    from monai_nnunet.utils.parallel import WorkerPool, default_num_processes

    with WorkerPool(min(args.np) if args.np else default_num_processes()) as pool:
        for dataset in args.d:
            extract_fingerprint(dataset, verify=args.verify_dataset_integrity, clean=args.clean, pool=pool)
