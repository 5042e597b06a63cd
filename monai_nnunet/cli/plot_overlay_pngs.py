"""``nnUNetv2_plot_overlay_pngs -d D -o OUT [-np N] [-channel_idx 0] [--use_raw] [-p PLANS] [-c CONFIG]
[-overlay_intensity 0.6]``: one PNG per case, the slice with the most foreground with its labels overlaid."""

from __future__ import annotations

import argparse

from monai_nnunet.cli._common import positive_int
from monai_nnunet.utils.overlay_plots import generate_overlays_from_preprocessed, generate_overlays_from_raw


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Plots png overlays of the slice with the most foreground. Note that this disregards "
                          "spacing information!")
    parser.add_argument("-d", required=True, metavar="DATASET", help="dataset name or id")
    parser.add_argument("-o", required=True, metavar="OUTPUT_FOLDER", help="output folder")
    parser.add_argument("-np", type=positive_int, default=None,
                        help="worker processes (default: $nnUNet_def_n_proc or the CPU count, at most 8)")
    parser.add_argument("-channel_idx", type=int, default=0, help="channel index used (0 = _0000). Default: 0")
    parser.add_argument("--use_raw", action="store_true",
                        help="use the raw data (imagesTr/labelsTr); else the preprocessed cache")
    parser.add_argument("-p", default="nnUNetPlans",
                        help="plans identifier. Only used if --use_raw is not set! Default: nnUNetPlans")
    parser.add_argument("-c", default=None,
                        help="configuration name. Only used if --use_raw is not set! Default: 3d_fullres if "
                             "available, else 2d")
    parser.add_argument("-overlay_intensity", type=float, default=0.6,
                        help="overlay intensity. Higher = brighter/less transparent. Default: 0.6")


def run_cli(args: argparse.Namespace) -> None:
    if args.use_raw:
        written = generate_overlays_from_raw(args.d, args.o, args.np, args.channel_idx, args.overlay_intensity)
    else:
        written = generate_overlays_from_preprocessed(args.d, args.o, args.np, args.channel_idx, args.c, args.p,
                                                      args.overlay_intensity)
    print(f"{len(written)} overlay(s) written to {args.o}")
