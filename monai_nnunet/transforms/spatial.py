"""Rotation and scaling in one resampling step, cropping the enlarged patch back to the network's patch size."""

from __future__ import annotations

from typing import Hashable, Mapping, Sequence

import numpy as np
import torch
from monai.transforms import AffineGrid, CenterSpatialCrop, MapTransform, Randomizable, Resample

__all__ = ["RandRotateScaleCropd", "augmentation_patch_size"]


def _rotation_matrices(angle: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    c, s = np.cos(angle), np.sin(angle)
    return (np.array([[1, 0, 0], [0, c, -s], [0, s, c]]),
            np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]),
            np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]))


def augmentation_patch_size(
    patch_size: Sequence[int], max_rotation: float, scale_range: Sequence[float] = (0.85, 1.25), dummy_2d: bool = False
) -> list[int]:
    """The enlarged patch to cut before rotation and scaling (nnU-Net's ``get_patch_size``).

    The patch's corner vector is rotated by the largest angle (capped at 90 degrees) about each axis in turn; the
    largest extent per axis is divided by the smallest scale. nnU-Net uses a scale range of (0.85, 1.25) here (not
    the (0.7, 1.4) it samples from); so do we, to cut the same patches. With dummy-2D augmentation the first axis
    keeps its size. Each axis is then rounded up so its difference to ``patch_size`` is even, which keeps the
    centre crop on the voxel grid (no half-voxel interpolation).

    Args:
        patch_size: the network's patch.
        max_rotation: largest absolute rotation angle in radians.
        scale_range: nnU-Net's (0.85, 1.25).
        dummy_2d: rotation and scaling happen in-plane only.
    """
    coords = np.array(patch_size, dtype=float)
    angle = min(abs(max_rotation), np.pi / 2)
    final = coords.copy()
    if len(coords) == 3:
        for rot in _rotation_matrices(angle):
            final = np.maximum(final, np.abs(coords @ rot))
    elif len(coords) == 2:
        c, s = np.cos(angle), np.sin(angle)
        final = np.maximum(final, np.abs(coords @ np.array([[c, -s], [s, c]])))
    else:
        raise ValueError(f"patch_size must have 2 or 3 entries, got {patch_size}")
    enlarged = (final / min(scale_range)).astype(int)
    if dummy_2d:
        enlarged[0] = patch_size[0]
    enlarged = np.maximum(enlarged, patch_size)
    enlarged += (enlarged - np.asarray(patch_size)) % 2
    return [int(e) for e in enlarged]


class RandRotateScaleCropd(Randomizable, MapTransform):
    """Random rotation and isotropic scaling in one resampling step, output at the network's patch size.

    With probability ``prob_rotation`` rotation angles are drawn per axis from ``rotation_range``; with probability
    ``prob_scaling`` one scale factor from ``scale_range`` (values above 1 show a larger field of view, i.e. smaller
    objects). When either applies, the image (linear) and each label's mask (linear, then the label of the largest value per
    voxel: nnU-Net's) are resampled with MONAI's ``AffineGrid`` and ``Resample`` on a grid of ``spatial_size`` centred
    on the input patch; otherwise the centre is cropped. Outside
    the input, the image is 0 and the label ``label_pad_value`` (-1, "outside"). ``dummy_2d`` rotates and scales
    in-plane only (axes 1, 2), for anisotropic patches.

    Args:
        keys: image and label keys, image first (``(C, *spatial)`` arrays or tensors).
        spatial_size: output patch size.
        rotation_range: (low, high) angle in radians for each rotated axis.
        prob_rotation / prob_scaling: nnU-Net's 0.2 / 0.2.
        scale_range: nnU-Net's (0.7, 1.4).
        dummy_2d: in-plane augmentation of 3D patches.
        label_pad_value: label outside the input.
    """

    def __init__(
        self,
        keys: Sequence[str],
        spatial_size: Sequence[int],
        rotation_range: Sequence[float] = (-np.pi / 6, np.pi / 6),
        prob_rotation: float = 0.2,
        prob_scaling: float = 0.2,
        scale_range: Sequence[float] = (0.7, 1.4),
        dummy_2d: bool = False,
        label_pad_value: int = -1,
    ):
        MapTransform.__init__(self, keys)
        self.spatial_size = [int(s) for s in spatial_size]
        self.rotation_range = tuple(rotation_range)
        self.prob_rotation, self.prob_scaling = prob_rotation, prob_scaling
        self.scale_range = tuple(scale_range)
        self.dummy_2d = dummy_2d and len(self.spatial_size) == 3
        self.label_pad_value = label_pad_value
        self._crop = CenterSpatialCrop(self.spatial_size)
        self._angles: list[float] | None = None
        self._scale: float | None = None

    def randomize(self, data=None) -> None:
        dim = len(self.spatial_size)
        do_rotation = self.R.uniform() < self.prob_rotation
        do_scale = self.R.uniform() < self.prob_scaling
        self._angles = [self.R.uniform(*self.rotation_range) for _ in range(dim)] if do_rotation else None
        self._scale = self.R.uniform(*self.scale_range) if do_scale else None

    def _grid(self, device) -> torch.Tensor:
        dim = len(self.spatial_size)
        angles = self._angles or [0.0] * dim
        scale = self._scale or 1.0
        if dim == 2:
            rotate, scales = angles[-1], (scale, scale)
        elif self.dummy_2d:
            rotate, scales = (angles[0], 0.0, 0.0), (1.0, scale, scale)
        else:
            rotate, scales = tuple(angles), (scale,) * 3
        grid, _ = AffineGrid(rotate_params=rotate, scale_params=scales, device=device, dtype=torch.float32)(
            spatial_size=self.spatial_size
        )
        return grid

    def __call__(self, data: Mapping[Hashable, object]) -> dict:
        d = dict(data)
        self.randomize()
        keys = list(self.key_iterator(d))
        if self._angles is None and self._scale is None:
            for key in keys:
                d[key] = self._crop(torch.as_tensor(d[key]))
            return d
        first = torch.as_tensor(d[keys[0]])
        grid = self._grid(first.device)
        for i, key in enumerate(keys):
            value = torch.as_tensor(d[key])
            if i == 0:
                d[key] = Resample(mode="bilinear", padding_mode="zeros", dtype=torch.float32)(value.float(), grid)
            else:
                d[key] = self._resample_labels(value, grid)
        return d

    def _resample_labels(self, label: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        """nnU-Net's label resampling: each label's mask resampled linearly, then the label of the largest value
        per voxel (nearest neighbour would shift thin structures); outside the input ``label_pad_value``."""
        dtype = label.dtype if label.dtype not in (torch.float16, torch.float32, torch.float64) else torch.int16
        values = torch.unique(label)
        masks = torch.cat([(label == v).float() for v in values])  # (L, *spatial): one channel per label
        resampled = Resample(mode="bilinear", padding_mode="zeros", dtype=torch.float32)(masks, grid)
        out = values.to(dtype)[resampled.argmax(0, keepdim=True)]
        # where the masks sum to less than half, the grid samples mostly outside the input
        outside = resampled.sum(0, keepdim=True) < 0.5
        return torch.where(outside, torch.tensor(self.label_pad_value, dtype=dtype), out)
