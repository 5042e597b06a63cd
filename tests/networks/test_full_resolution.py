"""The inference form of every architecture: one full-resolution tensor, scriptable with TorchScript, the same
state-dict keys and the same logits as the network's own eval-mode forward."""

from __future__ import annotations

import copy
import io

import pytest
import torch

from monai_nnunet.networks import (
    DynamicKiUNet,
    DynamicUIUNet,
    PlansDynUNet,
    ShallowPlainUNet,
    build_network,
    full_resolution_network,
    network_config,
)
from tests.networks._plans import SMALL_PLANS, configuration

TWO_STAGES = configuration(3, [4, 8], [[3, 3, 3]] * 2, [[1, 1, 1], [2, 2, 2]], [8, 8, 8])
CASES = [pytest.param(arch, kwargs, config, id=f"{arch.__name__}-{name}")
         for arch, kwargs in [(PlansDynUNet, {}), (DynamicKiUNet, {"pool_type": "max"}), (DynamicUIUNet, {})]
         for name, config in SMALL_PLANS] + [pytest.param(ShallowPlainUNet, {}, TWO_STAGES, id="ShallowPlainUNet")]


@pytest.mark.parametrize("architecture,kwargs,config", CASES)
def test_scripted_full_resolution_form_equals_the_network(architecture, kwargs, config):
    torch.manual_seed(0)
    net = build_network(config, 2, 3, deep_supervision=True, architecture=architecture, architecture_kwargs=kwargs)
    assert isinstance(net, architecture)
    x = torch.randn(2, 2, *config["patch_size"])
    with torch.no_grad():
        expected = net.eval()(x)
    keys = list(net.state_dict())
    full = full_resolution_network(copy.deepcopy(net))
    assert isinstance(full, architecture) and list(full.state_dict()) == keys
    full.train()  # even in training mode: one tensor
    with torch.no_grad():
        assert torch.is_tensor(full(x))
    scripted = torch.jit.script(full.eval())
    buffer = io.BytesIO()
    torch.jit.save(scripted, buffer)
    buffer.seek(0)
    loaded = torch.jit.load(buffer)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), expected, rtol=1e-5, atol=1e-5)
    # recorded as the network's own class: a bundle rebuilds it by name
    assert network_config(full)["_target_"] == f"{architecture.__module__}.{architecture.__qualname__}"
    net.train()
    assert isinstance(net(x), list)  # the training network itself is unchanged
