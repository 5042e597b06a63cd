"""Plans -> PlansDynUNet: shapes, deep supervision, nnU-Net's topology and initialisation, refusals."""

from __future__ import annotations

import copy
import json
import math
import re

import pytest
import torch
import torch.nn as nn
from monai.networks.nets import DynUNet

from monai_nnunet.networks import PlansDynUNet, build_network, set_deep_supervision
from tests.networks._plans import FIXTURES, SMALL_3D_ANISO, SMALL_PLANS, expected_output_shapes, hippocampus


@pytest.mark.parametrize("name,config", SMALL_PLANS)
def test_deep_supervision_outputs_at_native_resolution_and_single_output_in_eval(name, config):
    net = build_network(config, num_input_channels=2, num_outputs=3, deep_supervision=True)
    assert isinstance(net, PlansDynUNet) and isinstance(net, DynUNet)
    x = torch.randn(2, 2, *config["patch_size"])
    net.train()
    outputs = net(x)
    assert isinstance(outputs, list)
    assert [tuple(o.shape) for o in outputs] == expected_output_shapes(config, 2, 3)
    sum(o.float().square().mean() for o in outputs).backward()
    no_grad = [k for k, p in net.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not no_grad, f"parameters without a gradient: {no_grad}"
    net.eval()
    with torch.no_grad():
        single = net(x)
    assert torch.is_tensor(single) and tuple(single.shape) == expected_output_shapes(config, 2, 3)[0]


def test_switching_deep_supervision_off_returns_one_tensor_and_skips_the_lower_heads():
    net = build_network(SMALL_3D_ANISO, 1, 2, deep_supervision=True).train()
    x = torch.randn(1, 1, *SMALL_3D_ANISO["patch_size"])
    set_deep_supervision(net, False)
    out = net(x)
    assert torch.is_tensor(out) and out.shape == (1, 2, 8, 16, 16)
    assert all(t.numel() == 1 for t in net.heads), "no head may be computed (or kept) while the switch is off"
    set_deep_supervision(net, True)
    assert len(net(x)) == 3
    assert all(t.numel() == 1 for t in net.heads), "head tensors of the last pass must not be kept alive"


def test_built_without_deep_supervision_still_loads_a_deep_supervision_state_dict():
    with_ds = build_network(SMALL_3D_ANISO, 1, 2, deep_supervision=True)
    without = build_network(SMALL_3D_ANISO, 1, 2, deep_supervision=False)
    without.load_state_dict(with_ds.state_dict(), strict=True)
    assert torch.is_tensor(without.train()(torch.randn(1, 1, 8, 16, 16)))


def test_set_deep_supervision_reaches_through_ddp_and_compile_wrappers():
    net = build_network(SMALL_3D_ANISO, 1, 2, deep_supervision=True)

    class DDPLike(nn.Module):
        def __init__(self, module):
            super().__init__()
            self.module = module

    class CompiledLike:
        def __init__(self, module):
            self._orig_mod = module

    set_deep_supervision(CompiledLike(DDPLike(net)), False)
    assert net.deep_supervision is False
    with pytest.raises(AttributeError, match="no deep_supervision switch"):
        set_deep_supervision(nn.Linear(2, 2), True)


def test_parameter_count_equals_nnunet_plainconvunet_without_the_biases_before_instance_norm():
    layout = json.loads((FIXTURES / "plainconvunet_hippocampus_layout.json").read_text())
    shapes = layout["state_dict_shapes"]
    before_norm = re.compile(r"^(encoder\.stages\.\d+\.0|decoder\.stages\.\d+)\.convs\.\d+\.conv\.bias$")
    cancelled = sum(math.prod(s) for k, s in shapes.items() if before_norm.match(k))
    assert cancelled == 2 * (32 + 64 + 128 + 256) + 2 * (32 + 64 + 128)
    net = build_network(hippocampus("3d_fullres"), 1, 3, deep_supervision=True)
    ours = sum(p.numel() for p in net.parameters())
    assert ours == layout["parameter_count"] - cancelled == 5_601_769


def test_decoder_uses_nnunet_kernels_for_anisotropic_plans():
    net = build_network(SMALL_3D_ANISO, 1, 2)
    top_decoder = net.upsamples[-1].conv_block  # resolution level 0, whose plans kernel is [1, 3, 3]
    assert top_decoder.conv1.conv.kernel_size == (1, 3, 3)
    assert net.input_block.conv1.conv.kernel_size == (1, 3, 3)
    assert net.upsamples[-1].transp_conv.conv.stride == (1, 2, 2)
    kernels = [[1, 3, 3], [3, 3, 3], [3, 3, 3], [3, 3, 3]]
    strides = [[1, 1, 1], [1, 2, 2], [2, 2, 2], [2, 2, 2]]
    stock = DynUNet(3, 1, 2, kernels, strides, strides[1:])
    assert stock.upsamples[-1].conv_block.conv1.conv.kernel_size == (3, 3, 3), "MONAI's own choice differs"


def test_initialisation_is_nnunet_he_normal_with_zero_biases():
    torch.manual_seed(0)
    net = build_network(hippocampus("3d_fullres"), 1, 3, deep_supervision=True)
    weight = net.bottleneck.conv2.conv.weight  # 256 x 256 x 27
    fan_in = weight.shape[1] * 27
    expected_std = math.sqrt(2.0 / (1 + 0.01**2) / fan_in)
    assert abs(weight.std().item() / expected_std - 1) < 0.01
    assert abs(weight.mean().item()) < 0.05 * expected_std
    biases = [p for k, p in net.named_parameters() if k.endswith("bias") and ".norm" not in k]
    assert biases and all(torch.count_nonzero(b) == 0 for b in biases)


def _with_kwargs(**changes):
    config = copy.deepcopy(SMALL_3D_ANISO)
    config["architecture"]["arch_kwargs"].update(changes)
    return config


@pytest.mark.parametrize(
    "config,message",
    [
        (_with_kwargs(n_conv_per_stage=[3, 3, 3, 3]), "exactly 2 convolutions"),
        (_with_kwargs(norm_op="torch.nn.BatchNorm3d"), "instance normalisation"),
        (_with_kwargs(nonlin="torch.nn.GELU"), "LeakyReLU"),
        (_with_kwargs(dropout_op="torch.nn.Dropout3d", dropout_op_kwargs={"p": 0.2}), "dropout"),
    ],
)
def test_refuses_plans_it_cannot_express(config, message):
    with pytest.raises(ValueError, match=message):
        build_network(config, 1, 2)


def test_dynunet_itself_needs_three_stages():
    # build_network gives two-stage plans ShallowPlainUNet instead (tests/networks/test_shallow_unet.py)
    config = _with_kwargs(n_stages=2, features_per_stage=[4, 8], kernel_sizes=[[3, 3, 3]] * 2,
                          strides=[[1, 1, 1], [2, 2, 2]], n_conv_per_stage=[2, 2], n_conv_per_stage_decoder=[2])
    with pytest.raises(ValueError, match="at least 3 stages"):
        PlansDynUNet(input_channels=1, num_classes=2, **config["architecture"]["arch_kwargs"])


def test_other_network_classes_need_an_explicit_architecture():
    config = copy.deepcopy(SMALL_3D_ANISO)
    config["architecture"]["network_class_name"] = "dynamic_network_architectures.architectures.primus.Primus"
    with pytest.raises(ValueError, match="Primus"):
        build_network(config, 1, 2)
    with pytest.raises(ValueError, match="num_classes"):
        build_network(SMALL_3D_ANISO, 1, 2, architecture=PlansDynUNet, architecture_kwargs={"num_classes": 4})
