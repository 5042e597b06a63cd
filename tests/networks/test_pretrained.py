"""``load_pretrained_weights``: every weight but the segmentation heads, from our checkpoints and nnU-Net's."""

import re

import pytest
import torch

from monai_nnunet.networks import build_network, monai_to_nnunet_state_dict
from monai_nnunet.networks.custom import DynamicKiUNet, DynamicUIUNet
from monai_nnunet.networks.pretrained import (
    SEGMENTATION_HEAD_PATTERN,
    PretrainedWeightsError,
    load_pretrained_weights,
)
from tests.networks._plans import SMALL_2D, SMALL_3D, configuration


def _heads(name: str) -> bool:
    return bool(SEGMENTATION_HEAD_PATTERN.search(name))


def _assert_body_equal(target, source):
    src = source.state_dict()
    for key, value in target.state_dict().items():
        if not _heads(key):
            assert torch.equal(value, src[key]), key


@pytest.mark.parametrize("config", [SMALL_3D, SMALL_2D])
def test_our_checkpoint_file_with_other_classes(tmp_path, config):
    torch.manual_seed(0)
    source = build_network(config, 1, 5)
    torch.save({"network_weights": source.state_dict(), "epoch": 3}, tmp_path / "checkpoint_final.pth")
    torch.manual_seed(1)
    target = build_network(config, 1, 2)
    heads_before = {k: v.clone() for k, v in target.state_dict().items() if _heads(k)}
    loaded = load_pretrained_weights(target, tmp_path / "checkpoint_final.pth")
    _assert_body_equal(target, source)
    for key, value in target.state_dict().items():
        if _heads(key):
            assert torch.equal(value, heads_before[key]), key
    assert loaded and not any(_heads(k) for k in loaded)
    assert any(k.startswith("output_block") for k in heads_before)


def test_nnunet_plainconvunet_weights_are_mapped():
    torch.manual_seed(0)
    source = build_network(SMALL_3D, 1, 4)
    nnunet_checkpoint = {"network_weights": {f"module.{k}": v for k, v in monai_to_nnunet_state_dict(source).items()},
                         "trainer_name": "nnUNetTrainer", "init_args": {"configuration": "3d_fullres"}}
    target = build_network(SMALL_3D, 1, 2)
    heads_before = target.output_block.conv.conv.weight.detach().clone()
    load_pretrained_weights(target, nnunet_checkpoint)
    _assert_body_equal(target, source)
    assert torch.equal(target.output_block.conv.conv.weight, heads_before)


def test_wrapped_target_and_bare_state_dict():
    source = build_network(SMALL_3D, 1, 3)
    target = build_network(SMALL_3D, 1, 3)
    wrapper = torch.nn.Module()
    wrapper.module = target  # what DistributedDataParallel looks like from outside
    load_pretrained_weights(wrapper, source.state_dict())
    _assert_body_equal(target, source)


@pytest.mark.parametrize("architecture", [DynamicKiUNet, DynamicUIUNet])
def test_custom_architectures_skip_their_heads(architecture):
    source = build_network(SMALL_3D, 1, 4, architecture=architecture)
    target = build_network(SMALL_3D, 1, 2, architecture=architecture)
    loaded = load_pretrained_weights(target, {"network_weights": source.state_dict()})
    _assert_body_equal(target, source)
    assert len(loaded) == len([k for k in target.state_dict() if not _heads(k)])


def test_mismatched_layers_are_named():
    source = build_network(configuration(3, [4, 8, 16], [[3, 3, 3]] * 3, [[1, 1, 1], [2, 2, 2], [2, 2, 2]],
                                         [8, 12, 8]), 1, 3)
    target = build_network(SMALL_3D, 1, 3)  # features 4, 8, 12
    expected = re.escape("(16, 8, 3, 3, 3) in the checkpoint vs (12, 8, 3, 3, 3)")
    with pytest.raises(PretrainedWeightsError, match=expected):
        load_pretrained_weights(target, source.state_dict())
    two_channels = build_network(SMALL_3D, 2, 3)
    with pytest.raises(PretrainedWeightsError, match=r"input_block\.conv1\.conv\.weight"):
        load_pretrained_weights(two_channels, build_network(SMALL_3D, 1, 3).state_dict())
    with pytest.raises(PretrainedWeightsError, match="not in the checkpoint"):
        load_pretrained_weights(target, {k: v for k, v in build_network(SMALL_3D, 1, 3).state_dict().items()
                                         if not k.startswith("bottleneck")})


def test_nnunet_weights_into_a_custom_architecture_are_refused():
    source = build_network(SMALL_3D, 1, 3)
    target = build_network(SMALL_3D, 1, 3, architecture=DynamicKiUNet)
    with pytest.raises(PretrainedWeightsError, match="PlainConvUNet"):
        load_pretrained_weights(target, monai_to_nnunet_state_dict(source))


def test_missing_file_and_non_checkpoint(tmp_path):
    net = build_network(SMALL_3D, 1, 3)
    with pytest.raises(FileNotFoundError, match="do not exist"):
        load_pretrained_weights(net, tmp_path / "nope.pth")
    with pytest.raises(PretrainedWeightsError, match="holds no network weights"):
        load_pretrained_weights(net, {"network_weights": {"a": 1}})
