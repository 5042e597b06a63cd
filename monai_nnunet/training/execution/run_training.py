"""What ``nnUNetv2_train`` does: resolve ``-tr`` (a registered config, ``package.module:NAME`` config or trainer
class), build the trainer, then train (through the run's bundle) or only validate."""

from __future__ import annotations

import os
from typing import Any

from monai_nnunet.training.configs import TrainerConfig, resolve_trainer
from monai_nnunet.training.distributed import init_distributed, shutdown_distributed

__all__ = ["build_trainer", "run_training"]


def build_trainer(dataset: int | str, configuration: str, fold: int | str, trainer: str | None = None,
                  plans: str = "nnUNetPlans", device: str = "cuda", **kwargs: Any):
    """The trainer object for ``-tr trainer``: ``nnUNetTrainer`` with a registered or imported ``TrainerConfig``,
    or an imported ``nnUNetTrainer`` subclass.

    Raises:
        UnknownTrainerError: unknown name (the message lists the known ones).
        TypeError: ``package.module:NAME`` names something that is neither a TrainerConfig nor a trainer class.
    """
    from monai_nnunet.training.trainer import nnUNetTrainer

    name = trainer or "nnUNetTrainer"
    resolved = resolve_trainer(name)
    if isinstance(resolved, TrainerConfig):
        return nnUNetTrainer(dataset, configuration, fold, plans, device, trainer_config=resolved, trainer_name=name,
                             **kwargs)
    if isinstance(resolved, type) and issubclass(resolved, nnUNetTrainer):
        return resolved(dataset, configuration, fold, plans, device, trainer_name=name, **kwargs)
    raise TypeError(f"-tr {name} names {resolved!r}, which is neither a TrainerConfig nor a subclass of "
                    f"monai_nnunet.training.nnUNetTrainer")


def run_training(dataset: int | str, configuration: str, fold: int | str, trainer: str | None = None,
                 plans: str = "nnUNetPlans", device: str = "cuda", continue_training: bool = False,
                 pretrained_weights: str | os.PathLike | None = None, only_validation: bool = False,
                 validate_with_best: bool = False, **kwargs: Any):
    """Trains one fold (or only runs its final validation); as one rank of a multi-process run when torchrun (or
    ``-num_gpus``) started this process.

    Raises:
        ValueError: for contradictory options (``-c`` with ``-pretrained_weights`` or ``--val``).
    """
    if continue_training and pretrained_weights is not None:
        raise ValueError("-c (continue training) and -pretrained_weights cannot be combined: a resumed run already "
                         "has its weights")
    if continue_training and only_validation:
        raise ValueError("-c (continue training) and --val cannot be combined: --val only validates a finished run")
    if validate_with_best and not only_validation:
        raise ValueError("--val_best only applies together with --val")
    # started by torchrun or -num_gpus (WORLD_SIZE > 1): this process is one rank of one run
    distributed = init_distributed(device)
    try:
        trainer_obj = build_trainer(dataset, configuration, fold, trainer, plans, device,
                                    continue_training=continue_training, pretrained_weights=pretrained_weights,
                                    **kwargs)
        if only_validation:
            trainer_obj.validate_only(use_best=validate_with_best)
        else:
            trainer_obj.run_training()
    finally:
        if distributed:
            shutdown_distributed()
    return trainer_obj
