"""Ignite handlers of the training engine, one concern each."""

from monai_nnunet.training.handlers.case_validation import CaseValidationHandler
from monai_nnunet.training.handlers.epoch_end import EpochEndHandler

__all__ = ["CaseValidationHandler", "EpochEndHandler"]
