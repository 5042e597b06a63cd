"""What a training run records per epoch, the training_log.txt lines and progress.png."""

from monai_nnunet.training.logging.progress_plot import plot_progress
from monai_nnunet.training.logging.training_log import TrainingLog

__all__ = ["TrainingLog", "plot_progress"]
