"""Weight interchange with nnU-Net v2's PlainConvUNet, against fixtures written by nnU-Net's own network code.

The fixtures (``make_fixtures.py``) hold a PlainConvUNet state dict with randomised biases and norm affines, an
input and the eval-mode outputs nnU-Net computed for it; nnU-Net is not imported here.
"""

from __future__ import annotations

import json

import pytest
import torch

from monai_nnunet.networks import (
    build_network,
    load_nnunet_weights,
    monai_to_nnunet_state_dict,
    nnunet_to_monai_state_dict,
)
from tests.networks._plans import FIXTURES, hippocampus

REFERENCES = ["plainconvunet_small_3d_aniso.pt", "plainconvunet_small_2d.pt"]


def _reference(name: str) -> dict:
    return torch.load(FIXTURES / name, map_location="cpu", weights_only=True)


def _network(ref: dict):
    return build_network(ref["configuration"], ref["input_channels"], ref["num_classes"], deep_supervision=True)


@pytest.mark.parametrize("name", REFERENCES)
def test_nnunet_weights_reproduce_nnunet_outputs(name):
    ref = _reference(name)
    net = load_nnunet_weights(_network(ref), ref["state_dict"])
    net.train()  # instance norm without running stats: train and eval compute the same; train gives every head
    with torch.no_grad():
        outputs = net(ref["input"])
    assert len(outputs) == len(ref["outputs"])
    for ours, theirs in zip(outputs, ref["outputs"]):
        assert ours.shape == theirs.shape
        assert (ours - theirs).abs().max().item() < 1e-4
    net.eval()
    with torch.no_grad():
        single = net(ref["input"])
    assert (single - ref["outputs"][0]).abs().max().item() < 1e-4


@pytest.mark.parametrize("name", REFERENCES)
def test_round_trip_gives_nnunet_layout_and_same_outputs(name):
    ref = _reference(name)
    net = load_nnunet_weights(_network(ref), ref["state_dict"])
    exported = monai_to_nnunet_state_dict(net)
    assert set(exported) == set(ref["state_dict"]), "every nnU-Net key, aliases included"
    for key, tensor in exported.items():
        assert tensor.shape == ref["state_dict"][key].shape, key
    for key in exported:
        if "bias" in key and ".conv." not in key and "all_modules.0" not in key:
            assert torch.equal(exported[key], ref["state_dict"][key]), key  # transposed-conv, norm, head biases
    again = load_nnunet_weights(_network(ref), exported).eval()
    with torch.no_grad():
        assert (again(ref["input"]) - ref["outputs"][0]).abs().max().item() < 1e-4
    for mine, theirs in zip(net.state_dict().values(), again.state_dict().values()):
        assert torch.equal(mine, theirs)


def test_export_of_the_hippocampus_network_matches_nnunet_key_layout():
    layout = json.loads((FIXTURES / "plainconvunet_hippocampus_layout.json").read_text())
    net = build_network(hippocampus("3d_fullres"), 1, 3, deep_supervision=False)
    exported = monai_to_nnunet_state_dict(net)
    assert {k: list(v.shape) for k, v in exported.items()} == layout["state_dict_shapes"]


def test_wrapper_prefixes_and_whole_checkpoints_are_accepted():
    ref = _reference("plainconvunet_small_2d.pt")
    prefixed = {"module." + k: v for k, v in ref["state_dict"].items()}
    converted = nnunet_to_monai_state_dict({"network_weights": prefixed, "current_epoch": 3}, _network(ref))
    assert set(converted) == set(_network(ref).state_dict())


def test_mismatched_weights_are_refused():
    ref = _reference("plainconvunet_small_3d_aniso.pt")
    net = _network(ref)
    missing = {k: v for k, v in ref["state_dict"].items() if not k.startswith("decoder.seg_layers.0")}
    with pytest.raises(KeyError, match="seg_layers.0"):
        load_nnunet_weights(net, missing)
    foreign = dict(ref["state_dict"], **{"encoder.stem.convs.0.conv.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match="encoder.stem"):
        load_nnunet_weights(net, foreign)
    other = _reference("plainconvunet_small_2d.pt")
    with pytest.raises((KeyError, ValueError, RuntimeError)):  # other plans: missing keys or other shapes
        load_nnunet_weights(net, other["state_dict"])
