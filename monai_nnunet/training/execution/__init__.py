"""Running a training from the command line: trainer resolution, resuming, validation-only runs."""

from monai_nnunet.training.execution.run_training import build_trainer, run_training

__all__ = ["build_trainer", "run_training"]
