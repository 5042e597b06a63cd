"""Preprocessing as MONAI dictionary transforms, and the preprocessed cache."""

from monai_nnunet.preprocessing.cache import CacheError, case_ids_in_cache, load_case, save_case
from monai_nnunet.preprocessing.transforms import (
    CropToNonzerod,
    LoadNnunetCased,
    NormalizeByPlansd,
    ResampleToTargetSpacingd,
    SampleClassLocationsd,
    TransposeSpatialAxesd,
    preprocessing_transforms,
)

__all__ = [
    "CacheError",
    "CropToNonzerod",
    "LoadNnunetCased",
    "NormalizeByPlansd",
    "ResampleToTargetSpacingd",
    "SampleClassLocationsd",
    "TransposeSpatialAxesd",
    "case_ids_in_cache",
    "load_case",
    "preprocessing_transforms",
    "save_case",
]
