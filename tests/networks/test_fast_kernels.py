"""The training-speed options keep the numbers: instance norm by the group-norm kernel and channels-last weights give
the network's logits and gradients, keep its state-dict keys, and undo cleanly."""

from __future__ import annotations

import copy

import pytest
import torch

from monai_nnunet.networks import build_network
from monai_nnunet.networks.fast_kernels import (
    GroupNormKernelInstanceNorm3d,
    channels_last,
    standard_kernels,
    use_group_norm_kernels,
)
from tests.networks._plans import SMALL_2D, SMALL_3D


@pytest.mark.parametrize("config", [SMALL_2D, SMALL_3D], ids=["2d", "3d"])
def test_group_norm_kernels_and_channels_last_give_the_same_logits_and_gradients(config):
    torch.manual_seed(0)
    reference = build_network(config, 2, 3, deep_supervision=True)
    fast = copy.deepcopy(reference)
    assert use_group_norm_kernels(fast) > 0
    fast = channels_last(fast)
    assert list(fast.state_dict()) == list(reference.state_dict())
    x = torch.randn(2, 2, *config["patch_size"])
    outputs = [net(x) for net in (reference, fast)]
    for a, b in zip(*outputs):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)
    for net, out in zip((reference, fast), outputs):
        sum(o.square().mean() for o in out).backward()
    for (name, p), q in zip(reference.named_parameters(), fast.parameters()):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-3, atol=1e-5, msg=name)
    conv = next(m for m in fast.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Conv3d)))
    fmt = torch.channels_last_3d if x.dim() == 5 else torch.channels_last
    assert conv.weight.is_contiguous(memory_format=fmt)
    # undone: PyTorch's instance norm and contiguous weights, the same weights
    standard_kernels(fast)
    assert not any(isinstance(m, GroupNormKernelInstanceNorm3d) for m in fast.modules())
    assert conv.weight.is_contiguous()
    for k, v in reference.state_dict().items():
        torch.testing.assert_close(fast.state_dict()[k], v)


def test_norms_with_running_statistics_are_left_alone():
    net = torch.nn.Sequential(torch.nn.InstanceNorm3d(4, track_running_stats=True), torch.nn.InstanceNorm3d(4))
    assert use_group_norm_kernels(net) == 1
    assert type(net[0]) is torch.nn.InstanceNorm3d and type(net[1]) is GroupNormKernelInstanceNorm3d
