"""Evaluation and model selection.

- :mod:`~monai_nnunet.evaluation.metrics`: confusion counts, Dice and IoU per label or region (nnU-Net's rules).
- :mod:`~monai_nnunet.evaluation.evaluate_folder`: a folder of predictions -> nnU-Net's ``summary.json``.
- :mod:`~monai_nnunet.evaluation.ensemble`: mean of saved probabilities (``nnUNetv2_ensemble``).
- :mod:`~monai_nnunet.evaluation.find_best_configuration`: cross-validation comparison of trained models and their
  ensembles, and the inference instructions.
"""

from monai_nnunet.evaluation.ensemble import (
    VALIDATION_FOLDER_NAMES,
    average_probabilities,
    ensemble_crossvalidations,
    ensemble_folders,
    merge_probability_files,
    validation_folder,
)
from monai_nnunet.evaluation.evaluate_folder import (
    compute_metrics_on_folder,
    evaluate_case_files,
    evaluate_folder,
    key_to_label_or_region,
    label_or_region_to_key,
    labels_or_regions_to_evaluate,
    load_summary_json,
    save_summary_json,
)
from monai_nnunet.evaluation.find_best_configuration import (
    DEFAULT_CONFIGURATIONS,
    accumulate_cv_results,
    ensemble_name,
    find_best_configuration,
    folds_to_string,
    inference_command,
    inference_instructions,
    reference_folder,
)
from monai_nnunet.evaluation.metrics import case_metrics, confusion_counts, dice_and_iou, label_or_region_mask

__all__ = [
    "DEFAULT_CONFIGURATIONS",
    "VALIDATION_FOLDER_NAMES",
    "accumulate_cv_results",
    "average_probabilities",
    "case_metrics",
    "compute_metrics_on_folder",
    "confusion_counts",
    "dice_and_iou",
    "ensemble_crossvalidations",
    "ensemble_folders",
    "ensemble_name",
    "evaluate_case_files",
    "evaluate_folder",
    "find_best_configuration",
    "folds_to_string",
    "inference_command",
    "inference_instructions",
    "key_to_label_or_region",
    "label_or_region_mask",
    "label_or_region_to_key",
    "labels_or_regions_to_evaluate",
    "load_summary_json",
    "merge_probability_files",
    "reference_folder",
    "save_summary_json",
    "validation_folder",
]
