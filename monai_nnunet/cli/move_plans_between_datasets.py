"""``nnUNetv2_move_plans_between_datasets -s SOURCE -t TARGET -sp SOURCE_PLANS [-tp TARGET_PLANS]``"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-s", required=True, help="source dataset id or name (the one the plans were made for)")
    parser.add_argument("-t", required=True, help="target dataset id or name")
    parser.add_argument("-sp", required=True, help="source plans identifier, e.g. nnUNetPlans")
    parser.add_argument("-tp", default=None,
                        help="target plans identifier (default: the source's; a new name such as "
                             "nnUNetPlans_pretrained keeps the target's own nnUNetPlans)")


def run_cli(args: argparse.Namespace) -> None:
    from monai_nnunet.planning.move_plans import move_plans_between_datasets

    target = move_plans_between_datasets(args.s, args.t, args.sp, args.tp)
    print(f"plans written to {target}")
