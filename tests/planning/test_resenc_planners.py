"""The residual-encoder planners write nnU-Net 2.8.1's plans: the fixtures (``fixtures/make_resenc_fixtures.py``,
run in a side venv) hold nnU-Net's own ``ResEncUNetPlanner`` / ``nnUNetPlannerResEncM`` / ``-L`` / ``-XL`` plans for
the plain planner's fingerprints (Hippocampus, anisotropic synthetic, large CT, brain MRI, 2D), with the default
memory targets and plans names and with ``-gpu_memory_target`` / ``-overwrite_plans_name`` variants."""

import json
import warnings
from pathlib import Path

import pytest

from monai_nnunet.cli.main import main
from monai_nnunet.dataset.dataset_json import DatasetDescription
from monai_nnunet.planning.api import PLANNERS, resolve_planner
from monai_nnunet.planning.resenc_planners import RESENC_PRESETS
from monai_nnunet.planning.topology import estimate_resenc_feature_map_size

FIXTURES = Path(__file__).parent / "fixtures"
SCENARIOS = sorted(p.stem.replace("resenc_plans_", "") for p in FIXTURES.glob("resenc_plans_*.json"))
PRESET_NAMES = {"ResEncUNetPlanner": "nnUNetResEncUNetPlans", "nnUNetPlannerResEncM": "nnUNetResEncUNetMPlans",
                "nnUNetPlannerResEncL": "nnUNetResEncUNetLPlans", "nnUNetPlannerResEncXL": "nnUNetResEncUNetXLPlans"}


def _load(scenario):
    fx = json.loads((FIXTURES / f"resenc_plans_{scenario}.json").read_text())
    inputs = json.loads((FIXTURES / fx["inputs"]).read_text())
    return fx, inputs


def _plan(inputs, planner, **kwargs):
    cls = resolve_planner(planner)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        obj = cls(inputs["fingerprint"], DatasetDescription(inputs["dataset_json"]), inputs["dataset_name"], **kwargs)
    return json.loads(json.dumps(obj.plan_experiment()))


def _diff(ours, theirs, path=""):
    """The first keys where two plans differ (a readable failure instead of a dict dump)."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        out = [f"{path}/{k}: missing on one side" for k in set(ours) ^ set(theirs)]
        for k in set(ours) & set(theirs):
            out += _diff(ours[k], theirs[k], f"{path}/{k}")
        return out
    return [] if ours == theirs else [f"{path}: ours {ours!r} vs nnU-Net {theirs!r}"]


def test_fixtures_cover_the_scenarios():
    assert {"hippocampus", "aniso_synthetic", "ct_large"} <= set(SCENARIOS)


@pytest.mark.parametrize("planner", sorted(PRESET_NAMES))
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_presets_equal_nnunet(scenario, planner):
    fx, inputs = _load(scenario)
    ours = _plan(inputs, planner)
    assert ours["plans_name"] == PRESET_NAMES[planner]
    assert _diff(ours, fx["plans"][planner]) == []


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_memory_target_and_plans_name_variants_equal_nnunet(scenario):
    fx, inputs = _load(scenario)
    for variant in fx["variants"]:
        kwargs = {"gpu_memory_target_in_gb": variant["gpu_memory_target_in_gb"]}
        if variant["plans_name"] is not None:
            kwargs["plans_name"] = variant["plans_name"]
        assert _diff(_plan(inputs, variant["planner"], **kwargs), variant["plans"]) == [], variant["planner"]


def test_hippocampus_resenc_m_values():
    fx, inputs = _load("hippocampus")
    plans = _plan(inputs, "nnUNetPlannerResEncM")
    fullres = plans["configurations"]["3d_fullres"]
    arch = fullres["architecture"]
    assert arch["network_class_name"] == "dynamic_network_architectures.architectures.unet.ResidualEncoderUNet"
    assert arch["arch_kwargs"]["n_blocks_per_stage"] == [1, 3, 4, 6]
    assert arch["arch_kwargs"]["n_conv_per_stage_decoder"] == [1, 1, 1]
    assert "n_conv_per_stage" not in arch["arch_kwargs"]
    # the plain plans' preprocessed data is reused; the whole-dataset cap is lifted (batch 58, not 7)
    assert fullres["data_identifier"] == "nnUNetPlans_3d_fullres" and fullres["batch_size"] == 58
    assert plans["configurations"]["2d"]["data_identifier"] == "nnUNetPlans_2d"
    assert plans["experiment_planner_used"] == "nnUNetPlannerResEncM"


def test_presets_are_known_and_warn_off_target():
    assert set(RESENC_PRESETS) <= set(PLANNERS)
    _, inputs = _load("hippocampus")
    with pytest.warns(UserWarning, match="not its preset's 24"):
        RESENC_PRESETS["nnUNetPlannerResEncL"](inputs["fingerprint"], DatasetDescription(inputs["dataset_json"]),
                                               inputs["dataset_name"], gpu_memory_target_in_gb=8)


def test_resenc_estimate_by_hand():
    # stem 4x8^3; stage 0: 1 block, 2 convs 4x8^3, no projection; stage 1: 2 blocks of 2 convs 8x4^3 plus the
    # first block's projection 8x4^3; decoder: 1 conv 4x8^3, transposed conv 4x8^3, head 3x8^3
    expected = 4 * 512 + 2 * 4 * 512 + (2 * 2 + 1) * 8 * 64 + 4 * 512 + 4 * 512 + 3 * 512
    assert estimate_resenc_feature_map_size([8, 8, 8], [4, 8], [[1, 1, 1], [2, 2, 2]], [1, 2], [1], 3) == expected


def test_plan_experiment_cli_uses_the_presets_defaults(synthetic_dataset, nnunet_env):
    assert main(["extract_fingerprint", "-d", "998"]) == 0
    pre = nnunet_env["preprocessed"] / synthetic_dataset.name
    assert main(["plan_experiment", "-d", "998", "-pl", "nnUNetPlannerResEncL"]) == 0
    plans = json.loads((pre / "nnUNetResEncUNetLPlans.json").read_text())
    assert plans["experiment_planner_used"] == "nnUNetPlannerResEncL"
    assert not (pre / "nnUNetPlans.json").exists()
    assert main(["plan_experiment", "-d", "998", "-pl", "ResEncUNetPlanner", "-gpu_memory_target", "4",
                 "-overwrite_plans_name", "ResEnc4GB"]) == 0
    small = json.loads((pre / "ResEnc4GB.json").read_text())
    assert small["plans_name"] == "ResEnc4GB"
    assert small["configurations"]["3d_fullres"]["architecture"]["arch_kwargs"]["n_blocks_per_stage"][0] == 1
