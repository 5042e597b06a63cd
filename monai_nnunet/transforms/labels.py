"""Label-side steps of the training chain: masking, region targets and deep-supervision targets."""

from __future__ import annotations

from typing import Hashable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from monai.config import KeysCollection
from monai.transforms import MapTransform

__all__ = ["DeepSupervisionTargetsd", "LabelsToRegionMasksd", "MaskOutsideNonzerod", "deep_supervision_scales"]


def deep_supervision_scales(strides: Sequence[Sequence[int]]) -> list[list[float]]:
    """Relative size of each deep-supervision output, highest resolution first (nnU-Net's rule: the cumulative
    product of the encoder strides, without the bottleneck)."""
    scales = 1 / np.cumprod(np.vstack(strides), axis=0)
    return [[float(v) for v in s] for s in scales[:-1]]


class MaskOutsideNonzerod(MapTransform):
    """Sets image channels to 0 where the label marks "outside the nonzero region" (< 0), for the channels whose
    normalisation used the nonzero mask (nnU-Net's ``MaskImageTransform``).

    Args:
        image_key / label_key: the sample's image ``(C, *spatial)`` and label ``(1, *spatial)``.
        channels: image channels to mask.
    """

    def __init__(self, channels: Sequence[int], image_key: str = "image", label_key: str = "label"):
        super().__init__([image_key, label_key])
        self.channels = list(channels)
        self.image_key, self.label_key = image_key, label_key

    def __call__(self, data: Mapping[Hashable, object]) -> dict:
        d = dict(data)
        if not self.channels:
            return d
        image = torch.as_tensor(d[self.image_key]).clone()
        outside = torch.as_tensor(d[self.label_key])[0] < 0
        for c in self.channels:
            image[c][outside] = 0
        d[self.image_key] = image
        return d


class LabelsToRegionMasksd(MapTransform):
    """Region-based targets: one binary channel per region (a region is a set of label values), plus, with an
    ignore label, a last channel that is 1 where the voxel is ignored (the input of ``DC_and_BCE_loss``).

    ``(1, *spatial)`` label -> ``(R[+1], *spatial)`` uint8.
    """

    def __init__(self, keys: KeysCollection, regions: Sequence[Sequence[int] | int], ignore_label: int | None = None,
                 allow_missing_keys: bool = False):
        super().__init__(keys, allow_missing_keys)
        self.regions = [tuple(r) if isinstance(r, (list, tuple)) else (int(r),) for r in regions]
        self.ignore_label = ignore_label

    def __call__(self, data: Mapping[Hashable, object]) -> dict:
        d = dict(data)
        for key in self.key_iterator(d):
            label = torch.as_tensor(d[key])[0]
            channels = [torch.isin(label, torch.tensor(r, device=label.device)) for r in self.regions]
            if self.ignore_label is not None:
                channels.append(label == self.ignore_label)
            d[key] = torch.stack(channels).to(torch.uint8)
        return d


class DeepSupervisionTargetsd(MapTransform):
    """Replaces the label by a list of labels, one per deep-supervision output, downsampled with nearest neighbour
    (``nearest-exact``, as nnU-Net) to each output's resolution; highest resolution first.

    Args:
        keys: label keys, ``(C, *spatial)``.
        scales: per output, the relative size per axis (``deep_supervision_scales(strides)``).
    """

    def __init__(self, keys: KeysCollection, scales: Sequence[Sequence[float]], allow_missing_keys: bool = False):
        super().__init__(keys, allow_missing_keys)
        self.scales = [list(s) for s in scales]

    def __call__(self, data: Mapping[Hashable, object]) -> dict:
        d = dict(data)
        for key in self.key_iterator(d):
            label = torch.as_tensor(d[key])
            outputs, as_float = [], None
            for scale in self.scales:
                if all(s == 1 for s in scale):
                    outputs.append(label)
                    continue
                if as_float is None:
                    as_float = label[None].float()
                size = [round(n * s) for n, s in zip(label.shape[1:], scale)]
                outputs.append(F.interpolate(as_float, size=size, mode="nearest-exact")[0].to(label.dtype))
            d[key] = outputs
        return d
