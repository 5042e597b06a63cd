"""The cascade's input channels and augmentations (nnU-Net's ``3d_cascade_fullres``).

A cascade stage sees the previous stage's segmentation as extra input: one binary channel per foreground label after
the image channels (nnU-Net's ``MoveSegAsOneHotToDataTransform``). During training those channels are corrupted so
the network learns to correct the previous stage rather than copy it: random binary morphology per label channel
(``ApplyRandomBinaryOperatorTransform``: dilation, erosion, opening or closing with a ball of random radius) and the
removal of a random connected component (``RemoveRandomConnectedComponentFromOneHotEncodingTransform``), with
nnU-Net's probabilities. Morphology is SciPy's (``scipy.ndimage``) with scikit-image's ball/disk; components are
scikit-image's ``label`` (full connectivity).
"""

from __future__ import annotations

from typing import Hashable, Mapping, Sequence

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import MapTransform, RandomizableTransform
from scipy import ndimage
from skimage.measure import label as label_components
from skimage.morphology import ball, disk

__all__ = ["BINARY_OPERATORS", "MoveSegAsOneHotToImaged", "RandBinaryOperatord", "RandRemoveConnectedComponentd",
           "ball_closing", "ball_dilation", "ball_erosion", "ball_opening", "seg_to_one_hot"]


def seg_to_one_hot(seg: np.ndarray | torch.Tensor, labels: Sequence[int], dtype=None) -> np.ndarray | torch.Tensor:
    """One binary channel per label value (nnU-Net's ``convert_labelmap_to_one_hot``).

    Args:
        seg: label map ``(*spatial)`` (NumPy or torch); values not in ``labels`` (background, -1) give all zeros.
        labels: the label values, in channel order.
        dtype: output dtype (default float32).

    Returns:
        ``(len(labels), *spatial)`` of the input's kind (torch: on the input's device).
    """
    if isinstance(seg, torch.Tensor):
        out = torch.zeros((len(labels), *seg.shape), dtype=dtype or torch.float32, device=seg.device)
        for i, value in enumerate(labels):
            out[i][seg == value] = 1
        return out
    seg = np.asarray(seg)
    out = np.zeros((len(labels), *seg.shape), dtype=dtype or np.float32)
    for i, value in enumerate(labels):
        out[i][seg == value] = 1
    return out


class MoveSegAsOneHotToImaged(MapTransform):
    """Appends the previous stage's segmentation to the image as one-hot channels, then drops it from the sample.

    ``image`` ``(C, *spatial)`` and ``seg_prev`` ``(1, *spatial)`` -> ``image`` ``(C + len(labels), *spatial)``
    (the image's dtype and kind, NumPy or torch).

    Args:
        keys: the segmentation key (``seg_prev``).
        labels: the foreground labels, one channel each (the dataset's foreground labels).
        image_key: the image.
        remove_key: drop the segmentation from the sample (nnU-Net's ``remove_channel_from_source``).

    Raises:
        ValueError: when the segmentation's spatial shape differs from the image's.
    """

    def __init__(self, keys: KeysCollection, labels: Sequence[int], image_key: str = "image",
                 remove_key: bool = True, allow_missing_keys: bool = False):
        super().__init__(keys, allow_missing_keys)
        self.labels = [int(v) for v in labels]
        self.image_key = image_key
        self.remove_key = remove_key

    def __call__(self, data: Mapping[Hashable, object]) -> dict:
        d = dict(data)
        for key in self.key_iterator(d):
            image, seg = d[self.image_key], d[key]
            if tuple(seg.shape[1:]) != tuple(image.shape[1:]):
                raise ValueError(f"{key} of shape {tuple(seg.shape)} does not match {self.image_key} of shape "
                                 f"{tuple(image.shape)}")
            if isinstance(image, torch.Tensor):
                seg = torch.as_tensor(seg, device=image.device)
                d[self.image_key] = torch.cat([image, seg_to_one_hot(seg[0], self.labels, image.dtype)])
            else:
                image = np.asarray(image)
                d[self.image_key] = np.concatenate([image, seg_to_one_hot(np.asarray(seg)[0], self.labels,
                                                                          image.dtype)])
            if self.remove_key:
                d.pop(key)
        return d


def _structure(ndim: int, radius: float) -> np.ndarray:
    return disk(radius, dtype=bool) if ndim == 2 else ball(radius, dtype=bool)


def ball_dilation(mask: np.ndarray, radius: float) -> np.ndarray:
    """Dilation with a ball (disk in 2D) of ``radius``; outside the array is background."""
    return ndimage.binary_dilation(mask, _structure(mask.ndim, radius))


def ball_erosion(mask: np.ndarray, radius: float) -> np.ndarray:
    """Erosion with a ball (disk in 2D) of ``radius``; outside the array counts as foreground (nnU-Net's: the patch
    border does not erode)."""
    return ndimage.binary_erosion(mask, _structure(mask.ndim, radius), border_value=1)


def ball_opening(mask: np.ndarray, radius: float) -> np.ndarray:
    """Erosion then dilation."""
    return ball_dilation(ball_erosion(mask, radius), radius)


def ball_closing(mask: np.ndarray, radius: float) -> np.ndarray:
    """Dilation then erosion."""
    return ball_erosion(ball_dilation(mask, radius), radius)


#: the operators ``RandBinaryOperatord`` chooses from by name (nnU-Net's four)
BINARY_OPERATORS = {"dilation": ball_dilation, "erosion": ball_erosion, "closing": ball_closing,
                    "opening": ball_opening}


def _channel_indices(channels: Sequence[int], num_channels: int) -> list[int]:
    out = []
    for c in channels:
        c = int(c)
        if not -num_channels <= c < num_channels:
            raise ValueError(f"channel {c} does not exist in an image of {num_channels} channel(s)")
        out.append(c % num_channels)
    return out


def _pick_channels(rng: np.random.RandomState, channels: Sequence[int], num_channels: int, prob_per_label: float
                   ) -> tuple[list[int], list[int]]:
    """The one-hot channels, and those a sample corrupts: in random order, each with ``prob_per_label`` (nnU-Net's
    per-label draw)."""
    indices = _channel_indices(channels, num_channels)
    order = [indices[i] for i in rng.permutation(len(indices))]
    return indices, [c for c in order if rng.uniform() < prob_per_label]


def _as_numpy(image) -> np.ndarray:
    return image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)


def _like(array: np.ndarray, reference):
    if isinstance(reference, torch.Tensor):
        return torch.as_tensor(array, dtype=reference.dtype, device=reference.device)
    return array.astype(np.asarray(reference).dtype, copy=False)


class RandBinaryOperatord(RandomizableTransform, MapTransform):
    """Random binary morphology on one-hot channels (nnU-Net's ``ApplyRandomBinaryOperatorTransform``).

    With probability ``prob`` the transform applies; then each of ``channels``, in random order, is picked with
    probability ``prob_per_label`` and gets one operator (chosen uniformly from ``operators``) with a ball (disk in
    2D) of radius drawn uniformly from ``strel_size``. Voxels a channel gains are cleared in the other ``channels``,
    so the encoding stays one-hot. nnU-Net's cascade: ``prob=0.4``, ``prob_per_label=0.5``, ``strel_size=(1, 8)``.

    Args:
        keys: image keys ``(C, *spatial)`` (NumPy or torch; the result keeps kind, dtype and device).
        channels: the one-hot channels (negative indices count from the end: ``[-2, -1]`` for two labels).
        prob: probability that the transform applies to a sample.
        prob_per_label: probability per channel.
        strel_size: ``(low, high)`` radius range, or one radius.
        operators: names from ``BINARY_OPERATORS`` (default all four).
    """

    def __init__(self, keys: KeysCollection, channels: Sequence[int], prob: float = 0.4, prob_per_label: float = 0.5,
                 strel_size: float | Sequence[float] = (1, 8),
                 operators: Sequence[str] = ("dilation", "erosion", "closing", "opening"),
                 allow_missing_keys: bool = False):
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, prob)
        unknown = [o for o in operators if o not in BINARY_OPERATORS]
        if unknown or not operators:
            raise ValueError(f"unknown binary operator(s) {unknown or operators}; choose from {list(BINARY_OPERATORS)}")
        size = (float(strel_size), float(strel_size)) if np.isscalar(strel_size) else tuple(map(float, strel_size))
        if len(size) != 2 or not 0 < size[0] <= size[1]:
            raise ValueError(f"strel_size must be a positive radius or a (low, high) range, got {strel_size}")
        self.channels = [int(c) for c in channels]
        self.prob_per_label = float(prob_per_label)
        self.strel_size = size
        self.operators = list(operators)

    def __call__(self, data: Mapping[Hashable, object]) -> dict:
        d = dict(data)
        self.randomize(None)
        if not self._do_transform:
            return d
        for key in self.key_iterator(d):
            image = _as_numpy(d[key]).copy()
            channels, picked = _pick_channels(self.R, self.channels, image.shape[0], self.prob_per_label)
            for c in picked:
                operator = BINARY_OPERATORS[self.operators[self.R.randint(len(self.operators))]]
                radius = self.R.uniform(*self.strel_size) if self.strel_size[0] < self.strel_size[1] \
                    else self.strel_size[0]
                before = image[c] != 0
                after = operator(before, radius)
                added = after & ~before
                for other in channels:
                    if other != c:
                        image[other][added] = 0
                image[c] = after
            d[key] = _like(image, d[key])
        return d


class RandRemoveConnectedComponentd(RandomizableTransform, MapTransform):
    """Removes one random connected component from one-hot channels (nnU-Net's
    ``RemoveRandomConnectedComponentFromOneHotEncodingTransform``).

    With probability ``prob`` the transform applies; then each of ``channels``, in random order, is picked with
    probability ``prob_per_label``; of its connected components (full connectivity) smaller than
    ``max_coverage`` of the patch one is chosen at random and set to 0, and with probability
    ``fill_with_other_class_p`` given to another of ``channels``. nnU-Net's cascade: ``prob=0.2``,
    ``prob_per_label=0.5``, ``max_coverage=0.15``, ``fill_with_other_class_p=0``.

    Args:
        keys: image keys ``(C, *spatial)`` (NumPy or torch).
        channels: the one-hot channels (negative indices count from the end).
        prob: probability that the transform applies to a sample.
        prob_per_label: probability per channel.
        max_coverage: components covering this share of the patch or more are kept.
        fill_with_other_class_p: probability that the removed component is set in another channel.
    """

    def __init__(self, keys: KeysCollection, channels: Sequence[int], prob: float = 0.2, prob_per_label: float = 0.5,
                 max_coverage: float = 0.15, fill_with_other_class_p: float = 0.0, allow_missing_keys: bool = False):
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, prob)
        if not 0 < max_coverage <= 1:
            raise ValueError(f"max_coverage must be in (0, 1], got {max_coverage}")
        self.channels = [int(c) for c in channels]
        self.prob_per_label = float(prob_per_label)
        self.max_coverage = float(max_coverage)
        self.fill_with_other_class_p = float(fill_with_other_class_p)

    def __call__(self, data: Mapping[Hashable, object]) -> dict:
        d = dict(data)
        self.randomize(None)
        if not self._do_transform:
            return d
        for key in self.key_iterator(d):
            image = _as_numpy(d[key]).copy()
            channels, picked = _pick_channels(self.R, self.channels, image.shape[0], self.prob_per_label)
            for c in picked:
                mask = image[c] != 0
                if not mask.any():
                    continue
                components, count = label_components(mask, return_num=True)
                sizes = np.bincount(components.ravel())[1:]
                eligible = [i + 1 for i, size in enumerate(sizes) if size < mask.size * self.max_coverage]
                if not eligible:
                    continue
                removed = components == eligible[self.R.randint(len(eligible))]
                image[c][removed] = 0
                others = [o for o in channels if o != c]
                if others and self.R.uniform() < self.fill_with_other_class_p:
                    image[others[self.R.randint(len(others))]][removed] = 1
            d[key] = _like(image, d[key])
        return d
