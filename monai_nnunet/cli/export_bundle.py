"""``monai-nnunet export-bundle -d 4 -c 3d_fullres -f 0 [1 ...] [-tr NAME] [-p PLANS] [--checkpoint final|best]
-o MODEL.zip [--torchscript] [--onnx]``"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-d", required=True, help="dataset id or name")
    parser.add_argument("-c", required=True, help="configuration (e.g. 3d_fullres)")
    parser.add_argument("-f", nargs="+", default=["0"], help="folds to include (their logits are averaged), or all")
    parser.add_argument("-tr", default="nnUNetTrainer", help="trainer name the model was trained with")
    parser.add_argument("-p", default="nnUNetPlans", help="plans identifier")
    parser.add_argument("--checkpoint", choices=["final", "best"], default="final", help="which checkpoint (final)")
    parser.add_argument("-o", "--output", required=True, help="the bundle zip to write")
    parser.add_argument("--torchscript", action="store_true", help="also write models/model.ts (network_def scripted)")
    parser.add_argument("--onnx", action="store_true",
                        help="also write models/*.onnx and configs/inference_onnx.yaml (ONNX Runtime; needs "
                             "monai-nnunet[onnx])")


def run_cli(args: argparse.Namespace) -> None:
    from monai_nnunet.bundle.export import export_bundle
    from monai_nnunet.inference.model_loading import model_output_folder

    folder = model_output_folder(args.d, args.tr, args.p, args.c)
    zip_file = export_bundle(folder, args.output, args.f, f"checkpoint_{args.checkpoint}.pth", args.torchscript,
                             onnx=args.onnx)
    print(f"Wrote {zip_file}")
