"""KiU-Net (Valanarasu et al., MICCAI 2020 / IEEE TMI 2021) built from an nnU-Net plans block, 2D or 3D."""

from __future__ import annotations

from collections.abc import Sequence

from typing import List

import torch
import torch.nn as nn

from monai_nnunet.networks.config import describe_arguments
from monai_nnunet.networks.blocks import PlansOps, SkipMergeBlock, StackedConvLayers, interpolate_to
from monai_nnunet.networks.custom.crfb import CrossResidualFusion
from monai_nnunet.networks.initialization import init_weights_he
from monai_nnunet.networks.stage_plan import StagePlan, make_stage_plan, scale_features

__all__ = ["DynamicKiUNet", "kinet_scales"]

POOL_TYPES = ("max", "conv")


class DynamicKiUNet(nn.Module):
    """KiU-Net: an undercomplete U-Net and an overcomplete Ki-Net branch joined at every level.

    - U-Net branch: nnU-Net's plain U-Net from the plans (encoder stages with the plans' strides, decoder with
      transposed convolutions and concatenated skips). ``pool_type='max'`` downsamples with max pooling followed
      by stride-1 convolutions (KiU-Net's choice); ``'conv'`` with strided convolutions (nnU-Net's).
    - Ki-Net branch: the mirror image. Each encoder stage convolves and then *upsamples* by the plans' stride of
      that stage (linear interpolation); each decoder stage *downsamples* (max pooling, or a strided convolution
      with ``pool_type='conv'``), concatenates the Ki-Net skip and convolves. Its growth is capped per axis at
      ``kinet_max_scale`` times the input size (2 by default) so that 3D patches fit in memory; past the cap its
      stages keep the resolution.
    - A :class:`CrossResidualFusion` after every encoder stage and every decoder stage exchanges features
      between the branches.
    - At full resolution the Ki-Net map is projected to the U-Net's channels (1x1 convolution) and added; the
      segmentation head reads the sum.

    Deep supervision follows nnU-Net: one 1x1 head per decoder level, logits at each level's own resolution,
    full resolution first (``n_stages - 1`` tensors). All parameters take part in every training-mode forward pass
    with deep supervision on (the default of nnU-Net training), as DDP requires.

    Args:
        input_channels: image channels.
        n_stages: resolution levels of the U-Net branch, bottleneck included (at least 2).
        features_per_stage: U-Net channels per stage.
        conv_op: ``nn.Conv2d`` or ``nn.Conv3d``.
        kernel_sizes: kernel per stage (used by both branches and the fusion blocks of that level).
        strides: stride per stage; the U-Net branch divides, the Ki-Net branch multiplies by it (up to the cap).
        n_conv_per_stage: convolutions per encoder stage (both branches).
        num_classes: output channels.
        n_conv_per_stage_decoder: convolutions per decoder stage (both branches).
        conv_bias: bias of convolutions before a norm (nnU-Net's plans say ``True``).
        norm_op, norm_op_kwargs, dropout_op, dropout_op_kwargs, nonlin, nonlin_kwargs: the plans' operators.
        deep_supervision: initial value of the :attr:`deep_supervision` switch.
        pool_type: ``'max'`` or ``'conv'``, see above.
        kinet_features_per_stage: Ki-Net channels per stage (one int for all); default half of the first
            U-Net stage's channels at every stage, which keeps the high-resolution maps affordable.
        kinet_max_scale: cap of the Ki-Net branch's upscaling relative to the input, one int or one per axis.
            Every per-stage growth factor must stay an integer.
        features_scale: width multiplier of the U-Net branch (``features_per_stage`` times this, rounded); below 1
            for small GPUs.

    Forward:
        input ``(B, input_channels, H, W[, D])``, each axis divisible by the product of the strides. Training mode
        with :attr:`deep_supervision` on: a list of ``n_stages - 1`` tensors
        ``(B, num_classes, H / s_l, W / s_l[, D / s_l])``, full resolution first; otherwise one
        ``(B, num_classes, H, W[, D])`` tensor.

    Raises:
        ValueError: for an unknown ``pool_type``, a non-integer Ki-Net growth factor or malformed plans.
    """

    def __init__(
        self,
        input_channels: int,
        n_stages: int,
        features_per_stage: int | Sequence[int],
        conv_op: type[nn.Module],
        kernel_sizes: int | Sequence[int | Sequence[int]],
        strides: int | Sequence[int | Sequence[int]],
        n_conv_per_stage: int | Sequence[int],
        num_classes: int,
        n_conv_per_stage_decoder: int | Sequence[int],
        conv_bias: bool = False,
        norm_op: type[nn.Module] | None = None,
        norm_op_kwargs: dict | None = None,
        dropout_op: type[nn.Module] | None = None,
        dropout_op_kwargs: dict | None = None,
        nonlin: type[nn.Module] | None = None,
        nonlin_kwargs: dict | None = None,
        deep_supervision: bool = False,
        pool_type: str = "max",
        kinet_features_per_stage: int | Sequence[int] | None = None,
        kinet_max_scale: int | Sequence[int] = 2,
        features_scale: float = 1.0,
    ) -> None:
        init_kwargs = describe_arguments(locals())  # recorded in checkpoints: how to rebuild this network
        super().__init__()
        self.init_kwargs = init_kwargs
        if pool_type not in POOL_TYPES:
            raise ValueError(f"pool_type must be one of {POOL_TYPES}, got {pool_type!r}.")
        ops = PlansOps.from_arch_kwargs(
            conv_op, conv_bias, norm_op, norm_op_kwargs, dropout_op, dropout_op_kwargs, nonlin, nonlin_kwargs
        )
        plan = make_stage_plan(
            ops.spatial_dims,
            n_stages,
            features_per_stage,
            kernel_sizes,
            strides,
            n_conv_per_stage,
            n_conv_per_stage_decoder,
        )
        plan = scale_features(plan, features_scale)
        kf = _kinet_features(kinet_features_per_stage, plan)
        scales = kinet_scales(plan, kinet_max_scale)
        ratios = _growth_ratios(scales)
        self.stage_plan = plan
        self.kinet_scales = scales
        self.num_classes = int(num_classes)
        self.pool_type = pool_type
        self.deep_supervision = bool(deep_supervision)
        f, k, n = plan.features, plan.kernel_sizes, plan.n_stages

        self.unet_encoder = nn.ModuleList()
        self.kinet_encoder = nn.ModuleList()
        self.encoder_fusion = nn.ModuleList()
        u_in, k_in = int(input_channels), int(input_channels)
        for s in range(n):
            if pool_type == "max":
                convs = StackedConvLayers(ops, plan.n_conv[s], u_in, f[s], k[s])
                stage = nn.Sequential(ops.max_pool(plan.strides[s]), convs)
            else:
                stage = StackedConvLayers(ops, plan.n_conv[s], u_in, f[s], k[s], plan.strides[s])
            self.unet_encoder.append(stage)
            self.kinet_encoder.append(
                nn.Sequential(StackedConvLayers(ops, plan.n_conv[s], k_in, kf[s], k[s]), _UpsampleBy(ratios[s], ops))
            )
            self.encoder_fusion.append(CrossResidualFusion(ops, f[s], kf[s], k[s]))
            u_in, k_in = f[s], kf[s]

        self.unet_decoder = nn.ModuleList()
        self.kinet_decoder = nn.ModuleList()
        self.decoder_fusion = nn.ModuleList()
        for level in range(n - 2, -1, -1):
            n_conv = plan.decoder_n_conv(level)
            up = ops.transposed_conv(f[level + 1], f[level], plan.strides[level + 1])
            self.unet_decoder.append(
                SkipMergeBlock(up, StackedConvLayers(ops, n_conv, 2 * f[level], f[level], k[level]))
            )
            if pool_type == "max":
                down, down_channels = ops.max_pool(ratios[level + 1]), kf[level + 1]
            else:
                ratio = ratios[level + 1]
                down, down_channels = ops.conv(kf[level + 1], kf[level], ratio, ratio), kf[level]
            self.kinet_decoder.append(
                SkipMergeBlock(down, StackedConvLayers(ops, n_conv, down_channels + kf[level], kf[level], k[level]))
            )
            self.decoder_fusion.append(CrossResidualFusion(ops, f[level], kf[level], k[level]))

        self.branch_merge = ops.conv(kf[0], f[0], 1, bias=True)
        self.seg_heads = nn.ModuleList(ops.conv(f[level], self.num_classes, 1, bias=True) for level in range(n - 1))
        self.apply(init_weights_he)

    def forward_full_resolution(self, x: torch.Tensor) -> torch.Tensor:
        """The full-resolution logits ``(B, num_classes, *spatial)`` only (inference; TorchScript-compatible)."""
        u, k = x, x
        u_skips: list[torch.Tensor] = []
        k_skips: list[torch.Tensor] = []
        for u_stage, k_stage, fuse in zip(self.unet_encoder, self.kinet_encoder, self.encoder_fusion):
            u, k = fuse(u_stage(u), k_stage(k))
            u_skips.append(u)
            k_skips.append(k)
        n = len(u_skips)
        for i, (u_stage, k_stage, fuse) in enumerate(zip(self.unet_decoder, self.kinet_decoder, self.decoder_fusion)):
            level = n - 2 - i
            u, k = fuse(u_stage(u, u_skips[level]), k_stage(k, k_skips[level]))
        return self.seg_heads[0](u + self.branch_merge(k))

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        """Args: x ``(B, C_in, H, W[, D])``. Returns: logits, see the class docstring."""
        if not (self.training and self.deep_supervision):
            return self.forward_full_resolution(x)
        u, k = x, x
        u_skips, k_skips = [], []
        for u_stage, k_stage, fuse in zip(self.unet_encoder, self.kinet_encoder, self.encoder_fusion):
            u, k = fuse(u_stage(u), k_stage(k))
            u_skips.append(u)
            k_skips.append(k)
        want_all = self.training and self.deep_supervision
        lower_outputs: list[torch.Tensor] = []
        n = len(u_skips)
        for i, (u_stage, k_stage, fuse) in enumerate(zip(self.unet_decoder, self.kinet_decoder, self.decoder_fusion)):
            level = n - 2 - i
            u, k = fuse(u_stage(u, u_skips[level]), k_stage(k, k_skips[level]))
            if want_all and level > 0:
                lower_outputs.append(self.seg_heads[level](u))
        top = self.seg_heads[0](u + self.branch_merge(k))
        if not want_all:
            return top
        return [top, *lower_outputs[::-1]]


def kinet_scales(plan: StagePlan, max_scale: int | Sequence[int]) -> tuple[tuple[int, ...], ...]:
    """Upscaling of the Ki-Net map after each encoder stage, relative to the input, per axis.

    ``min(cumulative stride, max_scale)`` per axis: the mirror image of the U-Net branch's downsampling, capped.

    Args:
        plan: the stage plan.
        max_scale: cap, one int or one per axis, at least 1.

    Returns:
        One tuple per stage.

    Raises:
        ValueError: when the cap is below 1 or has the wrong number of axes.
    """
    cap = (int(max_scale),) * plan.spatial_dims if isinstance(max_scale, int) else tuple(int(c) for c in max_scale)
    if len(cap) != plan.spatial_dims or min(cap) < 1:
        raise ValueError(f"kinet_max_scale must be >= 1 with {plan.spatial_dims} axes, got {max_scale!r}.")
    return tuple(
        tuple(min(c, m) for c, m in zip(plan.cumulative_stride(s), cap)) for s in range(plan.n_stages)
    )


def _growth_ratios(scales: tuple[tuple[int, ...], ...]) -> tuple[tuple[int, ...], ...]:
    ratios = [scales[0]]
    for prev, cur in zip(scales[:-1], scales[1:]):
        if any(c % p for c, p in zip(cur, prev)):
            raise ValueError(
                f"Ki-Net growth from scale {prev} to {cur} is not an integer factor; change kinet_max_scale."
            )
        ratios.append(tuple(c // p for c, p in zip(cur, prev)))
    return tuple(ratios)


def _kinet_features(value: int | Sequence[int] | None, plan: StagePlan) -> tuple[int, ...]:
    if value is None:
        return (max(1, plan.features[0] // 2),) * plan.n_stages
    if isinstance(value, int):
        out = (int(value),) * plan.n_stages
    else:
        out = tuple(int(v) for v in value)
    if len(out) != plan.n_stages or min(out) < 1:
        raise ValueError(f"kinet_features_per_stage needs {plan.n_stages} positive entries, got {value!r}.")
    return out


class _UpsampleBy(nn.Module):
    """Linear upsampling by an integer factor per axis (identity for all-ones)."""

    def __init__(self, factor: Sequence[int], ops: PlansOps) -> None:
        super().__init__()
        self.factor: List[int] = [int(f) for f in factor]
        self.mode = ops.interp_mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[2:]
        return interpolate_to(x, [int(size[i]) * self.factor[i] for i in range(len(self.factor))], self.mode)
