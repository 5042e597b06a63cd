"""Ignite handlers of a training run, one concern each (attach them in the order of the bundle's
``train#handlers``)."""

from monai_nnunet.training.handlers.checkpoint_loader import NnUNetCheckpointLoader
from monai_nnunet.training.handlers.checkpoint_saver import NnUNetCheckpointSaver, training_checkpoint
from monai_nnunet.training.handlers.ddp_consistency import RanksDivergedError, WeightsConsistencyCheck
from monai_nnunet.training.handlers.debug_info import DebugInfoWriter
from monai_nnunet.training.handlers.epoch_seeded_stream import EpochSeededStream
from monai_nnunet.training.handlers.gradient_clipping import GradientClipping
from monai_nnunet.training.handlers.pretrained_weights import PretrainedWeightsLoader
from monai_nnunet.training.handlers.preemption import PreemptionHandler, TrainingPreempted
from monai_nnunet.training.handlers.progress_plot import ProgressPlotHandler
from monai_nnunet.training.handlers.training_log import TrainingLogHandler, log_line
from monai_nnunet.training.handlers.training_log_metrics import TrainingLogMetrics
from monai_nnunet.training.handlers.validation_schedule import IntervalValidationHandler

__all__ = [
    "DebugInfoWriter",
    "EpochSeededStream",
    "GradientClipping",
    "IntervalValidationHandler",
    "NnUNetCheckpointLoader",
    "NnUNetCheckpointSaver",
    "PreemptionHandler",
    "PretrainedWeightsLoader",
    "ProgressPlotHandler",
    "RanksDivergedError",
    "TrainingLogHandler",
    "TrainingLogMetrics",
    "TrainingPreempted",
    "WeightsConsistencyCheck",
    "log_line",
    "training_checkpoint",
]
