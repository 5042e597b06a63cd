"""``nnUNetv2_accumulate_crossval_results D -c CONFIG [-o FOLDER] [-f 0 1 2 3 4] [-p PLANS] [-tr TRAINER]``"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", help="dataset id or name")
    parser.add_argument("-c", required=True, help="configuration")
    parser.add_argument("-o", default=None,
                        help="output folder (default: the model folder's crossval_results_folds_0_1_2_3_4); an "
                             "existing folder must be empty")
    parser.add_argument("-f", nargs="+", default=["0", "1", "2", "3", "4"], help="folds (default 0 1 2 3 4)")
    parser.add_argument("-p", default="nnUNetPlans", help="plans identifier")
    parser.add_argument("-tr", default="nnUNetTrainer", help="trainer")


def run_cli(args: argparse.Namespace) -> None:
    from pathlib import Path

    from monai_nnunet.evaluation import accumulate_cv_results, folds_to_string
    from monai_nnunet.inference import model_output_folder, parse_folds

    folds = parse_folds(args.f)
    folder = model_output_folder(args.dataset, args.tr, args.p, args.c)
    if args.o is None:
        merged = folder / f"crossval_results_folds_{folds_to_string(folds)}"
    else:
        merged = Path(args.o)
        if merged.is_dir() and any(merged.iterdir()):
            raise FileExistsError(f"output folder {merged} exists and is not empty; give an empty or new folder")
    summary = accumulate_cv_results(folder, merged, folds)
    print(f"{folder.name}, folds {folds_to_string(folds)}: foreground mean Dice "
          f"{summary['foreground_mean']['Dice']:.4f} ({merged / 'summary.json'})")
