"""What every architecture built from plans must do: nnU-Net's deep-supervision convention in 2D, 3D and
anisotropic 3D, a single output in eval mode, a gradient for every parameter, the uniform constructor."""

from __future__ import annotations

import pytest
import torch

from monai_nnunet.networks import DynamicKiUNet, DynamicUIUNet, PlansDynUNet, build_network, set_deep_supervision
from monai_nnunet.networks.plans_architecture import read_architecture
from tests.networks._plans import SMALL_PLANS, expected_output_shapes, hippocampus

ARCHITECTURES = [
    (PlansDynUNet, {}),
    (DynamicKiUNet, {"pool_type": "max"}),
    (DynamicKiUNet, {"pool_type": "conv"}),
    (DynamicUIUNet, {}),
]
CASES = [
    pytest.param(arch, kwargs, config, id=f"{arch.__name__}-{kwargs.get('pool_type', 'default')}-{name}")
    for arch, kwargs in ARCHITECTURES
    for name, config in SMALL_PLANS
]


@pytest.mark.parametrize("architecture,kwargs,config", CASES)
def test_forward_backward_deep_supervision_and_eval(architecture, kwargs, config):
    torch.manual_seed(0)
    net = build_network(config, 2, 3, deep_supervision=True, architecture=architecture, architecture_kwargs=kwargs)
    assert isinstance(net, architecture)
    x = torch.randn(2, 2, *config["patch_size"])
    net.train()
    outputs = net(x)
    assert isinstance(outputs, list)
    assert [tuple(o.shape) for o in outputs] == expected_output_shapes(config, 2, 3)
    sum(o.square().mean() for o in outputs).backward()
    without = [k for k, p in net.named_parameters() if p.grad is None]
    assert not without, f"parameters unused in the forward pass (DDP would refuse them): {without}"
    assert all(torch.isfinite(p.grad).all() for p in net.parameters())
    weights = [p for k, p in net.named_parameters() if k.endswith("weight") and p.dim() > 1]
    assert sum(bool(torch.count_nonzero(p.grad)) for p in weights) == len(weights), "a weight got a zero gradient"
    net.eval()
    with torch.no_grad():
        single = net(x)
    assert torch.is_tensor(single) and tuple(single.shape) == expected_output_shapes(config, 2, 3)[0]


@pytest.mark.parametrize("architecture", [PlansDynUNet, DynamicKiUNet, DynamicUIUNet])
def test_switch_gives_single_output_in_training_mode(architecture):
    name, config = SMALL_PLANS[0]
    net = build_network(config, 1, 2, deep_supervision=True, architecture=architecture).train()
    set_deep_supervision(net, False)
    out = net(torch.randn(1, 1, *config["patch_size"]))
    assert torch.is_tensor(out) and tuple(out.shape) == (1, 2, *config["patch_size"])


@pytest.mark.parametrize("architecture", [PlansDynUNet, DynamicKiUNet, DynamicUIUNet])
def test_constructor_takes_the_plans_arch_kwargs_like_plainconvunet(architecture):
    kwargs = read_architecture(hippocampus("2d")).arch_kwargs
    net = architecture(input_channels=1, num_classes=3, deep_supervision=False, **kwargs)
    assert net.deep_supervision is False
    out = net.eval()(torch.randn(1, 1, 56, 40))
    assert out.shape == (1, 3, 56, 40)


@pytest.mark.parametrize("architecture", [DynamicKiUNet, DynamicUIUNet])
def test_custom_networks_use_nnunet_initialisation(architecture):
    name, config = SMALL_PLANS[1]
    net = build_network(config, 1, 2, architecture=architecture)
    conv_biases = [m.bias for m in net.modules() if isinstance(m, (torch.nn.Conv3d, torch.nn.ConvTranspose3d))
                   and m.bias is not None]
    assert conv_biases and all(torch.count_nonzero(b) == 0 for b in conv_biases)
