"""Reading the plans' architecture block, and expanding the per-stage arguments."""

from __future__ import annotations

import copy
from types import MappingProxyType, SimpleNamespace

import pytest
import torch.nn as nn

from monai_nnunet.networks.plans_architecture import read_architecture, spatial_dims_of
from monai_nnunet.networks.stage_plan import make_stage_plan
from tests.networks._plans import SMALL_3D_ANISO, hippocampus


def test_reads_nnunet_block_and_imports_operators():
    plan = read_architecture(hippocampus("3d_fullres"))
    assert plan.is_plain_conv_unet
    assert plan.patch_size == (40, 56, 40)
    assert plan.spatial_dims == 3
    kwargs = plan.arch_kwargs
    assert kwargs["conv_op"] is nn.Conv3d
    assert kwargs["norm_op"] is nn.InstanceNorm3d
    assert kwargs["nonlin"] is nn.LeakyReLU
    assert kwargs["dropout_op"] is None
    assert kwargs["features_per_stage"] == [32, 64, 128, 256]


def test_accepts_configuration_manager_and_read_only_mapping_without_modifying_them():
    conf = hippocampus("2d")
    before = copy.deepcopy(conf)
    from_object = read_architecture(SimpleNamespace(configuration=conf))
    from_mapping = read_architecture(MappingProxyType(conf))
    assert from_object == from_mapping
    assert from_object.spatial_dims == 2
    assert conf == before, "the plans dict must not be changed (operator names stay strings)"


def test_converts_plans_older_than_v2_4_like_nnunet():
    old = {
        "patch_size": [40, 56, 40],
        "UNet_class_name": "PlainConvUNet",
        "UNet_base_num_features": 32,
        "unet_max_num_features": 320,
        "n_conv_per_stage_encoder": [2, 2, 2, 2],
        "n_conv_per_stage_decoder": [2, 2, 2],
        "num_pool_per_axis": [3, 3, 3],
        "pool_op_kernel_sizes": [[1, 1, 1], [2, 2, 2], [2, 2, 2], [2, 2, 2]],
        "conv_kernel_sizes": [[3, 3, 3]] * 4,
    }
    converted = read_architecture(old)
    assert converted.arch_kwargs == read_architecture(hippocampus("3d_fullres")).arch_kwargs


def test_rejects_what_is_not_a_configuration():
    with pytest.raises(TypeError, match="plans configuration"):
        read_architecture(42)
    with pytest.raises(KeyError, match="architecture"):
        read_architecture({"patch_size": [8, 8]})
    broken = copy.deepcopy(SMALL_3D_ANISO)
    broken["architecture"]["arch_kwargs"]["norm_op"] = "torch.nn.NoSuchNorm"
    with pytest.raises(ValueError, match="NoSuchNorm"):
        read_architecture(broken)


def test_spatial_dims_of_conv_classes():
    assert spatial_dims_of(nn.Conv2d) == 2
    assert spatial_dims_of(nn.Conv3d) == 3
    with pytest.raises(ValueError):
        spatial_dims_of(nn.Conv1d)


def test_stage_plan_expands_scalars_and_checks_lengths():
    plan = make_stage_plan(3, 3, 8, 3, [1, 2, [1, 2, 2]], 2, 2)
    assert plan.features == (8, 8, 8)
    assert plan.kernel_sizes == ((3, 3, 3),) * 3
    assert plan.strides == ((1, 1, 1), (2, 2, 2), (1, 2, 2))
    assert plan.cumulative_stride(2) == (2, 4, 4)
    assert plan.n_conv_decoder == (2, 2)
    with pytest.raises(ValueError, match="features_per_stage needs 3"):
        make_stage_plan(3, 3, [8, 16], 3, 1, 2, 2)
    with pytest.raises(ValueError, match="3 axes"):
        make_stage_plan(3, 3, 8, [[3, 3]] * 3, 1, 2, 2)
    with pytest.raises(ValueError, match="n_conv_per_stage_decoder needs 2"):
        make_stage_plan(2, 3, 8, 3, 1, 2, [2, 2, 2])
