"""Plans with fewer than three stages build ShallowPlainUNet (MONAI's DynUNet needs three), which trains like the
plain U-Net and is rebuilt from its checkpoint record."""

import copy

import pytest
import torch

from monai_nnunet.networks import (
    PlansDynUNet,
    ShallowPlainUNet,
    build_network,
    build_network_from_config,
    network_config,
)
from tests.networks._plans import SMALL_3D


def _stages(n):
    config = copy.deepcopy(SMALL_3D)
    arch = config["architecture"]["arch_kwargs"]
    arch["n_stages"] = n
    for key in ("features_per_stage", "kernel_sizes", "strides", "n_conv_per_stage"):
        arch[key] = arch[key][:n]
    arch["n_conv_per_stage_decoder"] = arch["n_conv_per_stage_decoder"][: n - 1]
    return config


@pytest.mark.parametrize("n_stages", [2])
def test_shallow_plans_build_a_trainable_plain_unet(n_stages):
    network = build_network(_stages(n_stages), 1, 3, deep_supervision=True)
    assert isinstance(network, ShallowPlainUNet)
    x = torch.randn(2, 1, 12, 12, 12)
    outputs = network(x)
    assert isinstance(outputs, list) and len(outputs) == n_stages - 1
    assert outputs[0].shape == (2, 3, 12, 12, 12)
    outputs[0].mean().backward()
    assert all(p.grad is not None for p in network.parameters())
    network.eval()
    assert network(x).shape == (2, 3, 12, 12, 12)
    rebuilt = build_network_from_config(network_config(network), deep_supervision=False)
    rebuilt.load_state_dict(network.state_dict())
    torch.testing.assert_close(rebuilt.eval()(x), network(x))


def test_three_stages_stay_dynunet():
    assert isinstance(build_network(_stages(3), 1, 3), PlansDynUNet)
