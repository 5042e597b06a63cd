"""KiU-Net's cross-residual fusion block (CRFB), for maps of any two resolutions."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from monai_nnunet.networks.blocks import ConvDropoutNormAct, PlansOps, interpolate_to

__all__ = ["CrossResidualFusion"]


class CrossResidualFusion(nn.Module):
    """Exchanges features between the undercomplete (U-Net) and overcomplete (Ki-Net) branch at one level.

    As in KiU-Net (Valanarasu et al., 2020), each branch receives the other's features, transformed by a
    convolution + norm + non-linearity and resized to its own resolution, as a residual:
    ``u' = u + f(k)``, ``k' = k + g(u)``, both computed from the inputs before the update. Both convolutions run at
    the U-Net branch's (lower) resolution: the Ki-Net map is first averaged down to it ('area' resize), and the
    U-Net contribution is computed there and then upsampled linearly. The original applies the convolution at the
    source resolution; at 3D patch sizes that costs a ``C_ki x C_u`` convolution at the Ki-Net resolution, so the
    order is swapped (same form, a fraction of the memory).

    Args:
        ops: the plans' operators.
        unet_channels: channels of the U-Net branch at this level.
        kinet_channels: channels of the Ki-Net branch at this level.
        kernel_size: kernel of both convolutions.
    """

    def __init__(
        self, ops: PlansOps, unet_channels: int, kinet_channels: int, kernel_size: Sequence[int] | int
    ) -> None:
        super().__init__()
        self.kinet_to_unet = ConvDropoutNormAct(ops, kinet_channels, unet_channels, kernel_size)
        self.unet_to_kinet = ConvDropoutNormAct(ops, unet_channels, kinet_channels, kernel_size)
        self.upsample_mode = ops.interp_mode

    def forward(self, u: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Fuses the two branches.

        Args:
            u: U-Net branch ``(B, C_u, H, W[, D])``.
            k: Ki-Net branch ``(B, C_k, H', W'[, D'])`` with every axis at least as large as ``u``'s.

        Returns:
            ``(u', k')`` with the shapes of ``u`` and ``k``.

        Raises:
            ValueError: when ``k`` is smaller than ``u`` on some axis.
        """
        for axis in range(2, u.dim()):  # a loop, not any(...): TorchScript-compatible
            if k.shape[axis] < u.shape[axis]:
                raise ValueError(f"Ki-Net map {k.shape[2:]} is smaller than U-Net map {u.shape[2:]}.")
        k_at_u = interpolate_to(k, u.shape[2:], "area")
        u_new = u + self.kinet_to_unet(k_at_u)
        k_new = k + interpolate_to(self.unet_to_kinet(u), k.shape[2:], self.upsample_mode)
        return u_new, k_new
