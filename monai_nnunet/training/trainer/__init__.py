"""The trainer: nnU-Net's recipe composed from MONAI engines and handlers."""

from monai_nnunet.training.trainer.nnunet_trainer import TrainingSetupError, nnUNetTrainer
from monai_nnunet.training.trainer.settings import TrainingSettings

__all__ = ["TrainingSettings", "TrainingSetupError", "nnUNetTrainer"]
