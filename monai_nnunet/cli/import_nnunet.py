"""``monai-nnunet import-nnunet RESULTS_FOLDER -o MODEL.zip [-f 0 1 ...] [-chk checkpoint_final.pth]``: a model
trained by nnU-Net v2 itself (TRAINER__PLANS__CONFIG folder) as a MONAI bundle zip."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results_folder", help="nnU-Net v2's TRAINER__PLANS__CONFIG folder (plans.json, dataset.json, "
                                               "fold_N/checkpoint_final.pth)")
    parser.add_argument("-o", "--output", required=True, help="the bundle zip to write")
    parser.add_argument("-f", nargs="+", default=None, help="folds to include (default: every fold found)")
    parser.add_argument("-chk", default="checkpoint_final.pth", help="checkpoint file name")
    parser.add_argument("--torchscript", action="store_true", help="also write models/model.ts (network_def scripted)")
    parser.add_argument("--onnx", action="store_true",
                        help="also write models/*.onnx and configs/inference_onnx.yaml (ONNX Runtime; needs "
                             "monai-nnunet[onnx])")


def run_cli(args: argparse.Namespace) -> None:
    from monai_nnunet.bundle.export import import_nnunet

    zip_file = import_nnunet(args.results_folder, args.output, args.f, args.chk, args.torchscript, onnx=args.onnx)
    print(f"Wrote {zip_file}")
