"""UIU-Net specifics: RSU blocks follow the plans' strides, the fusion module, side outputs always used."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from monai_nnunet.networks import DynamicUIUNet, build_network
from monai_nnunet.networks.blocks import PlansOps
from monai_nnunet.networks.custom import DilatedResidualUBlock, InteractiveCrossAttentionFusion, ResidualUBlock
from tests.networks._plans import SMALL_3D_ANISO


def _uiunet(**kwargs) -> DynamicUIUNet:
    return build_network(SMALL_3D_ANISO, 1, 2, architecture=DynamicUIUNet, architecture_kwargs=kwargs)


def _ops3d() -> PlansOps:
    return PlansOps.from_arch_kwargs(nn.Conv3d, True, nn.InstanceNorm3d, {"affine": True}, nonlin=nn.LeakyReLU,
                                     nonlin_kwargs={"inplace": True})


def test_rsu_blocks_pool_with_the_plans_strides_of_the_stages_below():
    net = _uiunet()
    first = net.encoder[0]
    assert isinstance(first, ResidualUBlock)
    assert [p.kernel_size for p in first.pools] == [(1, 2, 2), (2, 2, 2), (2, 2, 2)]
    assert [len(b.pools) for b in net.encoder[:3]] == [3, 2, 1]
    assert isinstance(net.encoder[3], DilatedResidualUBlock), "nothing left to pool: the dilated RSU-F block"
    assert [len(b.pools) for b in net.decoder] == [1, 2, 3]  # decoder runs from level 2 up to level 0
    assert [len(b.pools) for b in _uiunet(max_inner_pools=1).encoder[:3]] == [1, 1, 1]


def test_every_parameter_is_used_even_without_deep_supervision():
    net = _uiunet().train()
    net.deep_supervision = False
    net(torch.randn(1, 1, 8, 16, 16)).mean().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_fused_output_reads_every_side_head():
    net = _uiunet().eval()
    x = torch.randn(1, 1, 8, 16, 16)
    with torch.no_grad():
        before = net(x)
        net.side_heads[-1].bias.add_(1.0)  # the bottleneck side, at 1/8 resolution
        after = net(x)
    assert not torch.allclose(before, after)


def test_rsu_blocks_keep_the_size_and_add_the_input_projection():
    ops = _ops3d()
    block = ResidualUBlock(ops, 3, 2, 5, [1, 3, 3], pool_strides=[[1, 2, 2], [2, 2, 2]])
    assert block(torch.randn(2, 3, 4, 8, 8)).shape == (2, 5, 4, 8, 8)
    dilated = DilatedResidualUBlock(ops, 3, 2, 5, 3, depth=4)
    assert [m.conv.dilation for m in dilated.encoder] == [(1, 1, 1), (2, 2, 2), (4, 4, 4), (8, 8, 8)]
    assert dilated(torch.randn(1, 3, 5, 7, 5)).shape == (1, 5, 5, 7, 5)
    with pytest.raises(ValueError, match="depth"):
        DilatedResidualUBlock(ops, 3, 2, 5, 3, depth=1)


def test_cross_attention_fusion_shapes_and_batch_of_one_in_training():
    fusion = InteractiveCrossAttentionFusion(_ops3d(), high_channels=8, low_channels=4).train()
    low, high = fusion(torch.randn(1, 8, 4, 6, 4), torch.randn(1, 4, 4, 6, 4))
    assert low.shape == high.shape == (1, 4, 4, 6, 4)
    with pytest.raises(ValueError, match="differ"):
        fusion(torch.randn(1, 8, 2, 6, 4), torch.randn(1, 4, 4, 6, 4))


def test_option_ranges_are_checked():
    with pytest.raises(ValueError, match="mid_channels_ratio"):
        _uiunet(mid_channels_ratio=0)
    with pytest.raises(ValueError, match="max_inner_pools"):
        _uiunet(max_inner_pools=-1)


def test_features_scale_narrows_every_stage():
    half = _uiunet(features_scale=0.5)
    assert half.stage_plan.features == (2, 3, 4, 6)
    assert half.encoder[0].conv_in.conv.out_channels == 2
    assert half.train()(torch.randn(1, 1, 8, 16, 16))[0].shape == (1, 2, 8, 16, 16)
