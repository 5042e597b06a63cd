"""Keeping the largest connected component of a label or region (nnU-Net v2's post-processing operation).

Components are found with full connectivity (26 neighbours in 3D, 8 in 2D: ``skimage.measure.label``'s default that
nnU-Net uses); when several components share the largest size, all of them are kept, as nnU-Net does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Union

import numpy as np
from scipy import ndimage

from monai_nnunet.evaluation.metrics import LabelOrRegion, label_or_region_mask

__all__ = [
    "LabelsOrRegions",
    "apply_postprocessing",
    "remove_all_but_largest_component",
    "remove_all_but_largest_component_from_segmentation",
]

#: one label, one region (tuple of labels), or a list of them (their union)
LabelsOrRegions = Union[LabelOrRegion, Sequence[LabelOrRegion]]


def remove_all_but_largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest connected component(s) of a binary mask, with full connectivity.

    Args:
        mask: binary array of any dimensionality.

    Returns:
        A boolean array, True on the component(s) of the largest size (all of them on a tie); all False for an
        empty mask.
    """
    mask = np.asarray(mask, dtype=bool)
    components, count = ndimage.label(mask, structure=ndimage.generate_binary_structure(mask.ndim, mask.ndim))
    if count == 0:
        return np.zeros_like(mask)
    sizes = np.bincount(components.ravel())[1:]
    keep = np.flatnonzero(sizes == sizes.max()) + 1
    return np.isin(components, keep)


def remove_all_but_largest_component_from_segmentation(segmentation: np.ndarray,
                                                       labels_or_regions: LabelsOrRegions,
                                                       background_label: int = 0) -> np.ndarray:
    """Sets every voxel of ``labels_or_regions`` outside its largest connected component to ``background_label``.

    Args:
        segmentation: label map, e.g. (Z, Y, X).
        labels_or_regions: a label, a region (tuple of labels), or a list of labels/regions treated as one mask
            (their union).
        background_label: the value removed voxels get.

    Returns:
        A new label map (the input is not modified).
    """
    if not isinstance(labels_or_regions, list):
        labels_or_regions = [labels_or_regions]
    mask = np.zeros(segmentation.shape, dtype=bool)
    for label_or_region in labels_or_regions:
        mask |= label_or_region_mask(segmentation, label_or_region)
    result = np.copy(segmentation)
    result[mask & ~remove_all_but_largest_component(mask)] = background_label
    return result


def apply_postprocessing(segmentation: np.ndarray, pp_fns: Sequence[Callable[..., np.ndarray]],
                         pp_fn_kwargs: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Applies the post-processing steps in order.

    Args:
        segmentation: label map.
        pp_fns: the step functions.
        pp_fn_kwargs: each step's keyword arguments.

    Returns:
        The post-processed label map.
    """
    for fn, kwargs in zip(pp_fns, pp_fn_kwargs):
        segmentation = fn(segmentation, **kwargs)
    return segmentation
