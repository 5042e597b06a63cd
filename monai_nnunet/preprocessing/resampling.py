"""Resampling to the plans' target spacing, nnU-Net's way.

Images: third-order spline (``skimage.transform.resize``, edge mode, no anti-aliasing), exactly as nnU-Net.
Label maps: each label resampled linearly as a one-hot channel, then argmax, so no voxel is left unlabelled and no
new value appears (nnU-Net thresholds each label at 0.5 in turn, which can leave holes). Strongly anisotropic data
(spacing ratio above 3) is resampled in-plane slice by slice and with nearest neighbour across slices.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.ndimage import map_coordinates
from skimage.transform import resize

__all__ = ["ANISO_THRESHOLD", "compute_new_shape", "determine_separate_z_axis", "resample_data_or_seg_to_shape"]

#: An axis is anisotropic when its spacing is more than this many times the finest (nnU-Net's value).
ANISO_THRESHOLD = 3


def compute_new_shape(old_shape: Sequence[int], old_spacing: Sequence[float], new_spacing: Sequence[float]) -> np.ndarray:
    """Shape after resampling from ``old_spacing`` to ``new_spacing`` (rounded per axis)."""
    if not len(old_shape) == len(old_spacing) == len(new_spacing):
        raise ValueError(f"shape {old_shape}, spacing {old_spacing} and target {new_spacing} differ in length")
    return np.array([int(round(i / j * k)) for i, j, k in zip(old_spacing, new_spacing, old_shape)])


def _lowres_axes(spacing: Sequence[float]) -> np.ndarray:
    return np.where(max(spacing) / np.array(spacing) == 1)[0]


def determine_separate_z_axis(
    current_spacing: Sequence[float], new_spacing: Sequence[float], force_separate_z: bool | None = None
) -> int | None:
    """The out-of-plane axis to resample separately, or None (nnU-Net's rule).

    Anisotropy is judged on the current spacing first, then on the target spacing; when two or three axes share
    the coarsest spacing there is no single out-of-plane axis and resampling is joint.
    """
    if force_separate_z is not None:
        axes = _lowres_axes(current_spacing) if force_separate_z else None
    elif max(current_spacing) / min(current_spacing) > ANISO_THRESHOLD:
        axes = _lowres_axes(current_spacing)
    elif max(new_spacing) / min(new_spacing) > ANISO_THRESHOLD:
        axes = _lowres_axes(new_spacing)
    else:
        axes = None
    if axes is None or len(axes) != 1:
        return None
    return int(axes[0])


def _resize_image(channel: np.ndarray, shape: Sequence[int], order: int) -> np.ndarray:
    return resize(channel, shape, order, mode="edge", anti_aliasing=False)


def _resize_label(channel: np.ndarray, shape: Sequence[int], order: int) -> np.ndarray:
    labels = np.unique(channel)
    if order == 0 or len(labels) == 1:
        return resize(channel.astype(float), shape, 0, mode="edge", clip=True, anti_aliasing=False,
                      preserve_range=True).astype(channel.dtype)
    scores = np.stack(
        [resize((channel == v).astype(np.float32), shape, order, mode="edge", clip=True, anti_aliasing=False)
         for v in labels]
    )
    return labels[np.argmax(scores, axis=0)].astype(channel.dtype)


def _nearest_along_axis(volume: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Nearest-neighbour resize of a volume (align_corners=False), used across slices."""
    grid = np.mgrid[tuple(slice(0, s) for s in shape)].astype(np.float64)
    for d in range(len(shape)):
        scale = volume.shape[d] / shape[d]
        grid[d] = scale * (grid[d] + 0.5) - 0.5
    return map_coordinates(volume, grid, order=0, mode="nearest")


def resample_data_or_seg_to_shape(
    data: np.ndarray,
    new_shape: Sequence[int],
    current_spacing: Sequence[float],
    new_spacing: Sequence[float],
    is_seg: bool = False,
    order: int = 3,
    order_z: int = 0,
    force_separate_z: bool | None = False,
) -> np.ndarray:
    """Resamples ``(C, Z, Y, X)`` data to ``new_shape`` (plans' ``resampling_fn_*_kwargs`` are accepted as is).

    Args:
        data: image or label map, channel first.
        new_shape: target spatial shape.
        current_spacing: spacing of ``data``.
        new_spacing: spacing of the target (decides the separate out-of-plane axis).
        is_seg: resample as a label map.
        order: spline order in-plane (or overall).
        order_z: order across slices when resampling the out-of-plane axis separately (only 0 is used).
        force_separate_z: True/False forces the choice; None decides from the spacings.

    Returns:
        The resampled array, same dtype as ``data`` (float images come back as float32).
    """
    if data.ndim != 4:
        raise ValueError(f"data must be (C, Z, Y, X), got shape {data.shape}")
    new_shape = tuple(int(s) for s in new_shape)
    if len(new_shape) != 3:
        raise ValueError(f"new_shape must have three entries, got {new_shape}")
    if tuple(data.shape[1:]) == new_shape:
        return data
    axis = determine_separate_z_axis(current_spacing, new_spacing, force_separate_z)
    out_dtype = data.dtype if is_seg else np.float32
    resize_fn = _resize_label if is_seg else _resize_image
    out = np.empty((data.shape[0], *new_shape), dtype=out_dtype)
    for c in range(data.shape[0]):
        channel = data[c] if is_seg else data[c].astype(np.float64, copy=False)
        if axis is None:
            out[c] = resize_fn(channel, new_shape, order)
            continue
        in_plane = [s for d, s in enumerate(new_shape) if d != axis]
        slices = [resize_fn(np.take(channel, i, axis=axis), in_plane, order) for i in range(channel.shape[axis])]
        stacked = np.stack(slices, axis=axis)
        if stacked.shape[axis] != new_shape[axis]:
            if is_seg or order_z == 0:
                stacked = _nearest_along_axis(stacked, new_shape)
            else:
                stacked = resize(stacked, new_shape, order_z, mode="edge", anti_aliasing=False)
        out[c] = stacked
    return out
