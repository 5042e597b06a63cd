"""Intensity augmentations MONAI lacks in nnU-Net's form (per-channel probabilities, nnU-Net's gamma sampling and
blur kernel), and MONAI's noise, brightness and contrast transforms with independent random draws.

``IndependentRandGaussianNoised``, ``IndependentRandScaleIntensityd`` and ``IndependentRandScaleIntensityFixedMeand``
are MONAI's ``RandGaussianNoised``, ``RandScaleIntensityd`` and ``RandScaleIntensityFixedMeand``, except that their
array transform gets a random stream of its own: MONAI seeds it with the dictionary transform's own seed, so the
"apply?" draw and the drawn factor would come from the same numbers.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Hashable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from monai.config import KeysCollection
from monai.networks.layers import separable_filtering
from monai import transforms as monai_transforms
from monai.transforms import AdjustContrast, MapTransform, Randomizable
from monai.utils import MAX_SEED

__all__ = ["IndependentRandGaussianNoised", "IndependentRandScaleIntensityFixedMeand", "IndependentRandScaleIntensityd",
           "RandChannelGaussianSmoothd", "RandChannelLowResolutiond", "RandGammad", "nnunet_gaussian_kernel",
           "sample_around_one"]


class _IndependentInnerStream:
    """Reseeds the wrapped array transform (attribute ``_inner``) from this transform's own stream after seeding."""

    _inner = ""

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None):
        super().set_random_state(seed, state)
        getattr(self, self._inner).set_random_state(seed=int(self.R.randint(MAX_SEED)))
        return self


class IndependentRandGaussianNoised(_IndependentInnerStream, monai_transforms.RandGaussianNoised):
    """MONAI's ``RandGaussianNoised`` whose noise is drawn independently of its apply decision."""

    _inner = "rand_gaussian_noise"


class IndependentRandScaleIntensityd(_IndependentInnerStream, monai_transforms.RandScaleIntensityd):
    """MONAI's ``RandScaleIntensityd`` whose factor is drawn independently of its apply decision."""

    _inner = "scaler"


class IndependentRandScaleIntensityFixedMeand(_IndependentInnerStream,
                                              monai_transforms.RandScaleIntensityFixedMeand):
    """MONAI's ``RandScaleIntensityFixedMeand`` whose factor is drawn independently of its apply decision."""

    _inner = "scaler"


def nnunet_gaussian_kernel(sigma: float, truncate: float = 6.0) -> torch.Tensor:
    """nnU-Net's (batchgeneratorsv2's) blur kernel: the Gaussian sampled at integer offsets and normalised, over
    the odd size nearest ``sigma * truncate + 0.5`` (sigma 0.5: 3 taps, effective sigma 0.46; MONAI's erf-integrated
    kernel would blur more)."""
    target = float(sigma) * truncate + 0.5
    size = round(target)
    if size % 2 == 0:
        size = size + 1 if target - size >= 0 else size - 1
    half = (size - 1) * 0.5
    x = torch.linspace(-half, half, steps=size, dtype=torch.float64)
    pdf = torch.exp(-0.5 * (x / float(sigma)) ** 2)
    return (pdf / pdf.sum()).float()


def sample_around_one(rng: np.random.RandomState, value_range: Sequence[float]) -> float:
    """nnU-Net's contrast/gamma sampling: with probability 0.5 below 1 (uniform in [low, 1)), else above 1."""
    low, high = value_range
    if rng.random_sample() < 0.5 and low < 1:
        return float(rng.uniform(low, 1))
    return float(rng.uniform(max(low, 1), high))


def _gaussian_blur(channel: torch.Tensor, sigmas: Sequence[float]) -> torch.Tensor:
    """Separable Gaussian blur of ``(1, *spatial)`` with nnU-Net's kernel and reflect padding (nnU-Net's; zero
    padding would darken the borders), via MONAI's ``separable_filtering``; a sigma of 0 leaves that axis alone."""
    kernels = [nnunet_gaussian_kernel(s).to(channel) if s > 0
               else torch.ones(1, dtype=channel.dtype, device=channel.device) for s in sigmas]
    fits = all(len(k) // 2 < n for k, n in zip(kernels, channel.shape[1:]))
    return separable_filtering(channel[None], kernels, mode="reflect" if fits else "replicate")[0]


class _RandPerChannelTransform(Randomizable, MapTransform):
    """Applied with probability ``prob``; then each channel ``(1, *spatial)`` with ``prob_per_channel`` through
    ``_channel`` (nnU-Net's per-channel augmentations)."""

    def __init__(self, keys: KeysCollection, prob: float, prob_per_channel: float, allow_missing_keys: bool = False):
        MapTransform.__init__(self, keys, allow_missing_keys)
        self.prob, self.prob_per_channel = prob, prob_per_channel

    def randomize(self, data=None) -> None:  # drawn per channel in __call__
        pass

    @abstractmethod
    def _channel(self, channel: torch.Tensor) -> torch.Tensor:
        """The augmentation of one channel ``(1, *spatial)``."""

    def __call__(self, data: Mapping[Hashable, object]) -> dict:
        d = dict(data)
        if self.R.uniform() >= self.prob:
            return d
        for key in self.key_iterator(d):
            image = torch.as_tensor(d[key]).clone()
            for c in range(image.shape[0]):
                if self.R.uniform() < self.prob_per_channel:
                    image[c : c + 1] = self._channel(image[c : c + 1])
            d[key] = image
        return d


class RandChannelGaussianSmoothd(_RandPerChannelTransform):
    """Gaussian blur applied with probability ``prob``; then each channel with ``prob_per_channel``, each axis with
    its own sigma from ``sigma_range`` (nnU-Net: 0.2, 0.5, (0.5, 1.0), axes not synchronised; reflect padding).

    Args:
        keys: image keys, ``(C, *spatial)``.
        ignore_axes: spatial axes left unblurred (dummy-2D: the first).
    """

    def __init__(self, keys: KeysCollection, prob: float = 0.2, sigma_range: Sequence[float] = (0.5, 1.0),
                 prob_per_channel: float = 0.5, ignore_axes: Sequence[int] = (), allow_missing_keys: bool = False):
        super().__init__(keys, prob, prob_per_channel, allow_missing_keys)
        self.sigma_range, self.ignore_axes = tuple(sigma_range), tuple(ignore_axes)

    def _channel(self, channel: torch.Tensor) -> torch.Tensor:
        sigma = [0.0 if a in self.ignore_axes else self.R.uniform(*self.sigma_range) for a in range(channel.ndim - 1)]
        return _gaussian_blur(channel.float(), sigma)


class RandChannelLowResolutiond(_RandPerChannelTransform):
    """Simulated low resolution: downsample (nearest) by a zoom from ``zoom_range`` and upsample back (linear).

    Applied with probability ``prob``, then per channel with ``prob_per_channel``; one zoom for all axes of a
    channel except ``ignore_axes`` (nnU-Net: 0.25, (0.5, 1), 0.5).
    """

    def __init__(self, keys: KeysCollection, prob: float = 0.25, zoom_range: Sequence[float] = (0.5, 1.0),
                 prob_per_channel: float = 0.5, ignore_axes: Sequence[int] = (), allow_missing_keys: bool = False):
        super().__init__(keys, prob, prob_per_channel, allow_missing_keys)
        self.zoom_range, self.ignore_axes = tuple(zoom_range), tuple(ignore_axes)

    def _channel(self, channel: torch.Tensor) -> torch.Tensor:
        spatial = channel.shape[1:]
        zoom = self.R.uniform(*self.zoom_range)
        small = [s if a in self.ignore_axes else max(1, round(s * zoom)) for a, s in enumerate(spatial)]
        low = F.interpolate(channel[None].float(), size=small, mode="nearest-exact")
        mode = "trilinear" if len(spatial) == 3 else "bilinear"
        return F.interpolate(low, size=list(spatial), mode=mode, align_corners=False)[0]


class RandGammad(_RandPerChannelTransform):
    """Gamma correction with nnU-Net's sampling (gamma below or above 1 with equal chance), optional inversion
    (``invert_image``: gamma applied to the negated image) and retained mean/std, per channel, using MONAI's
    ``AdjustContrast``. nnU-Net applies it twice: inverted with probability 0.1, plain with 0.3.
    """

    def __init__(self, keys: KeysCollection, prob: float = 0.3, gamma_range: Sequence[float] = (0.7, 1.5),
                 invert_image: bool = False, retain_stats: bool = True, prob_per_channel: float = 1.0,
                 allow_missing_keys: bool = False):
        super().__init__(keys, prob, prob_per_channel, allow_missing_keys)
        if gamma_range[0] <= 0 or gamma_range[0] > gamma_range[1]:
            raise ValueError(f"gamma_range must be (low, high) with 0 < low <= high, got {gamma_range}")
        self.gamma_range = tuple(gamma_range)
        self.invert_image, self.retain_stats = invert_image, retain_stats

    def _channel(self, channel: torch.Tensor) -> torch.Tensor:
        gamma = sample_around_one(self.R, self.gamma_range)
        return AdjustContrast(gamma, invert_image=self.invert_image, retain_stats=self.retain_stats)(channel)
