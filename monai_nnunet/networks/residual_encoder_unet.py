"""nnU-Net's ``ResidualEncoderUNet`` (the network of the ResEnc presets), built from the plans' operators.

The topology, parameter count and parameter names equal ``dynamic_network_architectures``'
``ResidualEncoderUNet`` with ``BasicBlockD`` blocks:

- ``encoder.stem``: one convolution-norm-nonlinearity at full resolution (``features_per_stage[0]`` channels);
- ``encoder.stages.{s}.blocks.{b}``: ``n_blocks_per_stage[s]`` ResNet-D basic blocks; the first carries the stage's
  stride; its skip is an average pooling (when strided) then a bias-free 1x1 convolution with norm (when the
  channels or the resolution change), the others are identity skips. Each block: conv1 (strided, dropout, norm,
  nonlinearity), conv2 (norm only), sum with the skip, nonlinearity;
- ``decoder.transpconvs.{d}`` / ``decoder.stages.{d}.convs.{c}`` / ``decoder.seg_layers.{d}``: nnU-Net's U-Net
  decoder, lowest resolution first, ``n_conv_per_stage_decoder[d]`` convolutions per stage and a 1x1 head per
  stage (all built, so weights load whatever the deep-supervision switch).

Sharing nnU-Net's parameter names makes weight interchange a matter of its alias keys
(:mod:`monai_nnunet.networks.nnunet_weights`). Weights are initialised as nnU-Net does (He normal with slope 1e-2,
zero biases, the last norm of every residual block zero so each block starts as its skip).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import torch
import torch.nn as nn
from monai.networks.layers.factories import Pool

from monai_nnunet.networks.blocks import ConvDropoutNormAct, PlansOps, StackedConvLayers
from monai_nnunet.networks.config import describe_arguments
from monai_nnunet.networks.initialization import init_weights_he
from monai_nnunet.networks.plans_architecture import spatial_dims_of
from monai_nnunet.networks.stage_plan import make_stage_plan

__all__ = ["BasicBlockD", "ResidualEncoder", "ResidualEncoderUNet", "ResEncUNetDecoder"]


class BasicBlockD(nn.Module):
    """ResNet-D basic block: ``act(conv2(conv1(x)) + skip(x))``, the stride in conv1 and in the skip's pooling.

    Args:
        ops: the plans' operators.
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: kernel of both convolutions.
        stride: stride of conv1 (and of the skip's average pooling).

    Input ``(B, in_channels, *spatial)``; output ``(B, out_channels, *spatial / stride)``.
    """

    def __init__(self, ops: PlansOps, in_channels: int, out_channels: int, kernel_size: Sequence[int],
                 stride: Sequence[int]) -> None:
        super().__init__()
        stride = tuple(int(s) for s in stride)
        self.conv1 = ConvDropoutNormAct(ops, in_channels, out_channels, kernel_size, stride)
        self.conv2 = ConvDropoutNormAct(replace(ops, dropout_op=None, nonlin=None), out_channels, out_channels,
                                        kernel_size)
        self.act = ops.act()
        strided = any(s != 1 for s in stride)
        if strided or in_channels != out_channels:
            layers: list[nn.Module] = []
            if strided:
                layers.append(Pool[Pool.AVG, ops.spatial_dims](kernel_size=stride, stride=stride))
            if in_channels != out_channels:
                projection = replace(ops, conv_bias=False, dropout_op=None, nonlin=None)
                layers.append(ConvDropoutNormAct(projection, in_channels, out_channels, 1))
            self.skip: nn.Module = nn.Sequential(*layers)
        else:
            self.skip = nn.Identity()

    def zero_last_norm(self) -> None:
        """nnU-Net's ``init_last_bn_before_add_to_0``: conv2's norm scale and shift zero, so the block starts as
        its skip."""
        norm = self.conv2.norm
        if getattr(norm, "weight", None) is not None:
            nn.init.zeros_(norm.weight)
        if getattr(norm, "bias", None) is not None:
            nn.init.zeros_(norm.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x ``(B, C_in, *spatial)``. Returns ``(B, C_out, *spatial / stride)``."""
        return self.act(self.conv2(self.conv1(x)) + self.skip(x))


class _ResidualStage(nn.Module):
    """``n`` :class:`BasicBlockD`, the first one strided (nnU-Net's ``StackedResidualBlocks``)."""

    def __init__(self, ops: PlansOps, n: int, in_channels: int, out_channels: int, kernel_size: Sequence[int],
                 stride: Sequence[int]) -> None:
        super().__init__()
        if n < 1:
            raise ValueError(f"n_blocks_per_stage entries must be at least 1, got {n}.")
        blocks = [BasicBlockD(ops, in_channels, out_channels, kernel_size, stride)]
        blocks += [BasicBlockD(ops, out_channels, out_channels, kernel_size, (1,) * len(stride))
                   for _ in range(n - 1)]
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


class _ConvStage(nn.Module):
    """:class:`StackedConvLayers` under the name nnU-Net's ``StackedConvBlocks`` gives them (``convs``)."""

    def __init__(self, convs: StackedConvLayers) -> None:
        super().__init__()
        self.convs = convs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.convs(x)


class ResidualEncoder(nn.Module):
    """Stem and residual stages; returns every stage's output (the skips), bottleneck last.

    Args:
        ops: the plans' operators.
        input_channels: image channels.
        features: channels per stage.
        kernel_sizes: kernel per stage.
        strides: stride per stage.
        n_blocks: residual blocks per stage.
    """

    def __init__(self, ops: PlansOps, input_channels: int, features: Sequence[int], kernel_sizes, strides,
                 n_blocks: Sequence[int]) -> None:
        super().__init__()
        self.stem = _ConvStage(StackedConvLayers(ops, 1, input_channels, features[0], kernel_sizes[0]))
        channels = features[0]
        stages = []
        for s, out in enumerate(features):
            stages.append(_ResidualStage(ops, n_blocks[s], channels, out, kernel_sizes[s], strides[s]))
            channels = out
        self.stages = nn.Sequential(*stages)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Args: x ``(B, C_in, *spatial)``. Returns the stages' outputs, full resolution first."""
        x = self.stem(x)
        skips: list[torch.Tensor] = []
        for stage in self.stages:
            x = stage(x)
            skips.append(x)
        return skips


class ResEncUNetDecoder(nn.Module):
    """nnU-Net's U-Net decoder: per stage (lowest resolution first) a transposed convolution, concatenation with
    the skip, ``n_conv`` convolutions and a 1x1 segmentation head.

    Args:
        ops: the plans' operators (the transposed convolutions carry ``conv_bias``, the heads a bias).
        features: the encoder's channels per stage.
        kernel_sizes: the encoder's kernels (decoder stage of level ``l`` uses level ``l``'s).
        strides: the encoder's strides.
        n_conv: convolutions per decoder stage, lowest resolution first.
        num_classes: output channels of the heads.
    """

    def __init__(self, ops: PlansOps, features: Sequence[int], kernel_sizes, strides, n_conv: Sequence[int],
                 num_classes: int) -> None:
        super().__init__()
        self.transpconvs, self.stages, self.seg_layers = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        for d, s in enumerate(range(len(features) - 1, 0, -1)):
            self.transpconvs.append(ops.transposed_conv(features[s], features[s - 1], strides[s]))
            self.stages.append(_ConvStage(StackedConvLayers(ops, n_conv[d], 2 * features[s - 1], features[s - 1],
                                                            kernel_sizes[s - 1])))
            self.seg_layers.append(ops.conv(features[s - 1], int(num_classes), 1, bias=True))

    def forward_full_resolution(self, skips: list[torch.Tensor]) -> torch.Tensor:
        """Args: the encoder's outputs. Returns the full-resolution logits ``(B, num_classes, *spatial)``."""
        x = skips[-1]
        for d, (up, stage) in enumerate(zip(self.transpconvs, self.stages)):
            x = stage(torch.cat([up(x), skips[len(skips) - 2 - d]], dim=1))
        return self.seg_layers[-1](x)

    def forward(self, skips: list[torch.Tensor]) -> list[torch.Tensor]:
        """Args: the encoder's outputs. Returns every stage's logits, full resolution first."""
        x = skips[-1]
        outputs: list[torch.Tensor] = []
        for d, (up, stage, head) in enumerate(zip(self.transpconvs, self.stages, self.seg_layers)):
            x = stage(torch.cat([up(x), skips[len(skips) - 2 - d]], dim=1))
            outputs.append(head(x))
        return outputs[::-1]


class ResidualEncoderUNet(nn.Module):
    """nnU-Net's residual-encoder U-Net from a plans ``architecture`` block (the ResEnc presets' network).

    Args:
        input_channels: image channels.
        n_stages: resolution levels, bottleneck included (at least 2).
        features_per_stage: channels per stage.
        conv_op: ``nn.Conv2d`` or ``nn.Conv3d`` (or its allowlisted name).
        kernel_sizes: kernel per stage.
        strides: stride per stage (the first normally all ones).
        n_blocks_per_stage: residual blocks per encoder stage.
        num_classes: output channels (segmentation heads).
        n_conv_per_stage_decoder: convolutions per decoder stage, lowest resolution first.
        conv_bias: bias of the convolutions and transposed convolutions (not of the skip projections, as nnU-Net).
        norm_op, norm_op_kwargs, dropout_op, dropout_op_kwargs, nonlin, nonlin_kwargs: the plans' operators
            (classes or allowlisted names) and their arguments.
        deep_supervision: training-mode forward returns the logits of every decoder stage.

    Forward:
        input ``(B, input_channels, H, W[, D])`` with each axis divisible by the product of the strides. In
        training mode with :attr:`deep_supervision` on, a list of ``n_stages - 1`` logits tensors, full resolution
        first, each at its stage's resolution; otherwise one ``(B, num_classes, H, W[, D])`` tensor.

    Raises:
        ValueError: for per-stage arguments of the wrong length or an operator outside the allowlist.
    """

    def __init__(
        self,
        input_channels: int,
        n_stages: int,
        features_per_stage: int | Sequence[int],
        conv_op: type[nn.Module],
        kernel_sizes: int | Sequence[int | Sequence[int]],
        strides: int | Sequence[int | Sequence[int]],
        n_blocks_per_stage: int | Sequence[int],
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
                               n_blocks_per_stage, n_conv_per_stage_decoder)
        self.stage_plan = plan
        self.encoder = ResidualEncoder(ops, int(input_channels), plan.features, plan.kernel_sizes, plan.strides,
                                       plan.n_conv)
        self.decoder = ResEncUNetDecoder(ops, plan.features, plan.kernel_sizes, plan.strides, plan.n_conv_decoder,
                                   int(num_classes))
        self.num_classes = int(num_classes)
        self.deep_supervision = bool(deep_supervision)
        self.apply(init_weights_he)
        for module in self.modules():
            if isinstance(module, BasicBlockD):
                module.zero_last_norm()

    def forward_full_resolution(self, x: torch.Tensor) -> torch.Tensor:
        """The full-resolution logits ``(B, num_classes, *spatial)`` only (inference; TorchScript-compatible)."""
        return self.decoder.forward_full_resolution(self.encoder(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        """Args: x ``(B, C_in, H, W[, D])``. Returns: logits, see the class docstring."""
        if not (self.training and self.deep_supervision):
            return self.forward_full_resolution(x)
        return self.decoder(self.encoder(x))
