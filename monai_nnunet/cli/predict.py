"""``nnUNetv2_predict -i IN -o OUT -d D -c C [-f 0 1 2 3 4 | all] [-tr NAME] [-p PLANS] [-chk checkpoint_final.pth]
[-step_size 0.5] [--disable_tta] [--save_probabilities] [-device cuda|cpu|mps] [-npp N] [-nps N]
[-prev_stage_predictions FOLDER]``

A cascade stage (``-c 3d_cascade_fullres``) takes the previous stage's segmentations of the same cases from
``-prev_stage_predictions`` (nnU-Net's option: ``CASE<file_ending>`` files, e.g. the output of ``-c 3d_lowres``);
without it the previous stage's model of the same results folder (same ``-tr``, ``-p``, ``-f``, ``-chk``) predicts
them first, into a temporary folder.
"""

from __future__ import annotations

import argparse
import tempfile


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-i", required=True, metavar="INPUT_FOLDER",
                        help="input folder: one file per channel, named CASE_0000<ending>, CASE_0001<ending>, ... "
                             "(the raw layout's naming, same file ending as the training data)")
    parser.add_argument("-o", required=True, metavar="OUTPUT_FOLDER",
                        help="output folder (created if missing): one segmentation per case, named CASE<ending>")
    parser.add_argument("-d", required=True, metavar="DATASET", help="dataset id or name of the trained model")
    parser.add_argument("-c", required=True, metavar="CONFIG", help="configuration, e.g. 3d_fullres")
    parser.add_argument("-f", nargs="+", default=["0", "1", "2", "3", "4"], metavar="FOLD",
                        help="folds to ensemble (default: 0 1 2 3 4); 'all' for the model trained on all cases")
    parser.add_argument("-tr", default="nnUNetTrainer", help="trainer (-tr) the model was trained with "
                                                             "(default nnUNetTrainer)")
    parser.add_argument("-p", default="nnUNetPlans", help="plans identifier (default nnUNetPlans)")
    parser.add_argument("-chk", default="checkpoint_final.pth", help="checkpoint file name "
                                                                      "(default checkpoint_final.pth)")
    parser.add_argument("-step_size", type=float, default=0.5,
                        help="sliding-window step as a fraction of the patch size, in (0, 1] (default 0.5)")
    parser.add_argument("--disable_tta", action="store_true", help="no mirroring test-time augmentation (faster)")
    parser.add_argument("--save_probabilities", action="store_true",
                        help="also write CASE.npz (probabilities) and CASE.json (+ CASE.pkl for nnU-Net), needed by nnUNetv2_ensemble")
    parser.add_argument("-device", default=None,
                        help="cuda, cpu or mps (default: cuda when available, else cpu); choose the GPU with "
                             "CUDA_VISIBLE_DEVICES")
    parser.add_argument("-npp", type=int, default=3, help="preprocessing worker processes (default 3; 0: none)")
    parser.add_argument("-nps", type=int, default=3, help="export worker processes (default 3; 0: none)")
    parser.add_argument("-mirror_batch_size", type=int, default=None,
                        help="window copies (unflipped + mirrored) per forward pass (default: the plans' training "
                             "batch size; 1: one pass per flip, as nnU-Net; lower it if the device runs out of memory)")
    parser.add_argument("--continue_prediction", action="store_true",
                        help="skip cases whose output already exists")
    parser.add_argument("--disable_progress_bar", action="store_true", help="no progress bar")
    parser.add_argument("-prev_stage_predictions", default=None, metavar="FOLDER",
                        help="a cascade stage (3d_cascade_fullres): the previous stage's segmentations of the same "
                             "cases (CASE<file_ending>); default: predict them first with the previous stage's model")


def run_cli(args: argparse.Namespace) -> None:
    from monai_nnunet.inference import Predictor, model_output_folder, parse_folds

    if args.npp < 0 or args.nps < 0:
        raise ValueError("-npp and -nps must be >= 0")
    folds = parse_folds(args.f)
    folder = model_output_folder(args.d, args.tr, args.p, args.c)
    settings = dict(step_size=args.step_size, use_mirroring=not args.disable_tta, device=args.device,
                    mirror_batch_size=args.mirror_batch_size, verbose=not args.disable_progress_bar)
    predictor = Predictor.from_results_folder(folder, folds, args.chk, **settings)
    run = dict(num_processes_preprocessing=args.npp, num_processes_export=args.nps)
    with tempfile.TemporaryDirectory(prefix="prev_stage_") as tmp:
        previous = args.prev_stage_predictions
        if predictor.previous_stage is not None and previous is None:
            previous_folder = model_output_folder(args.d, args.tr, args.p, predictor.previous_stage)
            written = Predictor.from_results_folder(previous_folder, folds, args.chk, **settings).predict_from_files(
                args.i, tmp, **run)
            print(f"{len(written)} case(s) predicted with {previous_folder.name} (the previous stage) first")
            previous = tmp
        written = predictor.predict_from_files(
            args.i, args.o, save_probabilities=args.save_probabilities, overwrite=not args.continue_prediction,
            previous_stage_predictions=previous, **run)
    print(f"{len(written)} case(s) written to {args.o} ({folder.name}, folds {' '.join(str(f) for f in folds)}, "
          f"device {predictor.device})")
