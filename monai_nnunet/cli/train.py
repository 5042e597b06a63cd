"""``nnUNetv2_train DATASET CONFIG FOLD [-tr NAME] [-p PLANS] [-c] [-pretrained_weights PATH] [--val] [--val_best]
[--npz] [--disable_checkpointing] [-device cpu|cuda|mps] [--epochs N] [--iterations_per_epoch N] [--val_every N]``"""

from __future__ import annotations

import argparse

from monai_nnunet.cli._common import positive_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", help="dataset id or name (4, 004, Dataset004_Hippocampus)")
    parser.add_argument("configuration", help="plans configuration (2d, 3d_fullres, 3d_lowres, 3d_cascade_fullres)")
    parser.add_argument("fold", help="fold 0-4 of splits_final.json, or 'all'")
    parser.add_argument("-tr", default="nnUNetTrainer",
                        help="trainer config name (nnUNetTrainer, kiunet, uiunet, blob_dice, region_dice, ...) or "
                             "package.module:NAME of your own config or nnUNetTrainer subclass")
    parser.add_argument("-p", default="nnUNetPlans", help="plans identifier (default nnUNetPlans)")
    parser.add_argument("-c", "--c", "--continue_training", dest="continue_training", action="store_true",
                        help="resume from checkpoint_latest (else final, else best)")
    parser.add_argument("-pretrained_weights", default=None, help="checkpoint to initialise the network from")
    parser.add_argument("--val", action="store_true", help="only run the final validation of a trained fold")
    parser.add_argument("--val_best", action="store_true", help="with --val: validate checkpoint_best.pth")
    parser.add_argument("--overwrite", action="store_true",
                        help="train a fold that already holds checkpoints again from scratch (replaces them)")
    parser.add_argument("--npz", action="store_true", help="the final validation also saves probabilities (.npz)")
    parser.add_argument("--disable_checkpointing", action="store_true", help="write no checkpoint files")
    parser.add_argument("-device", default=None, choices=["cuda", "cpu", "mps"],
                        help="training device (default: cuda when available, else cpu)")
    parser.add_argument("-num_gpus", type=positive_int, default=1,
                        help="DDP over this many GPUs of this machine (default 1); for several machines start the "
                             "command with torchrun instead")
    parser.add_argument("--epochs", type=positive_int, default=None, help="number of epochs (default 1000)")
    parser.add_argument("--iterations_per_epoch", type=positive_int, default=None, help="iterations per epoch (250)")
    parser.add_argument("--val_every", type=positive_int, default=None, help="epochs between case validations (50)")
    parser.add_argument("--lr_schedule", choices=["per_iteration", "per_epoch"], default=None,
                        help="poly LR updated every iteration (default) or every epoch (nnU-Net v2)")
    parser.add_argument("--num_workers", type=int, default=None, help="data loader workers ($nnUNet_n_proc_DA)")


def run_cli(args: argparse.Namespace) -> None:
    from monai_nnunet.training.execution import run_training
    from monai_nnunet.utils.devices import resolve_device

    kwargs = dict(
        dataset=args.dataset, configuration=args.configuration, fold=args.fold, trainer=args.tr, plans=args.p,
        device=args.device or resolve_device(None).type, continue_training=args.continue_training,
        pretrained_weights=args.pretrained_weights,
        only_validation=args.val, validate_with_best=args.val_best, export_npz=args.npz, overwrite=args.overwrite,
        save_checkpoints=not args.disable_checkpointing, num_epochs=args.epochs,
        iterations_per_epoch=args.iterations_per_epoch, val_every=args.val_every, lr_schedule=args.lr_schedule,
        num_workers=args.num_workers,
    )
    if args.num_gpus > 1:
        from monai_nnunet.training.execution.ddp import run_ddp_training

        run_ddp_training(args.num_gpus, **kwargs)
        return
    run_training(**kwargs)
