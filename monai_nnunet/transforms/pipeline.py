"""The training and validation chains, declared once for the Python trainer and the bundle configs.

Order and numbers are nnU-Net v2's (``nnUNetTrainer.get_training_transforms``): patch crop (enlarged, with
foreground oversampling) -> rotation/scaling in one resampling step back to the patch size -> Gaussian noise
(p 0.1, std U(0, 0.1)) -> Gaussian blur (p 0.2, sigma 0.5-1, per channel 0.5) -> brightness (p 0.15, x0.75-1.25)
-> contrast (p 0.15, 0.75-1.25, range kept) -> low resolution (p 0.25, zoom 0.5-1, per channel 0.5) -> inverted
gamma (p 0.1) -> gamma (p 0.3, 0.7-1.5) -> mirroring (0.5 per allowed axis) -> masking outside the nonzero region
-> "outside" label to background (or the ignore label) -> region targets -> extra targets (blob/region maps for
the losses) -> deep-supervision targets.

The chain is split in three parts so augmentation can run on the GPU on whole batches: ``sampling_transforms``
(always in the loader workers), ``augmentation_transforms`` (workers or the training device) and
``target_transforms`` (after augmentation, wherever it ran).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from monai.transforms import Compose, MapLabelValued, MapTransform, RandFlipd

from monai_nnunet.transforms.intensity import (
    RandChannelGaussianSmoothd,
    RandChannelLowResolutiond,
    RandGammad,
    IndependentRandGaussianNoised,
    IndependentRandScaleIntensityd,
    IndependentRandScaleIntensityFixedMeand,
)
from monai_nnunet.transforms.labels import DeepSupervisionTargetsd, LabelsToRegionMasksd, MaskOutsideNonzerod
from monai_nnunet.transforms.sampling import RandPatchCropWithOversamplingd
from monai_nnunet.transforms.spatial import RandRotateScaleCropd, augmentation_patch_size

__all__ = [
    "ANISO_PATCH_THRESHOLD",
    "AugmentationSettings",
    "augmentation_settings",
    "augmentation_transforms",
    "mirroring_transforms",
    "sampling_transforms",
    "target_transforms",
    "training_transforms",
    "validation_transforms",
]

ANISO_PATCH_THRESHOLD = 3
IMAGE, LABEL = "image", "label"


@dataclass
class AugmentationSettings:
    """Patch geometry of the augmentation (nnU-Net's ``configure_rotation_dummyDA_mirroring_and_inital_patch_size``).

    Attributes:
        patch_size: the network's patch.
        rotation_range: (low, high) in radians.
        dummy_2d: in-plane augmentation of anisotropic 3D patches (max(patch) / patch[0] > 3).
        initial_patch_size: the enlarged patch cut before rotation and scaling.
        mirror_axes: spatial axes mirrored in training and in test-time augmentation.
    """

    patch_size: list[int]
    rotation_range: tuple[float, float]
    dummy_2d: bool
    initial_patch_size: list[int]
    mirror_axes: tuple[int, ...] = field(default_factory=tuple)


def augmentation_settings(patch_size: Sequence[int], mirror_axes: Sequence[int] | None = None) -> AugmentationSettings:
    """Rotation range, dummy-2D flag, enlarged patch and mirror axes for a patch size, nnU-Net's rules.

    3D: +-30 degrees per axis, or +-180 in-plane when the patch is anisotropic (dummy 2D). 2D: +-180 degrees, or
    +-15 when the patch's aspect ratio exceeds 1.5 (nnU-Net v2's rule).

    Args:
        patch_size: 2 or 3 values.
        mirror_axes: override (None: every axis).
    """
    patch_size = [int(p) for p in patch_size]
    dim = len(patch_size)
    if dim == 2:
        dummy_2d = False
        angle = np.pi / 12 if max(patch_size) / min(patch_size) > 1.5 else np.pi
    elif dim == 3:
        dummy_2d = max(patch_size) / patch_size[0] > ANISO_PATCH_THRESHOLD
        angle = np.pi if dummy_2d else np.pi / 6
    else:
        raise ValueError(f"patch_size must have 2 or 3 entries, got {patch_size}")
    axes = tuple(range(dim)) if mirror_axes is None else tuple(int(a) for a in mirror_axes)
    if any(a < 0 or a >= dim for a in axes):
        raise ValueError(f"mirror_axes {axes} out of range for a {dim}D patch")
    initial = augmentation_patch_size(patch_size, angle, dummy_2d=dummy_2d)
    return AugmentationSettings(patch_size, (-angle, angle), dummy_2d, initial, axes)


def sampling_transforms(
    settings: AugmentationSettings,
    has_ignore_label: bool = False,
    all_labels: Sequence[int] = (),
    for_training: bool = True,
) -> list[MapTransform]:
    """The patch crop: the enlarged patch for training, the final patch for validation."""
    annotated = tuple([-1, *all_labels]) if has_ignore_label else None
    size = settings.initial_patch_size if for_training else settings.patch_size
    return [RandPatchCropWithOversamplingd([IMAGE, LABEL], size, settings.patch_size, has_ignore_label, annotated)]


def augmentation_transforms(settings: AugmentationSettings, elastic_deformation: float = 0.0) -> list[MapTransform]:
    """Spatial and intensity augmentation (see the module docstring for the numbers)."""
    ignore_axes = (0,) if settings.dummy_2d else ()
    chain: list[MapTransform] = [
        RandRotateScaleCropd([IMAGE, LABEL], settings.patch_size, settings.rotation_range, dummy_2d=settings.dummy_2d)
    ]
    if elastic_deformation > 0:
        from monai.transforms import Rand2DElasticd, Rand3DElasticd

        if len(settings.patch_size) == 3:
            chain.append(Rand3DElasticd([IMAGE, LABEL], sigma_range=(5, 8), magnitude_range=(0, 100),
                                        prob=elastic_deformation, mode=("bilinear", "nearest"),
                                        padding_mode=("zeros", "border")))
        else:
            chain.append(Rand2DElasticd([IMAGE, LABEL], spacing=(20, 20), magnitude_range=(0, 2),
                                        prob=elastic_deformation, mode=("bilinear", "nearest"),
                                        padding_mode=("zeros", "border")))
    chain += [
        IndependentRandGaussianNoised(IMAGE, prob=0.1, mean=0.0, std=0.1, sample_std=True),
        RandChannelGaussianSmoothd(IMAGE, prob=0.2, sigma_range=(0.5, 1.0), prob_per_channel=0.5),
        IndependentRandScaleIntensityd(IMAGE, factors=(-0.25, 0.25), prob=0.15, channel_wise=True),
        IndependentRandScaleIntensityFixedMeand(IMAGE, factors=0.25, fixed_mean=True, preserve_range=True, prob=0.15,
                                     channel_wise=True),
        RandChannelLowResolutiond(IMAGE, prob=0.25, zoom_range=(0.5, 1.0), prob_per_channel=0.5,
                                  ignore_axes=ignore_axes),
        RandGammad(IMAGE, prob=0.1, gamma_range=(0.7, 1.5), invert_image=True, retain_stats=True),
        RandGammad(IMAGE, prob=0.3, gamma_range=(0.7, 1.5), invert_image=False, retain_stats=True),
    ]
    chain += mirroring_transforms([IMAGE, LABEL], settings.mirror_axes)
    return chain


def mirroring_transforms(keys: Sequence[str], mirror_axes: Sequence[int], prob: float = 0.5) -> list[MapTransform]:
    """nnU-Net's mirroring: each allowed spatial axis flipped independently with probability ``prob``."""
    return [RandFlipd(list(keys), prob=prob, spatial_axis=int(a)) for a in mirror_axes]


def target_transforms(
    use_mask_for_norm: Sequence[bool] = (),
    ignore_label: int | None = None,
    regions: Sequence | None = None,
    deep_supervision_scales: Sequence[Sequence[float]] | None = None,
    extra_target_transforms: Sequence[MapTransform] = (),
    extra_target_keys: Sequence[str] = (),
) -> list[MapTransform]:
    """Masking, the "outside" label, region targets, extra targets for the loss, deep-supervision targets.

    Args:
        use_mask_for_norm: per channel, from the plans.
        ignore_label: the dataset's ignore label (for the region targets); "outside the image" (-1) becomes
            background, as in nnU-Net, also when there is an ignore label.
        regions: region-based training: the regions (tuples of labels).
        deep_supervision_scales: per output, its relative size; None: one target.
        extra_target_transforms: e.g. ``LabelToBlobsd(keys="label")`` for ``BlobDiceLoss``.
        extra_target_keys: keys those transforms add, downsampled for deep supervision like the label.
    """
    chain: list[MapTransform] = []
    masked = [c for c, use in enumerate(use_mask_for_norm) if use]
    if masked:
        chain.append(MaskOutsideNonzerod(masked, IMAGE, LABEL))
    chain.append(MapLabelValued(LABEL, [-1], [0], dtype=np.int16))
    if regions is not None:
        chain.append(LabelsToRegionMasksd(LABEL, regions, ignore_label))
    chain += list(extra_target_transforms)
    if deep_supervision_scales is not None:
        chain.append(DeepSupervisionTargetsd([LABEL, *extra_target_keys], deep_supervision_scales))
    return chain


def training_transforms(settings: AugmentationSettings, has_ignore_label: bool = False, all_labels: Sequence[int] = (),
                        elastic_deformation: float = 0.0, **target_kwargs) -> Compose:
    """The whole training chain for one sample (``target_kwargs``: see ``target_transforms``)."""
    return Compose(
        sampling_transforms(settings, has_ignore_label, all_labels, for_training=True)
        + augmentation_transforms(settings, elastic_deformation)
        + target_transforms(**target_kwargs),
        map_items=False,
    )


def validation_transforms(settings: AugmentationSettings, has_ignore_label: bool = False,
                          all_labels: Sequence[int] = (), **target_kwargs) -> Compose:
    """Validation patches: the same sampling (final patch size), no augmentation, the same targets."""
    return Compose(
        sampling_transforms(settings, has_ignore_label, all_labels, for_training=False)
        + target_transforms(**target_kwargs),
        map_items=False,
    )
