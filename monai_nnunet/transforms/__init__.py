"""MONAI transforms of monai_nnunet: nnU-Net's sampling, augmentation and training targets as dictionary
transforms, and the small functions the training bundle calls for the patch geometry."""

from monai_nnunet.transforms.blobs import LabelToBlobsd
from monai_nnunet.transforms.cascade import (
    MoveSegAsOneHotToImaged,
    RandBinaryOperatord,
    RandRemoveConnectedComponentd,
    seg_to_one_hot,
)
from monai_nnunet.transforms.intensity import (
    IndependentRandGaussianNoised,
    IndependentRandScaleIntensityd,
    IndependentRandScaleIntensityFixedMeand,
    RandChannelGaussianSmoothd,
    RandChannelLowResolutiond,
    RandGammad,
)
from monai_nnunet.transforms.labels import (
    DeepSupervisionTargetsd,
    LabelsToRegionMasksd,
    MaskOutsideNonzerod,
    deep_supervision_scales,
)
from monai_nnunet.transforms.pipeline import AugmentationSettings, augmentation_settings, mirroring_transforms
from monai_nnunet.transforms.regions import LabelToRegionsd
from monai_nnunet.transforms.sampling import RandPatchCropWithOversamplingd
from monai_nnunet.transforms.spatial import RandRotateScaleCropd

__all__ = [
    "AugmentationSettings",
    "DeepSupervisionTargetsd",
    "IndependentRandGaussianNoised",
    "IndependentRandScaleIntensityFixedMeand",
    "IndependentRandScaleIntensityd",
    "LabelToBlobsd",
    "LabelToRegionsd",
    "LabelsToRegionMasksd",
    "MaskOutsideNonzerod",
    "MoveSegAsOneHotToImaged",
    "RandBinaryOperatord",
    "RandChannelGaussianSmoothd",
    "RandChannelLowResolutiond",
    "RandGammad",
    "RandPatchCropWithOversamplingd",
    "RandRemoveConnectedComponentd",
    "RandRotateScaleCropd",
    "augmentation_settings",
    "deep_supervision_scales",
    "mirroring_transforms",
    "seg_to_one_hot",
]
