"""Training-speed options of a network that keep its numbers: instance norm computed by PyTorch's group-norm kernels
(one group per channel: the same normalisation) and the channels-last memory format.

Measured on the CPU (``benchmarks/train_step.py``): PyTorch's instance norm reshapes its input and returns a view,
so the in-place LeakyReLU after it makes autograd copy the whole tensor back in the backward pass, and the reshape
forces channels-first layouts. Group norm returns a tensor of its own and keeps channels-last layouts, which oneDNN's
convolutions run faster. Parameters and state-dict keys do not change; :func:`standard_kernels` undoes both.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["GroupNormKernelInstanceNorm2d", "GroupNormKernelInstanceNorm3d", "channels_last", "standard_kernels",
           "use_group_norm_kernels"]


class _GroupNormKernel:
    """``forward`` of an affine-or-not instance norm without running statistics, by ``F.group_norm`` with one group
    per channel."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.group_norm(x, self.num_features, self.weight, self.bias, self.eps)


class GroupNormKernelInstanceNorm2d(_GroupNormKernel, nn.InstanceNorm2d):
    """``InstanceNorm2d`` (no running statistics) computed by the group-norm kernel."""


class GroupNormKernelInstanceNorm3d(_GroupNormKernel, nn.InstanceNorm3d):
    """``InstanceNorm3d`` (no running statistics) computed by the group-norm kernel."""


_FAST = {nn.InstanceNorm2d: GroupNormKernelInstanceNorm2d, nn.InstanceNorm3d: GroupNormKernelInstanceNorm3d}
_STANDARD = {fast: standard for standard, fast in _FAST.items()}


def use_group_norm_kernels(network: nn.Module) -> int:
    """Makes every instance norm of ``network`` without running statistics use the group-norm kernel (in place).

    Returns:
        the number of layers changed.
    """
    changed = 0
    for module in network.modules():
        fast = _FAST.get(type(module))
        if fast is not None and not module.track_running_stats:
            module.__class__ = fast
            changed += 1
    return changed


def channels_last(network: nn.Module) -> nn.Module:
    """``network`` in the channels-last memory format of its convolutions (``channels_last_3d`` for 3D)."""
    three_d = any(isinstance(m, (nn.Conv3d, nn.ConvTranspose3d)) for m in network.modules())
    return network.to(memory_format=torch.channels_last_3d if three_d else torch.channels_last)


def standard_kernels(network: nn.Module) -> nn.Module:
    """``network`` back on PyTorch's instance-norm kernels and contiguous weights (what ``nnUNetv2_predict`` runs),
    in place."""
    for module in network.modules():
        standard = _STANDARD.get(type(module))
        if standard is not None:
            module.__class__ = standard
    return network.to(memory_format=torch.contiguous_format)
