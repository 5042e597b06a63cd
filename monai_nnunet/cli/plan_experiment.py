"""``nnUNetv2_plan_experiment -d 4 [-pl PLANNER] [-gpu_memory_target GB] [-overwrite_plans_name NAME]``"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-d", nargs="+", required=True, metavar="DATASET", help="dataset ids or names")
    parser.add_argument("-pl", default="ExperimentPlanner", help="planner name or package.module:Class")
    parser.add_argument("-gpu_memory_target", type=float, default=None,
                        help="GPU memory target in GB (default: the planner's, 8; ResEnc L 24, XL 40)")
    parser.add_argument("-overwrite_target_spacing", type=float, nargs=3, default=None,
                        help="3d_fullres target spacing (z, y, x of the raw data)")
    parser.add_argument("-overwrite_plans_name", default=None,
                        help="plans identifier (default: the planner's, nnUNetPlans; nnUNetResEncUNetMPlans for "
                             "-pl nnUNetPlannerResEncM, ...)")


def run_cli(args: argparse.Namespace) -> None:
    from monai_nnunet.planning.api import plan_experiment

    for dataset in args.d:
        plan_experiment(dataset, args.pl, args.gpu_memory_target, args.overwrite_target_spacing,
                        args.overwrite_plans_name)
