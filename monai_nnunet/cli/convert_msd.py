"""``monai-nnunet convert-msd -i TaskXX_Name [-overwrite_id ID] [-o $nnUNet_raw]`` (nnU-Net: convert_MSD_dataset)"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-i", "--input", required=True, help="the Decathlon task folder (TaskXX_Name)")
    parser.add_argument("-overwrite_id", type=int, default=None, help="dataset id (default: the task number)")
    parser.add_argument("-o", "--output_folder", default=None, help="raw data root (default: $nnUNet_raw)")
    parser.add_argument("-np", type=int, default=None, help="accepted for nnU-Net compatibility")


def run_cli(args: argparse.Namespace) -> None:
    from monai_nnunet import paths
    from monai_nnunet.dataset.msd import convert_msd

    target = convert_msd(args.input, args.output_folder or paths.nnunet_raw(), args.overwrite_id)
    print(f"Wrote {target}")
