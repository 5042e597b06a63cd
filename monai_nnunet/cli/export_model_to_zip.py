"""``nnUNetv2_export_model_to_zip -d D -o OUT.zip [-c CONFIG ...] [-tr T] [-p P] [-f F ...] [-chk NAME ...]
[--not_strict] [--exp_cv_preds]``"""

from __future__ import annotations

import argparse

from monai_nnunet.model_sharing import DEFAULT_EXPORT_CONFIGURATIONS, export_pretrained_model


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-d", required=True, metavar="DATASET", help="dataset name or id")
    parser.add_argument("-o", required=True, metavar="OUTPUT_ZIP", help="output file name")
    parser.add_argument("-c", nargs="+", default=list(DEFAULT_EXPORT_CONFIGURATIONS), metavar="CONFIG",
                        help=f"configurations (default: {' '.join(DEFAULT_EXPORT_CONFIGURATIONS)})")
    parser.add_argument("-tr", default="nnUNetTrainer", help="trainer (default nnUNetTrainer)")
    parser.add_argument("-p", default="nnUNetPlans", help="plans identifier (default nnUNetPlans)")
    parser.add_argument("-f", nargs="+", default=["0", "1", "2", "3", "4"], metavar="FOLD",
                        help="folds (default 0 1 2 3 4; 'all' for fold_all)")
    parser.add_argument("-chk", nargs="+", default=["checkpoint_final.pth"],
                        help="checkpoint names to export (default checkpoint_final.pth)")
    parser.add_argument("--not_strict", action="store_true",
                        help="skip configurations without a trained model instead of failing (nnU-Net 2.8.1 "
                             "declares this flag but ignores it)")
    parser.add_argument("--exp_cv_preds", action="store_true",
                        help="also export the cross-validation predictions")


def run_cli(args: argparse.Namespace) -> None:
    names = export_pretrained_model(args.d, args.o, configurations=args.c, trainer=args.tr, plans_identifier=args.p,
                                    folds=args.f, strict=not args.not_strict, save_checkpoints=args.chk,
                                    export_crossval_predictions=args.exp_cv_preds)
    models = sorted({"/".join(n.split("/")[:2]) for n in names if n.count("/") >= 2})
    print(f"{args.o}: {len(names)} files ({', '.join(models)})")
