"""Prediction with trained models: nnU-Net v2's predictor on MONAI's sliding-window inferer.

- :mod:`~monai_nnunet.inference.model_loading`: results folder + folds + checkpoint -> :class:`TrainedModel`.
- :mod:`~monai_nnunet.inference.sliding_window`: Gaussian-weighted sliding window, mirroring TTA, fold averaging.
- :mod:`~monai_nnunet.inference.export`: logits -> segmentation (and probabilities) in the input's geometry.
- :mod:`~monai_nnunet.inference.cases`: input folders, the preprocessing chain for prediction, cached cases.
- :mod:`~monai_nnunet.inference.predictor`: :class:`Predictor` (preprocessing, inference and export overlapping)
  and :func:`predict_cases_to_folder` (preprocessed cases, e.g. a trainer's final validation).
"""

from monai_nnunet.inference.cases import (
    InputCaseError,
    PreprocessingDataset,
    inference_preprocessing,
    iter_preprocessed_cases,
    list_input_cases,
    unwrap_transform_error,
)
from monai_nnunet.inference.export import (
    convert_logits_to_original_geometry,
    export_prediction,
    logits_to_probabilities,
    probabilities_to_segmentation,
    resample_logits_to_cropped_shape,
    uncrop,
)
from monai_nnunet.inference.model_loading import (
    DEFAULT_FOLDS,
    ModelLoadingError,
    TrainedModel,
    build_inference_network,
    load_checkpoint,
    load_trained_model,
    model_output_folder,
    parse_folds,
    weights_in_network_layout,
)
from monai_nnunet.inference.predictor import CasePredictionError, Predictor, predict_cases_to_folder, resolve_device
from monai_nnunet.inference.whole_case import WholeCaseInferer
from monai_nnunet.inference.sliding_window import (
    MirrorAveragingNetwork,
    mirror_axes_combinations,
    predict_sliding_window_logits,
)

__all__ = [
    "DEFAULT_FOLDS",
    "CasePredictionError",
    "InputCaseError",
    "MirrorAveragingNetwork",
    "ModelLoadingError",
    "Predictor",
    "PreprocessingDataset",
    "TrainedModel",
    "WholeCaseInferer",
    "build_inference_network",
    "convert_logits_to_original_geometry",
    "export_prediction",
    "inference_preprocessing",
    "iter_preprocessed_cases",
    "list_input_cases",
    "load_checkpoint",
    "load_trained_model",
    "logits_to_probabilities",
    "mirror_axes_combinations",
    "model_output_folder",
    "parse_folds",
    "predict_cases_to_folder",
    "predict_sliding_window_logits",
    "probabilities_to_segmentation",
    "resample_logits_to_cropped_shape",
    "resolve_device",
    "uncrop",
    "unwrap_transform_error",
    "weights_in_network_layout",
]
