"""Plans equal nnU-Net v2's: the fixtures hold nnU-Net 2.8.1's own plans for five datasets (made by
``fixtures/make_nnunet_fixtures.py`` in a side venv): the real Hippocampus fingerprint, an anisotropic synthetic
dataset (0.8 x 0.8 x 3 mm), large anisotropic CT (3d_lowres + cascade), 4-channel brain MRI (mask for norm) and 2D
images with an ignore label."""

import json
from pathlib import Path

import numpy as np
import pytest

from monai_nnunet.dataset.dataset_json import DatasetDescription
from monai_nnunet.planning.planner import ExperimentPlanner, merge_with_existing_plans
from monai_nnunet.planning.plans import PlansError, PlansManager
from monai_nnunet.planning.topology import estimate_feature_map_size, get_pool_and_conv_props, pad_shape

FIXTURES = Path(__file__).parent / "fixtures"
SCENARIOS = sorted(p.stem.replace("nnunet_plans_", "") for p in FIXTURES.glob("nnunet_plans_*.json"))


def _load(scenario):
    return json.loads((FIXTURES / f"nnunet_plans_{scenario}.json").read_text())


def _plan(fx, **kwargs):
    return ExperimentPlanner(fx["fingerprint"], DatasetDescription(fx["dataset_json"]), fx["dataset_name"],
                             **kwargs).plan_experiment()


def test_all_scenarios_present():
    assert SCENARIOS == ["aniso_synthetic", "brain_multichannel", "ct_large", "hippocampus", "natural_2d"]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_plans_equal_nnunet(scenario):
    fx = _load(scenario)
    ours = json.loads(json.dumps(_plan(fx)))
    assert ours == fx["plans"]


def test_hippocampus_values_from_the_issue():
    plans = _plan(_load("hippocampus"))
    fullres, two_d = plans["configurations"]["3d_fullres"], plans["configurations"]["2d"]
    assert fullres["patch_size"] == [40, 56, 40] and fullres["batch_size"] == 7 and fullres["spacing"] == [1, 1, 1]
    assert fullres["architecture"]["arch_kwargs"]["strides"] == [[1, 1, 1], [2, 2, 2], [2, 2, 2], [2, 2, 2]]
    assert fullres["architecture"]["arch_kwargs"]["features_per_stage"] == [32, 64, 128, 256]
    assert two_d["patch_size"] == [56, 40] and two_d["batch_size"] == 281
    assert two_d["architecture"]["arch_kwargs"]["features_per_stage"] == [32, 64, 128, 256]
    assert set(plans["configurations"]) == {"2d", "3d_fullres"}


def test_anisotropic_axis_first_with_in_plane_kernels():
    plans = _plan(_load("aniso_synthetic"))
    fullres = plans["configurations"]["3d_fullres"]["architecture"]["arch_kwargs"]
    assert plans["transpose_forward"][0] == int(np.argmax(np.median(_load("aniso_synthetic")["fingerprint"]["spacings"], 0)))
    assert fullres["kernel_sizes"][0] == [1, 3, 3]
    assert fullres["strides"][1] == [1, 2, 2]  # the 3 mm axis is not downsampled early


def test_lowres_and_cascade():
    plans = _plan(_load("ct_large"))
    assert plans["configurations"]["3d_cascade_fullres"] == {"inherits_from": "3d_fullres", "previous_stage": "3d_lowres"}
    assert plans["configurations"]["3d_lowres"]["next_stage"] == "3d_cascade_fullres"
    assert plans["configurations"]["3d_fullres"]["batch_dice"] is True
    assert plans["configurations"]["3d_lowres"]["batch_dice"] is False
    assert plans["configurations"]["3d_fullres"]["normalization_schemes"] == ["CTNormalization"]
    cascade = PlansManager(plans).get_configuration("3d_cascade_fullres")
    assert cascade.patch_size == plans["configurations"]["3d_fullres"]["patch_size"]
    assert cascade.previous_stage_name == "3d_lowres"


def test_mask_for_norm_when_cropping_shrinks_images():
    cfg = _plan(_load("brain_multichannel"))["configurations"]["3d_fullres"]
    assert cfg["use_mask_for_norm"] == [True] * 4 and cfg["normalization_schemes"] == ["ZScoreNormalization"] * 4


def test_memory_target_changes_patch_or_batch():
    fx = _load("ct_large")
    small = _plan(fx, gpu_memory_target_in_gb=4)["configurations"]["3d_fullres"]
    large = _plan(fx, gpu_memory_target_in_gb=16)["configurations"]["3d_fullres"]
    assert np.prod(small["patch_size"]) * small["batch_size"] < np.prod(large["patch_size"]) * large["batch_size"]


def test_overwrite_target_spacing_and_bad_arguments():
    fx = _load("hippocampus")
    plans = _plan(fx, overwrite_target_spacing=[2.0, 2.0, 2.0])
    assert plans["configurations"]["3d_fullres"]["spacing"] == [2.0, 2.0, 2.0]
    with pytest.raises(ValueError, match="three positive values"):
        _plan(fx, overwrite_target_spacing=[1.0, 1.0])
    with pytest.raises(ValueError, match="gpu_memory_target_in_gb"):
        _plan(fx, gpu_memory_target_in_gb=0)


def test_topology_helpers():
    np.testing.assert_array_equal(pad_shape([37, 64, 10], [8, 8, 4]), [40, 64, 12])
    n_pool, strides, kernels, patch, div = get_pool_and_conv_props([1.0, 1.0, 1.0], [40, 56, 40], 4, 999999)
    assert strides == ((1, 1, 1), (2, 2, 2), (2, 2, 2), (2, 2, 2)) and patch == (40, 56, 40)
    assert len(kernels) == len(strides)
    # a hand-counted two-stage network: 2 convs x 4 ch x 8^3, 2 convs x 8 ch x 4^3, decoder 2 convs + transp + seg
    expected = 2 * 4 * 512 + 2 * 8 * 64 + 2 * 4 * 512 + 4 * 512 + 3 * 512
    assert estimate_feature_map_size([8, 8, 8], [4, 8], [[1, 1, 1], [2, 2, 2]], [2, 2], [2], 3) == expected


def test_existing_custom_configurations_are_kept():
    fx = _load("hippocampus")
    existing = {"configurations": {"3d_fullres_bs2": {"inherits_from": "3d_fullres", "batch_size": 2},
                                   "3d_fullres": {"old": True}}}
    merged = merge_with_existing_plans(_plan(fx), existing)
    assert merged["configurations"]["3d_fullres_bs2"]["batch_size"] == 2
    assert "old" not in merged["configurations"]["3d_fullres"]
    assert PlansManager(merged).get_configuration("3d_fullres_bs2").batch_size == 2


def test_plans_manager_errors_and_legacy_format():
    plans = _load("hippocampus")["plans"]
    with pytest.raises(PlansError, match="3d_lowres.*available"):
        PlansManager(plans).get_configuration("3d_lowres")
    circular = json.loads(json.dumps(plans))
    circular["configurations"]["a"] = {"inherits_from": "b"}
    circular["configurations"]["b"] = {"inherits_from": "a"}
    with pytest.raises(PlansError, match="circular"):
        PlansManager(circular).get_configuration("a")
    legacy = json.loads(json.dumps(plans))
    cfg = legacy["configurations"]["3d_fullres"]
    arch = cfg.pop("architecture")["arch_kwargs"]
    cfg.update(UNet_class_name="PlainConvUNet", UNet_base_num_features=32, unet_max_num_features=320,
               n_conv_per_stage_encoder=arch["n_conv_per_stage"], n_conv_per_stage_decoder=arch["n_conv_per_stage_decoder"],
               num_pool_per_axis=[3, 3, 3], pool_op_kernel_sizes=arch["strides"], conv_kernel_sizes=arch["kernel_sizes"])
    rebuilt = PlansManager(legacy).get_configuration("3d_fullres")
    assert rebuilt.network_arch_init_kwargs == arch
