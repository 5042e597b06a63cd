"""Layers built from the plans' operators, shared by the custom architectures.

:class:`PlansOps` carries the operator choice of a plans block (convolution, normalisation, dropout, non-linearity
and their arguments) and makes layers from it, so a network written once runs as 2D or 3D, with instance or batch
norm, as the plans say. The blocks follow nnU-Net's order: convolution -> dropout -> normalisation -> non-linearity.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, List

import torch
import torch.nn as nn
import torch.nn.functional as F

from monai_nnunet.networks.operators import resolve_operator
from monai_nnunet.networks.plans_architecture import spatial_dims_of

__all__ = [
    "ConvDropoutNormAct",
    "PlansOps",
    "SkipMergeBlock",
    "StackedConvLayers",
    "interpolate_to",
]


@dataclass(frozen=True)
class PlansOps:
    """Operators of one plans ``architecture`` block and factories for the layers made of them.

    Attributes:
        conv_op: ``nn.Conv2d`` or ``nn.Conv3d``; fixes the number of spatial dimensions.
        norm_op: normalisation class called as ``norm_op(channels, **norm_op_kwargs)``, or ``None``.
        norm_op_kwargs: its arguments.
        dropout_op: dropout class called as ``dropout_op(**dropout_op_kwargs)``, or ``None``.
        dropout_op_kwargs: its arguments.
        nonlin: non-linearity class called as ``nonlin(**nonlin_kwargs)``, or ``None``.
        nonlin_kwargs: its arguments.
        conv_bias: whether the convolutions that precede a normalisation carry a bias.
    """

    conv_op: type[nn.Module]
    norm_op: type[nn.Module] | None = None
    norm_op_kwargs: dict[str, Any] = field(default_factory=dict)
    dropout_op: type[nn.Module] | None = None
    dropout_op_kwargs: dict[str, Any] = field(default_factory=dict)
    nonlin: type[nn.Module] | None = None
    nonlin_kwargs: dict[str, Any] = field(default_factory=dict)
    conv_bias: bool = False

    @classmethod
    def from_arch_kwargs(
        cls,
        conv_op: type[nn.Module],
        conv_bias: bool = False,
        norm_op: type[nn.Module] | None = None,
        norm_op_kwargs: dict | None = None,
        dropout_op: type[nn.Module] | None = None,
        dropout_op_kwargs: dict | None = None,
        nonlin: type[nn.Module] | None = None,
        nonlin_kwargs: dict | None = None,
    ) -> PlansOps:
        """Builds the operator set from nnU-Net's argument names (``None`` kwargs become empty dicts).

        Raises:
            ValueError: when ``conv_op`` is not a 2D or 3D convolution.
        """
        conv_op, norm_op, dropout_op, nonlin = (resolve_operator(k, v) for k, v in (
            ("conv_op", conv_op), ("norm_op", norm_op), ("dropout_op", dropout_op), ("nonlin", nonlin)))
        spatial_dims_of(conv_op)
        return cls(
            conv_op=conv_op,
            norm_op=norm_op,
            norm_op_kwargs=dict(norm_op_kwargs or {}),
            dropout_op=dropout_op,
            dropout_op_kwargs=dict(dropout_op_kwargs or {}),
            nonlin=nonlin,
            nonlin_kwargs=dict(nonlin_kwargs or {}),
            conv_bias=bool(conv_bias),
        )

    @property
    def spatial_dims(self) -> int:
        """2 or 3."""
        return spatial_dims_of(self.conv_op)

    @property
    def interp_mode(self) -> str:
        """Linear interpolation mode matching the dimensionality: ``'bilinear'`` or ``'trilinear'``."""
        return "trilinear" if self.spatial_dims == 3 else "bilinear"

    def conv(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Sequence[int] | int,
        stride: Sequence[int] | int = 1,
        dilation: int = 1,
        bias: bool | None = None,
    ) -> nn.Module:
        """A convolution with 'same' padding (``dilation * (k - 1) // 2`` per axis, as nnU-Net).

        Args:
            in_channels: input channels.
            out_channels: output channels.
            kernel_size: kernel, one int or one per axis.
            stride: stride, one int or one per axis.
            dilation: dilation for every axis.
            bias: whether to add a bias; ``None`` takes ``conv_bias``.
        """
        kernel = self._axes(kernel_size)
        padding = tuple(dilation * (k - 1) // 2 for k in kernel)
        return self.conv_op(
            in_channels,
            out_channels,
            kernel,
            stride=self._axes(stride),
            padding=padding,
            dilation=dilation,
            bias=self.conv_bias if bias is None else bias,
        )

    def transposed_conv(self, in_channels: int, out_channels: int, stride: Sequence[int] | int) -> nn.Module:
        """A transposed convolution with kernel = stride (nnU-Net's decoder upsampling), bias ``conv_bias``."""
        cls = nn.ConvTranspose3d if self.spatial_dims == 3 else nn.ConvTranspose2d
        stride_t = self._axes(stride)
        return cls(in_channels, out_channels, stride_t, stride=stride_t, bias=self.conv_bias)

    def max_pool(self, stride: Sequence[int] | int) -> nn.Module:
        """Max pooling with kernel = stride; identity when the stride is one on every axis."""
        stride_t = self._axes(stride)
        if all(s == 1 for s in stride_t):
            return nn.Identity()
        cls = nn.MaxPool3d if self.spatial_dims == 3 else nn.MaxPool2d
        return cls(stride_t, stride=stride_t)

    def norm(self, channels: int) -> nn.Module:
        """The plans' normalisation for ``channels`` channels, or identity."""
        return nn.Identity() if self.norm_op is None else self.norm_op(channels, **self.norm_op_kwargs)

    def act(self) -> nn.Module:
        """The plans' non-linearity, or identity."""
        return nn.Identity() if self.nonlin is None else self.nonlin(**self.nonlin_kwargs)

    def dropout(self) -> nn.Module:
        """The plans' dropout, or identity."""
        return nn.Identity() if self.dropout_op is None else self.dropout_op(**self.dropout_op_kwargs)

    def _axes(self, value: Sequence[int] | int) -> tuple[int, ...]:
        if isinstance(value, int):
            return (value,) * self.spatial_dims
        out = tuple(int(v) for v in value)
        if len(out) != self.spatial_dims:
            raise ValueError(f"expected {self.spatial_dims} axes, got {list(out)}.")
        return out


class ConvDropoutNormAct(nn.Sequential):
    """One convolution followed by the plans' dropout, normalisation and non-linearity.

    Args:
        ops: the operator set.
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: kernel, one int or one per axis.
        stride: stride of the convolution.
        dilation: dilation of the convolution.

    Input ``(B, in_channels, H, W[, D])``; output ``(B, out_channels, H', W'[, D'])`` with ``H' = H / stride``.
    """

    def __init__(
        self,
        ops: PlansOps,
        in_channels: int,
        out_channels: int,
        kernel_size: Sequence[int] | int,
        stride: Sequence[int] | int = 1,
        dilation: int = 1,
    ) -> None:
        super().__init__()
        self.conv = ops.conv(in_channels, out_channels, kernel_size, stride, dilation)
        self.dropout = ops.dropout()
        self.norm = ops.norm(out_channels)
        self.act = ops.act()


class StackedConvLayers(nn.Sequential):
    """``n`` :class:`ConvDropoutNormAct` layers; the first one carries the stride (nnU-Net's ``StackedConvBlocks``).

    Args:
        ops: the operator set.
        n: number of convolutions, at least 1.
        in_channels: input channels of the first convolution.
        out_channels: output channels of every convolution.
        kernel_size: kernel of every convolution.
        first_stride: stride of the first convolution.
    """

    def __init__(
        self,
        ops: PlansOps,
        n: int,
        in_channels: int,
        out_channels: int,
        kernel_size: Sequence[int] | int,
        first_stride: Sequence[int] | int = 1,
    ) -> None:
        if n < 1:
            raise ValueError(f"need at least one convolution, got n={n}.")
        layers = [ConvDropoutNormAct(ops, in_channels, out_channels, kernel_size, first_stride)]
        layers += [ConvDropoutNormAct(ops, out_channels, out_channels, kernel_size) for _ in range(n - 1)]
        super().__init__(*layers)


class SkipMergeBlock(nn.Module):
    """Resamples a feature map to its skip's resolution, concatenates ``[resampled, skip]`` and convolves.

    This is a decoder stage: with a transposed convolution as ``resample`` it is nnU-Net's U-Net decoder stage,
    with a pooling it is the downsampling decoder stage of an overcomplete (Ki-Net) branch.

    Args:
        resample: module mapping ``(B, C_in, ...)`` to the skip's spatial size.
        convs: module applied to the concatenation.
    """

    def __init__(self, resample: nn.Module, convs: nn.Module) -> None:
        super().__init__()
        self.resample = resample
        self.convs = convs

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """Args: x ``(B, C_in, ...)``, skip ``(B, C_skip, H, W[, D])``. Returns ``(B, C_out, H, W[, D])``.

        Raises:
            ValueError: when the resampled map does not have the skip's spatial size.
        """
        y = self.resample(x)
        if y.shape[2:] != skip.shape[2:]:
            raise ValueError("the resampled feature map and the skip connection differ in size")
        return self.convs(torch.cat((y, skip), dim=1))


def interpolate_to(x: torch.Tensor, size: List[int], mode: str) -> torch.Tensor:
    """Resizes ``x`` to ``size``; a no-op when it already has that size.

    Args:
        x: ``(B, C, H, W[, D])``.
        size: target spatial size.
        mode: ``'area'`` (average pooling, for shrinking) or a linear mode (``'bilinear'``/``'trilinear'``,
            ``align_corners=False``).

    Returns:
        ``(B, C, *size)``.
    """
    size = [int(s) for s in size]  # TorchScript-compatible: lists of ints
    if list(x.shape[2:]) == size:
        return x
    if mode == "area":
        # shrinking by whole factors is average pooling (the same values); it exports to ONNX, area does not
        factors = [int(x.shape[2 + i]) // size[i] for i in range(len(size))]
        if all(factors[i] * size[i] == int(x.shape[2 + i]) for i in range(len(size))):
            if x.dim() == 5:
                return F.avg_pool3d(x, factors, factors)
            return F.avg_pool2d(x, factors, factors)
        return F.interpolate(x, size=size, mode="area")
    return F.interpolate(x, size=size, mode=mode, align_corners=False)
