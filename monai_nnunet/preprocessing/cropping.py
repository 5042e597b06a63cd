"""Crop to the nonzero region, as nnU-Net does before fingerprinting and preprocessing."""

from __future__ import annotations

import numpy as np
from monai.transforms.utils import generate_spatial_bounding_box
from scipy.ndimage import binary_fill_holes

__all__ = ["OUTSIDE_NONZERO_LABEL", "crop_to_nonzero", "nonzero_mask"]

#: Written into the label map where the image is zero outside the (hole-filled) nonzero region; nnU-Net uses -1
#: so that normalisation with ``use_mask_for_norm`` can skip that region.
OUTSIDE_NONZERO_LABEL = -1


def nonzero_mask(data: np.ndarray) -> np.ndarray:
    """Voxels where any channel is nonzero, holes filled. ``data``: ``(C, Z, Y, X)``; returns ``(Z, Y, X)`` bool."""
    return binary_fill_holes(np.any(data != 0, axis=0))


def crop_to_nonzero(
    data: np.ndarray, seg: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, list[list[int]]]:
    """Crops image and label map to the bounding box of the nonzero region.

    Args:
        data: image ``(C, Z, Y, X)``.
        seg: label map ``(1, Z, Y, X)`` or None.

    Returns:
        ``(data, seg, bbox)``: the cropped arrays and ``bbox`` as ``[[start, stop], ...]`` per spatial axis. The
        returned ``seg`` (int16) holds ``OUTSIDE_NONZERO_LABEL`` where the label was 0 and the image is outside the
        nonzero region; without an input ``seg`` it is 0 inside and ``OUTSIDE_NONZERO_LABEL`` outside.
    """
    mask = nonzero_mask(data)
    start, end = generate_spatial_bounding_box(mask[None], select_fn=lambda x: x > 0)
    if any(e <= s for s, e in zip(start, end)):  # an all-zero image: keep everything
        start, end = [0] * mask.ndim, list(mask.shape)
    bbox = [[int(s), int(e)] for s, e in zip(start, end)]
    slicer = tuple(slice(s, e) for s, e in bbox)
    mask = mask[slicer]
    data = data[(slice(None), *slicer)]
    if seg is None:
        seg = np.where(mask, 0, OUTSIDE_NONZERO_LABEL).astype(np.int16)[None]
    else:
        seg = seg[(slice(None), *slicer)].astype(np.int16)
        seg[(seg == 0) & ~mask[None]] = OUTSIDE_NONZERO_LABEL
    return data, seg, bbox
