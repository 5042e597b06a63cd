"""UIU-Net's interactive cross-attention fusion of a deep decoder feature with an encoder skip."""

from __future__ import annotations

import torch
import torch.nn as nn

from monai_nnunet.networks.blocks import ConvDropoutNormAct, PlansOps

__all__ = ["InteractiveCrossAttentionFusion"]


class InteractiveCrossAttentionFusion(nn.Module):
    """Asymmetric bi-directional attention between a high-level and a low-level map (UIU-Net's IC-A module).

    Following UIU-Net's ``AsymBiChaFuseReduce``: the high-level (decoder) map is projected to the skip's channels;
    a top-down channel attention from it (global average pool -> bottleneck -> sigmoid) re-weights the low-level
    (skip) map; a bottom-up point-wise attention computed from the re-weighted skip re-weights the high-level map;
    both products pass through one shared 3x3 convolution block:
    ``out_low = post(2 * x_low * td)``, ``out_high = post(2 * x_high' * bu(x_low * td))``.
    The top-down branch has no normalisation (its maps are 1 voxel, where instance norm is undefined); the other
    convolutions use the plans' norm and non-linearity instead of the original's batch norm and ReLU.

    Args:
        ops: the plans' operators.
        high_channels: channels of the deep (decoder) map.
        low_channels: channels of the skip; also the output channels of both results.
        kernel_size: kernel of the shared post convolution.
        reduction: channel reduction of the attention bottlenecks (UIU-Net uses 4).
    """

    def __init__(
        self,
        ops: PlansOps,
        high_channels: int,
        low_channels: int,
        kernel_size: int | tuple[int, ...] = 3,
        reduction: int = 4,
    ) -> None:
        super().__init__()
        if reduction < 1:
            raise ValueError(f"reduction must be positive, got {reduction}.")
        mid = max(1, low_channels // reduction)
        pool = nn.AdaptiveAvgPool3d(1) if ops.spatial_dims == 3 else nn.AdaptiveAvgPool2d(1)
        self.project_high = ConvDropoutNormAct(ops, high_channels, low_channels, 1)
        self.topdown = nn.Sequential(
            pool,
            ops.conv(low_channels, mid, 1, bias=True),
            ops.act(),
            ops.conv(mid, low_channels, 1, bias=True),
            nn.Sigmoid(),
        )
        self.bottomup = nn.Sequential(
            ConvDropoutNormAct(ops, low_channels, mid, 1),
            ops.conv(mid, low_channels, 1),
            ops.norm(low_channels),
            nn.Sigmoid(),
        )
        self.post = ConvDropoutNormAct(ops, low_channels, low_channels, kernel_size)

    def forward(self, x_high: torch.Tensor, x_low: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Fuses the two maps.

        Args:
            x_high: decoder map resized to the skip's resolution, ``(B, C_high, H, W[, D])``.
            x_low: encoder skip ``(B, C_low, H, W[, D])``.

        Returns:
            ``(out_low, out_high)``, both ``(B, C_low, H, W[, D])``.

        Raises:
            ValueError: when the spatial sizes differ.
        """
        if x_high.shape[2:] != x_low.shape[2:]:
            raise ValueError(f"x_high {x_high.shape[2:]} and x_low {x_low.shape[2:]} differ in size.")
        high = self.project_high(x_high)
        topdown = self.topdown(high)
        bottomup = self.bottomup(x_low * topdown)
        return self.post(2 * x_low * topdown), self.post(2 * high * bottomup)
