"""KiU-Net specifics: the overcomplete branch grows (capped), pool types, fusion blocks, refusals."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn

from monai_nnunet.networks import DynamicKiUNet, build_network
from monai_nnunet.networks.custom import CrossResidualFusion, kinet_scales
from monai_nnunet.networks.blocks import PlansOps
from monai_nnunet.networks.stage_plan import make_stage_plan
from tests.networks._plans import SMALL_2D, SMALL_3D_ANISO


def _kiunet(config, **kwargs) -> DynamicKiUNet:
    return build_network(config, 1, 2, architecture=DynamicKiUNet, architecture_kwargs=kwargs)


def test_kinet_branch_upsamples_along_the_plans_strides_up_to_the_cap():
    net = _kiunet(SMALL_3D_ANISO)
    assert net.kinet_scales == ((1, 1, 1), (1, 2, 2), (2, 2, 2), (2, 2, 2))
    seen = []
    record = lambda module, inputs, output: seen.append(tuple(output.shape[2:]))  # noqa: E731
    hooks = [m.register_forward_hook(record) for m in net.kinet_encoder]
    net.eval()(torch.randn(1, 1, 8, 16, 16))
    for h in hooks:
        h.remove()
    assert seen == [(8, 16, 16), (8, 32, 32), (16, 32, 32), (16, 32, 32)], "Ki-Net maps are larger than the input"


def test_cap_is_per_axis_and_configurable():
    plan = make_stage_plan(3, 4, 4, 3, [[1, 1, 1], [1, 2, 2], [2, 2, 2], [2, 2, 2]], 2, 2)
    assert kinet_scales(plan, 4) == ((1, 1, 1), (1, 2, 2), (2, 4, 4), (4, 4, 4))
    assert kinet_scales(plan, [1, 2, 2]) == ((1, 1, 1), (1, 2, 2), (1, 2, 2), (1, 2, 2))
    with pytest.raises(ValueError, match="kinet_max_scale"):
        kinet_scales(plan, 0)


def test_pool_types_choose_max_pooling_or_strided_convolutions():
    max_net, conv_net = _kiunet(SMALL_2D, pool_type="max"), _kiunet(SMALL_2D, pool_type="conv")
    assert any(isinstance(m, nn.MaxPool2d) for m in max_net.unet_encoder.modules())
    assert not any(isinstance(m, nn.MaxPool2d) for m in conv_net.modules())
    assert conv_net.unet_encoder[1][0].conv.stride == (2, 2)
    assert isinstance(conv_net.kinet_decoder[-1].resample, nn.Conv2d)  # strided conv back to full resolution
    with pytest.raises(ValueError, match="pool_type"):
        _kiunet(SMALL_2D, pool_type="avg")


def test_one_fusion_block_per_encoder_and_decoder_level_and_kinet_width():
    net = _kiunet(SMALL_3D_ANISO, kinet_features_per_stage=3)
    assert len(net.encoder_fusion) == 4 and len(net.decoder_fusion) == 3
    assert all(isinstance(m, CrossResidualFusion) for m in [*net.encoder_fusion, *net.decoder_fusion])
    assert net.kinet_encoder[2][0][0].conv.out_channels == 3
    with pytest.raises(ValueError, match="kinet_features_per_stage"):
        _kiunet(SMALL_3D_ANISO, kinet_features_per_stage=[3, 3])


def test_non_integer_growth_is_refused():
    config = copy.deepcopy(SMALL_2D)
    config["architecture"]["arch_kwargs"]["strides"] = [[1, 1], [3, 3], [2, 2], [2, 2]]
    with pytest.raises(ValueError, match="integer factor"):
        _kiunet(config, kinet_max_scale=4)


def test_crfb_exchanges_in_both_directions():
    ops = PlansOps.from_arch_kwargs(nn.Conv2d, True, nn.InstanceNorm2d, {"affine": True}, nonlin=nn.LeakyReLU)
    fusion = CrossResidualFusion(ops, unet_channels=4, kinet_channels=2, kernel_size=3)
    u, k = torch.randn(2, 4, 4, 6), torch.randn(2, 2, 16, 24)
    u2, k2 = fusion(u, k)
    assert u2.shape == u.shape and k2.shape == k.shape
    assert not torch.allclose(u2, u) and not torch.allclose(k2, k)
    with pytest.raises(ValueError, match="smaller"):
        fusion(k[:, :, :2], u)


def test_features_scale_narrows_the_unet_branch():
    half = _kiunet(SMALL_3D_ANISO, features_scale=0.5)
    assert half.stage_plan.features == (2, 3, 4, 6)
    assert half.seg_heads[0].in_channels == 2
    with pytest.raises(ValueError, match="features_scale"):
        _kiunet(SMALL_3D_ANISO, features_scale=0)
