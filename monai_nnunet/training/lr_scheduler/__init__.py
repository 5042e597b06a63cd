"""Learning-rate schedules."""

from monai_nnunet.training.lr_scheduler.polylr import PolyLRScheduler

__all__ = ["PolyLRScheduler"]
