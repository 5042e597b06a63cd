"""Per-stage U-Net topology (features, kernels, strides, convolutions) from nnU-Net's ``arch_kwargs``.

nnU-Net lets each of these be one value for every stage or a list with one entry per stage, and a kernel or stride
be one integer for all axes or one per axis. :func:`make_stage_plan` expands and checks them once, so every network
in this package reads the same, fully explicit tuples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from math import prod

__all__ = ["StagePlan", "make_stage_plan", "scale_features"]

IntOrSeq = int | Sequence[int]


@dataclass(frozen=True)
class StagePlan:
    """Explicit per-stage topology of a U-Net with ``n_stages`` resolution levels.

    Attributes:
        spatial_dims: 2 or 3.
        features: output channels of each encoder stage.
        kernel_sizes: convolution kernel per stage, one entry per axis.
        strides: downsampling stride per stage, one entry per axis (stage 0 is usually all ones).
        n_conv: convolutions per encoder stage.
        n_conv_decoder: convolutions per decoder stage, lowest resolution first (nnU-Net's order).
    """

    spatial_dims: int
    features: tuple[int, ...]
    kernel_sizes: tuple[tuple[int, ...], ...]
    strides: tuple[tuple[int, ...], ...]
    n_conv: tuple[int, ...]
    n_conv_decoder: tuple[int, ...]

    @property
    def n_stages(self) -> int:
        """Number of resolution levels, the bottleneck included."""
        return len(self.features)

    def cumulative_stride(self, stage: int) -> tuple[int, ...]:
        """Total downsampling factor per axis of the feature map leaving encoder ``stage``."""
        return tuple(prod(self.strides[s][a] for s in range(stage + 1)) for a in range(self.spatial_dims))

    def decoder_n_conv(self, level: int) -> int:
        """Convolutions of the decoder stage that outputs resolution ``level`` (0 = full resolution)."""
        return self.n_conv_decoder[self.n_stages - 2 - level]


def make_stage_plan(
    spatial_dims: int,
    n_stages: int,
    features_per_stage: IntOrSeq,
    kernel_sizes: int | Sequence[IntOrSeq],
    strides: int | Sequence[IntOrSeq],
    n_conv_per_stage: IntOrSeq,
    n_conv_per_stage_decoder: IntOrSeq,
) -> StagePlan:
    """Expands nnU-Net's per-stage arguments into a :class:`StagePlan`.

    Args:
        spatial_dims: 2 or 3.
        n_stages: number of resolution levels (encoder stages, bottleneck included).
        features_per_stage: channels per stage, or one value for all.
        kernel_sizes: kernel per stage (an int or one int per axis), or one int for all.
        strides: stride per stage (an int or one int per axis), or one int for all.
        n_conv_per_stage: convolutions per encoder stage, or one value for all.
        n_conv_per_stage_decoder: convolutions per decoder stage (``n_stages - 1`` of them), or one value for all.

    Returns:
        The explicit plan.

    Raises:
        ValueError: on a list of the wrong length, an axis count that is not ``spatial_dims``, or a
            non-positive entry.
    """
    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}.")
    if int(n_stages) < 2:
        raise ValueError(f"n_stages must be at least 2, got {n_stages}.")
    n_stages = int(n_stages)
    features = _per_stage("features_per_stage", features_per_stage, n_stages)
    n_conv = _per_stage("n_conv_per_stage", n_conv_per_stage, n_stages)
    n_conv_dec = _per_stage("n_conv_per_stage_decoder", n_conv_per_stage_decoder, n_stages - 1)
    kernels = _per_stage_axes("kernel_sizes", kernel_sizes, n_stages, spatial_dims)
    stride_t = _per_stage_axes("strides", strides, n_stages, spatial_dims)
    for name, values in (("features_per_stage", features), ("n_conv_per_stage", n_conv)):
        if min(values) < 1:
            raise ValueError(f"{name} entries must be positive, got {list(values)}.")
    if min(n_conv_dec) < 1:
        raise ValueError(f"n_conv_per_stage_decoder entries must be positive, got {list(n_conv_dec)}.")
    if min(min(k) for k in kernels) < 1 or min(min(s) for s in stride_t) < 1:
        raise ValueError("kernel sizes and strides must be positive.")
    return StagePlan(spatial_dims, features, kernels, stride_t, n_conv, n_conv_dec)


def scale_features(plan: StagePlan, scale: float) -> StagePlan:
    """The plan with every stage's channels multiplied by ``scale`` (rounded, at least 1): a width multiplier.

    Args:
        plan: the stage plan.
        scale: positive factor; 1 returns ``plan`` itself.

    Raises:
        ValueError: when ``scale`` is not positive.
    """
    if not scale > 0:
        raise ValueError(f"features_scale must be positive, got {scale}.")
    if scale == 1:
        return plan
    return replace(plan, features=tuple(max(1, round(f * scale)) for f in plan.features))


def _per_stage(name: str, value: IntOrSeq, n: int) -> tuple[int, ...]:
    if isinstance(value, int):
        return (int(value),) * n
    values = tuple(int(v) for v in value)
    if len(values) != n:
        raise ValueError(f"{name} needs {n} entries, got {len(values)}: {list(values)}.")
    return values


def _per_stage_axes(name: str, value: int | Sequence[IntOrSeq], n: int, dims: int) -> tuple[tuple[int, ...], ...]:
    if isinstance(value, int):
        return ((int(value),) * dims,) * n
    stages = list(value)
    if len(stages) != n:
        raise ValueError(f"{name} needs {n} entries (one per stage), got {len(stages)}: {stages}.")
    out = []
    for entry in stages:
        axes = (int(entry),) * dims if isinstance(entry, int) else tuple(int(v) for v in entry)
        if len(axes) != dims:
            raise ValueError(f"each entry of {name} needs {dims} axes, got {list(axes)}.")
        out.append(axes)
    return tuple(out)
