"""nnU-Net's weight initialisation: He (Kaiming) normal with the LeakyReLU slope, biases zero."""

from __future__ import annotations

import torch.nn as nn

__all__ = ["init_weights_he"]

_CONVS = (nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def init_weights_he(module: nn.Module, neg_slope: float = 1e-2) -> None:
    """Initialises one module the way nnU-Net's ``InitWeights_He(1e-2)`` does; use with ``network.apply``.

    Convolutions and transposed convolutions get ``kaiming_normal_(weight, a=neg_slope)`` and a zero bias; other
    modules are left as they are (normalisation layers keep weight 1, bias 0).

    Args:
        module: any module; only convolutions are touched.
        neg_slope: negative slope of the LeakyReLU the gain is computed for.
    """
    if isinstance(module, _CONVS):
        nn.init.kaiming_normal_(module.weight, a=neg_slope)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
