"""Intensity normalisation schemes, named as in nnU-Net plans (``ZScoreNormalization``, ``CTNormalization``, ...).

A channel named ``CT`` (case-insensitive) gets CT normalisation (clip to the foreground 0.5/99.5 percentiles,
then the foreground mean/std of the whole dataset); ``noNorm``, ``rescale_to_0_1`` and ``rgb_to_0_1`` name their
schemes; every other channel gets a per-image z-score, restricted to the nonzero region when the plans say so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = ["NORMALIZATION_SCHEMES", "NormalizationScheme", "normalize_channel", "scheme_for_channel_name"]


def _zscore(image: np.ndarray, mask: np.ndarray | None, props: dict) -> np.ndarray:
    if mask is not None:
        values = image[mask]
        mean, std = values.mean(), values.std()
        image[mask] = (values - mean) / max(std, 1e-8)
    else:
        mean, std = image.mean(), image.std()
        image -= mean
        image /= max(std, 1e-8)
    return image


def _ct(image: np.ndarray, mask: np.ndarray | None, props: dict) -> np.ndarray:
    missing = [k for k in ("mean", "std", "percentile_00_5", "percentile_99_5") if k not in props]
    if missing:
        raise ValueError(f"CT normalisation needs the foreground intensity properties {missing} from the plans")
    np.clip(image, props["percentile_00_5"], props["percentile_99_5"], out=image)
    image -= props["mean"]
    image /= max(props["std"], 1e-8)
    return image


def _none(image: np.ndarray, mask: np.ndarray | None, props: dict) -> np.ndarray:
    return image


def _rescale_01(image: np.ndarray, mask: np.ndarray | None, props: dict) -> np.ndarray:
    image -= image.min()
    image /= max(float(image.max()), 1e-8)
    return image


def _rgb_01(image: np.ndarray, mask: np.ndarray | None, props: dict) -> np.ndarray:
    if image.min() < 0 or image.max() > 255:
        raise ValueError(f"rgb_to_0_1 expects values in [0, 255], found [{image.min()}, {image.max()}]")
    image /= 255.0
    return image


@dataclass(frozen=True)
class NormalizationScheme:
    """A named normalisation; ``masks_outside_to_zero``: with ``use_mask_for_norm`` it leaves the outside at 0."""

    name: str
    fn: Callable[[np.ndarray, "np.ndarray | None", dict], np.ndarray]
    masks_outside_to_zero: bool


NORMALIZATION_SCHEMES = {
    s.name: s
    for s in (
        NormalizationScheme("ZScoreNormalization", _zscore, True),
        NormalizationScheme("CTNormalization", _ct, False),
        NormalizationScheme("NoNormalization", _none, False),
        NormalizationScheme("RescaleTo01Normalization", _rescale_01, False),
        NormalizationScheme("RGBTo01Normalization", _rgb_01, False),
    )
}

_CHANNEL_NAME_TO_SCHEME = {
    "ct": "CTNormalization",
    "nonorm": "NoNormalization",
    "zscore": "ZScoreNormalization",
    "rescale_to_0_1": "RescaleTo01Normalization",
    "rgb_to_0_1": "RGBTo01Normalization",
}


def scheme_for_channel_name(channel_name: str) -> NormalizationScheme:
    """The scheme nnU-Net picks for a ``channel_names`` entry (z-score unless the name says otherwise)."""
    return NORMALIZATION_SCHEMES[_CHANNEL_NAME_TO_SCHEME.get(channel_name.casefold(), "ZScoreNormalization")]


def normalize_channel(
    image: np.ndarray, scheme: str, use_mask: bool, seg: np.ndarray | None, intensity_properties: dict
) -> np.ndarray:
    """Normalises one channel ``(Z, Y, X)`` as float32.

    Args:
        image: the channel; converted to float32 (a copy when the input is another dtype).
        scheme: a name from ``NORMALIZATION_SCHEMES``.
        use_mask: restrict z-score statistics to the nonzero region (``seg >= 0``).
        seg: the label map after cropping (negative outside the nonzero region); needed when ``use_mask``.
        intensity_properties: the plans' foreground intensity properties of this channel (CT needs them).

    Raises:
        ValueError: for an unknown scheme or missing inputs.
    """
    if scheme not in NORMALIZATION_SCHEMES:
        raise ValueError(f"unknown normalization scheme {scheme!r}; known: {sorted(NORMALIZATION_SCHEMES)}")
    image = image.astype(np.float32, copy=False)
    mask = None
    if use_mask:
        if seg is None:
            raise ValueError("use_mask_for_norm needs the label map that marks the nonzero region")
        mask = seg >= 0
    return NORMALIZATION_SCHEMES[scheme].fn(image, mask, intensity_properties)
