"""``nnUNetv2_plan_and_preprocess -d 4 [-c 2d 3d_fullres] [-np N] [--verify_dataset_integrity] ...``"""

from __future__ import annotations

import argparse

from monai_nnunet.cli._common import add_num_processes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-d", nargs="+", required=True, metavar="DATASET",
                        help="dataset ids or names (4, 004 or Dataset004_Hippocampus)")
    parser.add_argument("-c", nargs="+", default=["2d", "3d_fullres", "3d_lowres"], metavar="CONFIG",
                        help="configurations to preprocess (default: 2d 3d_fullres 3d_lowres; absent ones are skipped)")
    add_num_processes(parser, help_extra="; one pool serves every stage, the smallest value is used if several")
    parser.add_argument("-npfp", type=int, default=None, help="accepted for nnU-Net compatibility (same pool as -np)")
    parser.add_argument("--verify_dataset_integrity", action="store_true",
                        help="check every file and fail on any problem before anything is written")
    parser.add_argument("--clean", action="store_true", help="recompute the fingerprint even if it exists")
    parser.add_argument("--no_pp", action="store_true", help="fingerprint and plans only, no preprocessing")
    parser.add_argument("-pl", default="ExperimentPlanner", help="planner name or package.module:Class")
    parser.add_argument("-gpu_memory_target", type=float, default=None,
                        help="GPU memory target in GB (default: the planner's, 8; ResEnc L 24, XL 40)")
    parser.add_argument("-overwrite_target_spacing", type=float, nargs=3, default=None,
                        help="3d_fullres target spacing (z, y, x of the raw data)")
    parser.add_argument("-overwrite_plans_name", default=None,
                        help="plans identifier (default: the planner's, nnUNetPlans; nnUNetResEncUNetMPlans for "
                             "-pl nnUNetPlannerResEncM, ...)")
    parser.add_argument("--npz", action="store_true", help="compressed cache (.npz) instead of memory-mappable .npy")
    parser.add_argument("--verbose", action="store_true", help="accepted for nnU-Net compatibility")


def run_cli(args: argparse.Namespace) -> None:
    from monai_nnunet.planning.api import plan_and_preprocess

    plan_and_preprocess(
        args.d, configurations=args.c, num_processes=min(args.np) if args.np else None,
        verify=args.verify_dataset_integrity, clean=args.clean, planner=args.pl,
        gpu_memory_target=args.gpu_memory_target, overwrite_target_spacing=args.overwrite_target_spacing,
        overwrite_plans_name=args.overwrite_plans_name, no_preprocessing=args.no_pp, compressed=args.npz,
    )
