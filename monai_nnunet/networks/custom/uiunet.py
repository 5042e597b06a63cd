"""UIU-Net (Wu et al., IEEE TIP 2023) built from an nnU-Net plans block, 2D or 3D."""

from __future__ import annotations

from collections.abc import Sequence

from typing import List

import torch
import torch.nn as nn

from monai_nnunet.networks.config import describe_arguments
from monai_nnunet.networks.blocks import PlansOps, interpolate_to
from monai_nnunet.networks.custom.ica_fusion import InteractiveCrossAttentionFusion
from monai_nnunet.networks.custom.rsu import DilatedResidualUBlock, ResidualUBlock
from monai_nnunet.networks.initialization import init_weights_he
from monai_nnunet.networks.stage_plan import make_stage_plan, scale_features

__all__ = ["DynamicUIUNet"]


class DynamicUIUNet(nn.Module):
    """UIU-Net: residual U-blocks nested in a U-Net, cross-attention skip fusion, fused side outputs.

    - Every stage of the outer U-Net is a residual U-block (RSU, U²-Net) with the plans' channels. Stage ``s``
      pools inside its block with the plans' strides of the stages below it (``strides[s + 1:]``), so the inner
      U-Nets follow the same anisotropic downsampling as the outer one; stages with nothing left to pool (the
      bottleneck) use the dilated RSU-F block. The outer encoder downsamples by max pooling with the plans'
      strides.
    - Each decoder stage upsamples the deeper map to the skip's size (linear interpolation), fuses it with the
      encoder skip through :class:`InteractiveCrossAttentionFusion`, concatenates the two results and applies an
      RSU block.
    - A side head (a convolution to ``num_classes``) reads every decoder stage and the bottleneck; the side
      logits, upsampled to full resolution, are fused by a 1x1 convolution into the final output.

    Deep supervision follows nnU-Net's convention: the fused output at full resolution first, then the side
    logits of decoder levels ``1 .. n_stages - 2`` at their own resolutions (``n_stages - 1`` tensors). The
    full-resolution and bottleneck side heads feed the fused output, so every parameter is used in every forward
    pass, whatever the switch.

    Args:
        input_channels: image channels.
        n_stages: resolution levels, bottleneck included (at least 2).
        features_per_stage: channels per stage (output of each stage's RSU block).
        conv_op: ``nn.Conv2d`` or ``nn.Conv3d``.
        kernel_sizes: kernel per stage, used by every convolution of that level.
        strides: stride per stage.
        n_conv_per_stage: accepted for plans compatibility; an RSU block's depth is set by the strides below it.
        num_classes: output channels.
        n_conv_per_stage_decoder: accepted for plans compatibility, as above.
        conv_bias: bias of convolutions before a norm.
        norm_op, norm_op_kwargs, dropout_op, dropout_op_kwargs, nonlin, nonlin_kwargs: the plans' operators.
        deep_supervision: initial value of the :attr:`deep_supervision` switch.
        mid_channels_ratio: channels inside an RSU block relative to its output channels (U²-Net: 0.5).
        max_inner_pools: cap on the poolings inside one RSU block (``None``: as many as the strides allow).
        dilated_depth: depth of the RSU-F blocks (U²-Net's RSU-4F: 4).
        fusion_reduction: channel reduction inside the attention fusion (UIU-Net: 4).
        features_scale: width multiplier (``features_per_stage`` times this, rounded); below 1 for small GPUs.

    Forward:
        input ``(B, input_channels, H, W[, D])``, each axis divisible by the product of the strides. Training mode
        with :attr:`deep_supervision` on: a list of ``n_stages - 1`` tensors
        ``(B, num_classes, H / s_l, W / s_l[, D / s_l])``, full resolution first; otherwise one
        ``(B, num_classes, H, W[, D])`` tensor.

    Raises:
        ValueError: for malformed plans or out-of-range options.
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
        mid_channels_ratio: float = 0.5,
        max_inner_pools: int | None = None,
        dilated_depth: int = 4,
        fusion_reduction: int = 4,
        features_scale: float = 1.0,
    ) -> None:
        init_kwargs = describe_arguments(locals())  # recorded in checkpoints: how to rebuild this network
        super().__init__()
        self.init_kwargs = init_kwargs
        if not 0 < mid_channels_ratio <= 1:
            raise ValueError(f"mid_channels_ratio must be in (0, 1], got {mid_channels_ratio}.")
        if max_inner_pools is not None and max_inner_pools < 0:
            raise ValueError(f"max_inner_pools must be >= 0 or None, got {max_inner_pools}.")
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
        self.stage_plan = plan
        self.num_classes = int(num_classes)
        self.deep_supervision = bool(deep_supervision)
        self.upsample_mode = ops.interp_mode
        f, k, n = plan.features, plan.kernel_sizes, plan.n_stages

        def rsu(level: int, in_channels: int) -> nn.Module:
            inner = list(plan.strides[level + 1 :])
            if max_inner_pools is not None:
                inner = inner[:max_inner_pools]
            mid = max(1, round(f[level] * mid_channels_ratio))
            if not inner:
                return DilatedResidualUBlock(ops, in_channels, mid, f[level], k[level], dilated_depth)
            return ResidualUBlock(ops, in_channels, mid, f[level], k[level], inner)

        self.encoder_pools = nn.ModuleList(ops.max_pool(plan.strides[s]) for s in range(n))
        self.encoder = nn.ModuleList(rsu(s, int(input_channels) if s == 0 else f[s - 1]) for s in range(n))
        self.fusions = nn.ModuleList(
            InteractiveCrossAttentionFusion(ops, f[level + 1], f[level], k[level], fusion_reduction)
            for level in range(n - 2, -1, -1)
        )
        self.decoder = nn.ModuleList(rsu(level, 2 * f[level]) for level in range(n - 2, -1, -1))
        self.side_heads = nn.ModuleList(ops.conv(f[level], self.num_classes, k[level], bias=True) for level in range(n))
        self.side_fusion = ops.conv(n * self.num_classes, self.num_classes, 1, bias=True)
        self.apply(init_weights_he)

    def forward_full_resolution(self, x: torch.Tensor) -> torch.Tensor:
        """The full-resolution logits ``(B, num_classes, *spatial)`` only (inference; TorchScript-compatible)."""
        return self._side_outputs(x)[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        """Args: x ``(B, C_in, H, W[, D])``. Returns: logits, see the class docstring."""
        outputs = self._side_outputs(x)
        if self.training and self.deep_supervision:
            return outputs[: len(self.side_heads) - 1]
        return outputs[0]

    def _side_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The fused output, then the side outputs of levels 1 .. n-1."""
        skips: List[torch.Tensor] = []
        h = x
        for pool, block in zip(self.encoder_pools, self.encoder):
            h = block(pool(h))
            skips.append(h)
        n = len(skips)
        per_level: List[torch.Tensor] = [skips[-1]]  # filled bottom-up: bottleneck, level n-2, ..., level 0
        d = skips[-1]
        for i, (fuse, block) in enumerate(zip(self.fusions, self.decoder)):
            skip = skips[n - 2 - i]
            low, high = fuse(interpolate_to(d, skip.shape[2:], self.upsample_mode), skip)
            d = block(torch.cat((low, high), dim=1))
            per_level.append(d)
        per_level.reverse()  # level 0 (full resolution) first
        sides: List[torch.Tensor] = []
        for i, head in enumerate(self.side_heads):  # iterate the ModuleList (TorchScript)
            sides.append(head(per_level[i]))
        full = sides[0].shape[2:]
        fused = self.side_fusion(torch.cat([interpolate_to(side, full, self.upsample_mode) for side in sides], dim=1))
        return [fused] + sides[1:]

