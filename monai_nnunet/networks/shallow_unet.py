"""nnU-Net's plain U-Net for plans with fewer than three stages, which MONAI's DynUNet cannot express.

Plans for small images at a coarse spacing (e.g. Hippocampus re-planned at 4 mm) have two stages. :class:`ShallowPlainUNet` builds the same topology as nnU-Net's ``PlainConvUNet`` from the blocks the custom
architectures use: encoder stages of ``n_conv_per_stage`` convolution-dropout-norm-nonlinearity layers (the first
one strided), a transposed convolution per decoder stage, concatenation with the skip, ``n_conv_per_stage_decoder``
layers and a 1x1 segmentation head per decoder stage.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from monai_nnunet.networks.blocks import PlansOps, StackedConvLayers
from monai_nnunet.networks.config import describe_arguments
from monai_nnunet.networks.initialization import init_weights_he
from monai_nnunet.networks.plans_architecture import spatial_dims_of
from monai_nnunet.networks.stage_plan import make_stage_plan

__all__ = ["ShallowPlainUNet"]


class ShallowPlainUNet(nn.Module):
    """A plain U-Net of any depth of at least two stages (used for two), with nnU-Net's ``PlainConvUNet`` arguments.

    Args:
        input_channels, n_stages, features_per_stage, conv_op, kernel_sizes, strides, n_conv_per_stage,
        num_classes, n_conv_per_stage_decoder, conv_bias, norm_op, norm_op_kwargs, dropout_op, dropout_op_kwargs,
        nonlin, nonlin_kwargs: the plans' ``arch_kwargs`` (operators as classes or allowlisted names).
        deep_supervision: training-mode forward returns the logits of every decoder stage, highest resolution first
            (two stages: a list of one).

    Returns (forward):
        logits ``(B, num_classes, H, W[, D])``, or the deep-supervision list.
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
    ) -> None:
        init_kwargs = describe_arguments(locals())  # recorded in checkpoints: how to rebuild this network
        super().__init__()
        self.init_kwargs = init_kwargs
        ops = PlansOps.from_arch_kwargs(
            conv_op, conv_bias, norm_op, norm_op_kwargs, dropout_op, dropout_op_kwargs, nonlin, nonlin_kwargs
        )
        plan = make_stage_plan(spatial_dims_of(ops.conv_op), n_stages, features_per_stage, kernel_sizes, strides,
                               n_conv_per_stage, n_conv_per_stage_decoder)
        features = list(plan.features)
        self.encoder = nn.ModuleList()
        channels = int(input_channels)
        for s in range(plan.n_stages):
            self.encoder.append(StackedConvLayers(ops, plan.n_conv[s], channels, features[s], plan.kernel_sizes[s],
                                                  plan.strides[s]))
            channels = features[s]
        self.upsamples, self.decoder, self.seg_heads = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        for d, s in enumerate(range(plan.n_stages - 1, 0, -1)):  # lowest resolution first, as nnU-Net
            self.upsamples.append(ops.transposed_conv(features[s], features[s - 1], plan.strides[s]))
            self.decoder.append(StackedConvLayers(ops, plan.n_conv_decoder[d], 2 * features[s - 1], features[s - 1],
                                                  plan.kernel_sizes[s - 1]))
            self.seg_heads.append(ops.conv(features[s - 1], int(num_classes), 1, bias=True))
        self.num_classes = int(num_classes)
        self.deep_supervision = bool(deep_supervision)
        self.apply(init_weights_he)

    def forward_full_resolution(self, x: torch.Tensor) -> torch.Tensor:
        """The full-resolution logits ``(B, num_classes, *spatial)`` only (inference; TorchScript-compatible)."""
        skips: list[torch.Tensor] = []
        for stage in self.encoder:
            x = stage(x)
            skips.append(x)
        for d, (up, convs) in enumerate(zip(self.upsamples, self.decoder)):
            x = convs(torch.cat([up(x), skips[len(skips) - 2 - d]], dim=1))
        return self.seg_heads[-1](x)

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        """Args: x ``(B, C_in, H, W[, D])``. Returns: logits, see the class docstring."""
        if not (self.training and self.deep_supervision):
            return self.forward_full_resolution(x)
        skips = []
        for stage in self.encoder:
            x = stage(x)
            skips.append(x)
        outputs = []
        for d, (up, convs, head) in enumerate(zip(self.upsamples, self.decoder, self.seg_heads)):
            x = convs(torch.cat([up(x), skips[-(d + 2)]], dim=1))
            outputs.append(head(x))
        return outputs[::-1]  # highest resolution first
