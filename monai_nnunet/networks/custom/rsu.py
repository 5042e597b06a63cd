"""Residual U-blocks (RSU) of U²-Net / UIU-Net, with the plans' anisotropic strides for their inner pooling."""

from __future__ import annotations

from collections.abc import Sequence

from typing import List

import torch
import torch.nn as nn

from monai_nnunet.networks.blocks import ConvDropoutNormAct, PlansOps, interpolate_to

__all__ = ["DilatedResidualUBlock", "ResidualUBlock"]


class ResidualUBlock(nn.Module):
    """RSU-L: a small U-Net inside one stage, added to its input projection (Qin et al., 2020).

    ``x -> conv_in -> h0``; then convolutions at successively pooled resolutions (one pooling per entry of
    ``pool_strides``), a dilation-2 convolution at the bottom, and a decoder that upsamples (linear
    interpolation), concatenates the same-level map and convolves; the result is added to ``h0``. With
    ``len(pool_strides) == L - 2`` this is U²-Net's RSU-L.

    Args:
        ops: the plans' operators.
        in_channels: input channels.
        mid_channels: channels inside the U.
        out_channels: output channels.
        kernel_size: kernel of every convolution.
        pool_strides: max-pooling stride of each inner level, e.g. the plans' strides of the stages below.

    Input ``(B, in_channels, H, W[, D])`` divisible by the product of ``pool_strides``; output
    ``(B, out_channels, H, W[, D])``.
    """

    def __init__(
        self,
        ops: PlansOps,
        in_channels: int,
        mid_channels: int,
        out_channels: int,
        kernel_size: Sequence[int] | int,
        pool_strides: Sequence[Sequence[int]] = (),
    ) -> None:
        super().__init__()
        self.conv_in = ConvDropoutNormAct(ops, in_channels, out_channels, kernel_size)
        self.pools = nn.ModuleList(ops.max_pool(s) for s in pool_strides)
        # the pooling before each encoder convolution (none before the first), for a TorchScript-compatible loop;
        # pooling has no parameters, so the state-dict keys are unchanged
        self._pool_before = nn.ModuleList([nn.Identity(), *self.pools])
        self.encoder = nn.ModuleList(
            ConvDropoutNormAct(ops, out_channels if i == 0 else mid_channels, mid_channels, kernel_size)
            for i in range(len(pool_strides) + 1)
        )
        self.bottom = ConvDropoutNormAct(ops, mid_channels, mid_channels, kernel_size, dilation=2)
        n_levels = len(pool_strides) + 1
        self.decoder = nn.ModuleList(
            ConvDropoutNormAct(ops, 2 * mid_channels, out_channels if i == n_levels - 1 else mid_channels, kernel_size)
            for i in range(n_levels)
        )
        self.upsample_mode = ops.interp_mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x ``(B, C_in, H, W[, D])``. Returns ``(B, C_out, H, W[, D])``."""
        h_in = self.conv_in(x)
        h = h_in
        skips: List[torch.Tensor] = []
        for pool, conv in zip(self._pool_before, self.encoder):
            h = conv(pool(h))
            skips.append(h)
        d = self.bottom(h)
        for i, conv in enumerate(self.decoder):
            skip = skips[-1 - i]
            d = conv(torch.cat((interpolate_to(d, skip.shape[2:], self.upsample_mode), skip), dim=1))
        return d + h_in


class DilatedResidualUBlock(nn.Module):
    """RSU-LF: the RSU without pooling; dilations 1, 2, 4, ... replace the resolution levels (for small maps).

    Args:
        ops: the plans' operators.
        in_channels: input channels.
        mid_channels: channels inside the block.
        out_channels: output channels.
        kernel_size: kernel of every convolution.
        depth: number of encoder convolutions including the bottom one (U²-Net's RSU-4F has 4: dilations 1, 2,
            4 and 8 at the bottom); at least 2.

    Input ``(B, in_channels, H, W[, D])``; output ``(B, out_channels, H, W[, D])``.
    """

    def __init__(
        self,
        ops: PlansOps,
        in_channels: int,
        mid_channels: int,
        out_channels: int,
        kernel_size: Sequence[int] | int,
        depth: int = 4,
    ) -> None:
        super().__init__()
        if depth < 2:
            raise ValueError(f"depth must be at least 2, got {depth}.")
        self.conv_in = ConvDropoutNormAct(ops, in_channels, out_channels, kernel_size)
        self.encoder = nn.ModuleList(
            ConvDropoutNormAct(ops, out_channels if i == 0 else mid_channels, mid_channels, kernel_size, dilation=2**i)
            for i in range(depth)
        )
        self.decoder = nn.ModuleList(
            ConvDropoutNormAct(
                ops, 2 * mid_channels, out_channels if i == 0 else mid_channels, kernel_size, dilation=2**i
            )
            for i in range(depth - 2, -1, -1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x ``(B, C_in, H, W[, D])``. Returns ``(B, C_out, H, W[, D])``."""
        h_in = self.conv_in(x)
        skips: List[torch.Tensor] = []
        h = h_in
        for conv in self.encoder:
            h = conv(h)
            skips.append(h)
        d = skips.pop()
        for conv in self.decoder:
            d = conv(torch.cat((d, skips.pop()), dim=1))
        return d + h_in
