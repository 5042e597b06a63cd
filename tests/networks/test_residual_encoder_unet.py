"""Our ResidualEncoderUNet against nnU-Net's (``dynamic_network_architectures``), through fixtures written by
nnU-Net's own network code (``fixtures/make_resenc_fixtures.py``): the same parameters (names, shapes, count) as
the Hippocampus ResEnc M networks, the same outputs for nnU-Net's weights, weights that go both ways, nnU-Net's
initialisation, the plans -> network path and the TorchScript inference form."""

from __future__ import annotations

import copy
import io
import json

import pytest
import torch

from monai_nnunet.bundle.run_bundle import network_block
from monai_nnunet.networks import (
    ResidualEncoderUNet,
    build_network,
    full_resolution_network,
    load_nnunet_weights,
    monai_to_nnunet_state_dict,
    network_config,
    nnunet_to_monai_state_dict,
)
from monai_nnunet.networks.config import build_network_from_config
from monai_nnunet.networks.residual_encoder_unet import BasicBlockD
from tests.networks._plans import FIXTURES

REFERENCES = ["resencunet_small_3d_aniso.pt", "resencunet_small_2d.pt"]


def _reference(name: str) -> dict:
    return torch.load(FIXTURES / name, map_location="cpu", weights_only=True)


def _network(ref: dict, deep_supervision: bool = True) -> ResidualEncoderUNet:
    return build_network(ref["configuration"], ref["input_channels"], ref["num_classes"],
                         deep_supervision=deep_supervision)


def _layout() -> dict:
    return json.loads((FIXTURES / "resencunet_hippocampus_layout.json").read_text())


@pytest.mark.parametrize("name", REFERENCES)
def test_nnunet_weights_reproduce_nnunet_outputs(name):
    ref = _reference(name)
    net = _network(ref)
    assert isinstance(net, ResidualEncoderUNet)
    assert sum(p.numel() for p in net.parameters()) == ref["parameter_count"]
    load_nnunet_weights(net, ref["state_dict"]).train()  # instance norm: train and eval compute the same
    with torch.no_grad():
        outputs = net(ref["input"])
    assert [o.shape for o in outputs] == [o.shape for o in ref["outputs"]]
    for ours, theirs in zip(outputs, ref["outputs"]):
        assert (ours - theirs).abs().max().item() < 1e-5
    with torch.no_grad():
        assert (net.eval()(ref["input"]) - ref["outputs"][0]).abs().max().item() < 1e-5


@pytest.mark.parametrize("name", REFERENCES)
def test_our_weights_load_into_nnunets_layout(name):
    ref = _reference(name)
    net = load_nnunet_weights(_network(ref), ref["state_dict"])
    exported = monai_to_nnunet_state_dict(net)
    assert set(exported) == set(ref["state_dict"]), "every nnU-Net key, aliases included"
    for key, tensor in exported.items():
        assert torch.equal(tensor, ref["state_dict"][key]), key
    # aliases share one tensor, as in nnU-Net's state dict
    assert exported["encoder.stem.convs.0.conv.weight"] is exported["encoder.stem.convs.0.all_modules.0.weight"]
    assert exported["encoder.stem.convs.0.conv.weight"] is exported["decoder.encoder.stem.convs.0.conv.weight"]
    again = load_nnunet_weights(_network(ref), exported).eval()
    with torch.no_grad():
        assert (again(ref["input"]) - ref["outputs"][0]).abs().max().item() < 1e-5


@pytest.mark.parametrize("config", ["2d", "3d_fullres"])
def test_hippocampus_resenc_m_network_has_nnunets_parameters(config):
    layout = _layout()[config]
    net = build_network(layout["configuration"], 1, 3, deep_supervision=False)
    assert sum(p.numel() for p in net.parameters()) == layout["parameter_count"]
    exported = monai_to_nnunet_state_dict(net)
    assert {k: list(v.shape) for k, v in exported.items()} == layout["state_dict_shapes"]


def test_initialisation_is_nnunets():
    torch.manual_seed(0)
    net = build_network(_layout()["3d_fullres"]["configuration"], 1, 3)
    blocks = [m for m in net.modules() if isinstance(m, BasicBlockD)]
    assert len(blocks) == 1 + 3 + 4 + 6
    for block in blocks:  # every residual block starts as its skip
        assert torch.count_nonzero(block.conv2.norm.weight) == 0 and torch.count_nonzero(block.conv2.norm.bias) == 0
        assert torch.all(block.conv1.norm.weight == 1)
    conv = net.encoder.stages[3].blocks[0].conv1.conv  # He normal, slope 1e-2: std sqrt(2 / (1 + 1e-4) / fan_in)
    fan_in = conv.weight[0].numel()
    assert abs(conv.weight.std().item() / (2 / (1 + 1e-4) / fan_in) ** 0.5 - 1) < 0.05
    assert torch.count_nonzero(conv.bias) == 0


def test_deep_supervision_switch_and_shapes():
    ref = _reference("resencunet_small_3d_aniso.pt")
    net = _network(ref, deep_supervision=False).train()
    x = ref["input"]
    assert torch.is_tensor(net(x)) and net(x).shape == (2, 3, 8, 16, 16)
    net.deep_supervision = True
    assert [tuple(o.shape) for o in net(x)] == [(2, 3, 8, 16, 16), (2, 3, 8, 8, 8)]


def test_scripted_full_resolution_form_equals_the_network():
    ref = _reference("resencunet_small_3d_aniso.pt")
    net = load_nnunet_weights(_network(ref), ref["state_dict"])
    keys = list(net.state_dict())
    full = full_resolution_network(copy.deepcopy(net))
    assert isinstance(full, ResidualEncoderUNet) and list(full.state_dict()) == keys
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(full.eval()), buffer)
    buffer.seek(0)
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.load(buffer)(ref["input"]), ref["outputs"][0], rtol=1e-5, atol=1e-5)
    spec = network_config(full)
    assert spec["_target_"] == "monai_nnunet.networks.residual_encoder_unet.ResidualEncoderUNet"
    rebuilt = build_network_from_config(spec, deep_supervision=False)
    assert isinstance(rebuilt, ResidualEncoderUNet) and list(rebuilt.state_dict()) == keys


def test_train_yaml_network_block_names_the_residual_encoder_unet():
    block = network_block(_layout()["3d_fullres"]["configuration"])["network_def"]
    assert block["_target_"] == "monai_nnunet.networks.ResidualEncoderUNet"
    assert block["n_blocks_per_stage"] == [1, 3, 4, 6] and block["n_conv_per_stage_decoder"] == [1, 1, 1]
    assert block["conv_op"] == "torch.nn.Conv3d" and block["strides"] == "@strides"


def test_mismatched_weights_are_refused():
    ref = _reference("resencunet_small_3d_aniso.pt")
    net = _network(ref)
    missing = {k: v for k, v in ref["state_dict"].items() if "seg_layers.0" not in k}
    with pytest.raises(KeyError, match="seg_layers.0"):
        load_nnunet_weights(net, missing)
    foreign = dict(ref["state_dict"], **{"encoder.stages.0.0.convs.0.conv.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match="encoder.stages.0.0.convs"):
        load_nnunet_weights(net, foreign)
    other = _reference("resencunet_small_2d.pt")
    with pytest.raises((KeyError, ValueError)):
        nnunet_to_monai_state_dict(other["state_dict"], net)
    plain = torch.load(FIXTURES / "plainconvunet_small_3d_aniso.pt", weights_only=True)["state_dict"]
    with pytest.raises(ValueError, match="ResidualEncoderUNet"):
        load_nnunet_weights(net, plain)
