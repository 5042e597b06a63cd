"""``nnUNetv2_predict_from_modelfolder -i IN -o OUT -m MODEL_FOLDER [-f 0 1 2 3 4 | all] [-step_size 0.5]
[--disable_tta] [--verbose] [--save_probabilities] [--continue_prediction] [-chk checkpoint_final.pth] [-npp N]
[-nps N] [-prev_stage_predictions FOLDER] [-device cuda|cpu|mps] [--disable_progress_bar]``

``nnUNetv2_predict`` on a model folder given directly (``.../DatasetXXX_Name/TRAINER__PLANS__CONFIG``, e.g. one
installed from a zip, or anywhere else), so ``nnUNet_results`` need not be set.
"""

from __future__ import annotations

import argparse

from monai_nnunet.inference import Predictor, parse_folds


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-i", required=True, metavar="INPUT_FOLDER",
                        help="input folder: one file per channel, named CASE_0000<ending>, CASE_0001<ending>, ...")
    parser.add_argument("-o", required=True, metavar="OUTPUT_FOLDER",
                        help="output folder (created if missing): one segmentation per case, named CASE<ending>")
    parser.add_argument("-m", required=True, metavar="MODEL_FOLDER",
                        help="the trained model's folder (plans.json, dataset.json, fold_X/ subfolders)")
    parser.add_argument("-f", nargs="+", default=["0", "1", "2", "3", "4"], metavar="FOLD",
                        help="folds to ensemble (default: 0 1 2 3 4); 'all' for the model trained on all cases")
    parser.add_argument("-step_size", type=float, default=0.5,
                        help="sliding-window step as a fraction of the patch size, in (0, 1] (default 0.5)")
    parser.add_argument("--disable_tta", action="store_true", help="no mirroring test-time augmentation (faster)")
    parser.add_argument("--verbose", action="store_true", help="print what is being predicted")
    parser.add_argument("--save_probabilities", action="store_true",
                        help="also write CASE.npz (probabilities) and CASE.json (+ CASE.pkl for nnU-Net)")
    parser.add_argument("--continue_prediction", "--c", action="store_true",
                        help="skip cases whose output already exists")
    parser.add_argument("-chk", default="checkpoint_final.pth",
                        help="checkpoint file name (default checkpoint_final.pth)")
    parser.add_argument("-npp", type=int, default=3, help="preprocessing worker processes (default 3; 0: none)")
    parser.add_argument("-nps", type=int, default=3, help="export worker processes (default 3; 0: none)")
    parser.add_argument("-prev_stage_predictions", default=None, metavar="FOLDER",
                        help="a cascade stage (3d_cascade_fullres): the previous stage's segmentations of the same "
                             "cases (CASE<file_ending>), required for cascade stages as in nnU-Net")
    parser.add_argument("-device", default=None,
                        help="cuda, cpu or mps (default: cuda when available, else cpu); choose the GPU with "
                             "CUDA_VISIBLE_DEVICES")
    parser.add_argument("-mirror_batch_size", type=int, default=None,
                        help="window copies (unflipped + mirrored) per forward pass (default: the plans' training "
                             "batch size; 1: one pass per flip, as nnU-Net)")
    parser.add_argument("--disable_progress_bar", action="store_true", help="no progress bar")


def run_cli(args: argparse.Namespace) -> None:
    if args.npp < 0 or args.nps < 0:
        raise ValueError("-npp and -nps must be >= 0")
    folds = parse_folds(args.f)
    predictor = Predictor.from_results_folder(
        args.m, folds, args.chk, step_size=args.step_size, use_mirroring=not args.disable_tta, device=args.device,
        mirror_batch_size=args.mirror_batch_size, verbose=not args.disable_progress_bar,
    )
    # a cascade stage reads the previous stage's segmentations (the predictor checks the folder and its cases)
    extra = {} if args.prev_stage_predictions is None else {"previous_stage_predictions": args.prev_stage_predictions}
    if args.verbose:
        print(f"model {args.m}: configuration {predictor.model.configuration_name}, trainer "
              f"{predictor.model.trainer_name}, folds {' '.join(str(f) for f in folds)}, checkpoint {args.chk}, "
              f"device {predictor.device}, mirror axes {predictor.mirror_axes}")
    written = predictor.predict_from_files(
        args.i, args.o, save_probabilities=args.save_probabilities, overwrite=not args.continue_prediction,
        num_processes_preprocessing=args.npp, num_processes_export=args.nps, **extra,
    )
    print(f"{len(written)} case(s) written to {args.o} ({args.m}, folds {' '.join(str(f) for f in folds)}, "
          f"device {predictor.device})")
