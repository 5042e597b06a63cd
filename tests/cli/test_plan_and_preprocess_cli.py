"""The planning commands end to end on a small synthetic dataset."""

import importlib.metadata
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from monai_nnunet.cli.main import main
from monai_nnunet.preprocessing.cache import case_ids_in_cache, load_case
from tests.conftest import REPO_ROOT


def _pre(nnunet_env, ds):
    return nnunet_env["preprocessed"] / ds.name


def test_python_dash_m_runs_without_entry_points(synthetic_dataset, nnunet_env):
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    result = subprocess.run(
        [sys.executable, "-m", "monai_nnunet", "plan_and_preprocess", "-d", "998", "-c", "3d_fullres"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "3d_fullres: patch" in result.stdout
    assert (_pre(nnunet_env, synthetic_dataset) / "nnUNetPlans_3d_fullres").is_dir()


def test_outputs(synthetic_dataset, nnunet_env):
    assert main(["plan_and_preprocess", "-d", "Dataset998_Synthetic"]) == 0
    pre = _pre(nnunet_env, synthetic_dataset)
    for name in ("nnUNetPlans.json", "dataset.json", "dataset_fingerprint.json", "splits_final.json"):
        assert (pre / name).is_file(), name
    plans = json.loads((pre / "nnUNetPlans.json").read_text())
    assert plans["dataset_name"] == "Dataset998_Synthetic" and {"2d", "3d_fullres"} <= set(plans["configurations"])
    cases = sorted(p.name[: -len("_0000.nii.gz")] for p in (synthetic_dataset / "imagesTr").iterdir())
    assert sorted(p.name for p in (pre / "gt_segmentations").iterdir()) == [f"{c}.nii.gz" for c in cases]
    splits = json.loads((pre / "splits_final.json").read_text())
    assert len(splits) == 5 and sorted(sum((s["val"] for s in splits), [])) == cases
    for config in ("2d", "3d_fullres"):
        folder = pre / plans["configurations"][config]["data_identifier"]
        assert case_ids_in_cache(folder) == cases
        data, seg, props = load_case(folder, cases[0])
        assert isinstance(data, np.memmap) and data.dtype == np.float32 and seg.dtype == np.int8
        assert data.shape[1:] == seg.shape[1:] and data.shape[0] == 1
        assert set(np.unique(seg)) <= {-1, 0, 1, 2}
        assert abs(float(np.mean(data))) < 0.2
        for key in ("spacing", "sitk_stuff", "shape_before_cropping", "bbox_used_for_cropping",
                    "shape_after_cropping_and_before_resampling", "class_locations"):
            assert key in props
        assert set(props["class_locations"]) == {1, 2}
        locs = props["class_locations"][2]
        assert len(locs) and np.all(np.asarray(seg)[tuple(locs.T)] == 2)
    assert not list(pre.glob(".*partial"))


def test_single_configuration_and_npz(synthetic_dataset, nnunet_env):
    assert main(["plan_and_preprocess", "-d", "998", "-c", "2d", "--npz"]) == 0
    pre = _pre(nnunet_env, synthetic_dataset)
    assert (pre / "nnUNetPlans_2d").is_dir() and not (pre / "nnUNetPlans_3d_fullres").exists()
    cases = [p for p in (pre / "nnUNetPlans_2d").iterdir() if not p.name.startswith(".")]
    assert sorted(p.suffix for p in cases) == [".json"] * 6 + [".npz"] * 6
    assert (pre / "nnUNetPlans_2d" / ".plans.json").is_file()  # which plans made the cache
    data, seg, _ = load_case(pre / "nnUNetPlans_2d", "synthetic_tr000")
    assert data.shape[1:] == seg.shape[1:]


def test_rerun_rebuilds_and_keeps_splits(synthetic_dataset, nnunet_env, capsys):
    assert main(["plan_and_preprocess", "-d", "998", "-c", "3d_fullres"]) == 0
    pre = _pre(nnunet_env, synthetic_dataset)
    stray = pre / "nnUNetPlans_3d_fullres" / "stale_case.json"
    stray.write_bytes(b"old")
    custom = [{"train": ["synthetic_tr000"], "val": ["synthetic_tr001"]}]
    (pre / "splits_final.json").write_text(json.dumps(custom))
    assert main(["plan_and_preprocess", "-d", "998", "-c", "3d_fullres"]) == 0
    assert not stray.exists()
    assert json.loads((pre / "splits_final.json").read_text()) == custom
    assert "using the existing fingerprint" in capsys.readouterr().out


def test_separate_stages_and_their_order(synthetic_dataset, nnunet_env, capsys):
    assert main(["plan_experiment", "-d", "998"]) == 1
    assert "nnUNetv2_extract_fingerprint" in capsys.readouterr().err
    assert main(["preprocess", "-d", "998"]) == 1
    assert "nnUNetPlans.json does not exist" in capsys.readouterr().err
    assert main(["extract_fingerprint", "-d", "998"]) == 0
    assert main(["plan_experiment", "-d", "998", "-overwrite_plans_name", "MyPlans", "-gpu_memory_target", "4"]) == 0
    assert main(["preprocess", "-d", "998", "-plans_name", "MyPlans", "-c", "3d_fullres", "3d_lowres"]) == 0
    out = capsys.readouterr().out
    assert "3d_lowres is not in MyPlans.json, skipping" in out
    assert (_pre(nnunet_env, synthetic_dataset) / "MyPlans_3d_fullres").is_dir()


def test_argument_and_environment_errors(synthetic_dataset, nnunet_env, capsys, monkeypatch):
    assert main(["plan_and_preprocess", "-d", "998", "-pl", "nnUNetPlannerResEncMM"]) == 1
    assert "unknown planner 'nnUNetPlannerResEncMM'" in capsys.readouterr().err
    assert main(["plan_and_preprocess", "-d", "997"]) == 1
    assert "No dataset with id 997" in capsys.readouterr().err
    monkeypatch.delenv("nnUNet_preprocessed")
    assert main(["plan_and_preprocess", "-d", "998"]) == 1
    assert "nnUNet_preprocessed is not set" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["plan_and_preprocess"])  # -d is required: argparse exits with usage


def test_dispatcher(capsys):
    assert main([]) == 2
    assert main(["--help"]) == 0
    assert "plan-and-preprocess" in capsys.readouterr().out
    assert main(["bogus"]) == 2
    assert "unknown command" in capsys.readouterr().err


def test_console_scripts_registered():
    scripts = {e.name: e.value for e in importlib.metadata.entry_points(group="console_scripts")}
    for name in ("monai-nnunet", "nnUNetv2_plan_and_preprocess", "nnUNetv2_extract_fingerprint",
                 "nnUNetv2_plan_experiment", "nnUNetv2_preprocess", "nnUNetv2_convert_MSD_dataset"):
        assert name in scripts and scripts[name].startswith("monai_nnunet.cli.main:")


def test_make_synthetic_dataset_command(nnunet_env):
    assert main(["make-synthetic-dataset", "-d", "5", "--num_cases", "2", "--shape", "12", "12", "12",
                 "--num_test_cases", "0"]) == 0
    assert (nnunet_env["raw"] / "Dataset005_Synthetic" / "labelsTr" / "synthetic_tr001.nii.gz").is_file()
