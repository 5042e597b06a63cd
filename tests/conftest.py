"""Shared fixtures: nnU-Net folder variables pointing into a temporary directory, small synthetic datasets, and the
real Hippocampus data (tests that need it skip with a reason when ``../shared/data`` is absent)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
HIPPOCAMPUS = Path(os.environ.get("MONAI_NNUNET_HIPPOCAMPUS", REPO_ROOT.parent / "shared" / "data" / "Dataset004_Hippocampus"))

requires_hippocampus = pytest.mark.skipif(
    not (HIPPOCAMPUS / "dataset.json").is_file(),
    reason=f"the real Hippocampus data is not available at {HIPPOCAMPUS} (it lives in ../shared/data beside the "
    f"repository; set MONAI_NNUNET_HIPPOCAMPUS to point elsewhere)",
)

# small, fast synthetic datasets: (dataset_id, kwargs for make_synthetic_dataset)
SMALL_ISO = dict(dataset_id=998, name="Synthetic", num_cases=6, shape=(20, 24, 22), num_test_cases=1, seed=1)


@pytest.fixture
def nnunet_env(tmp_path, monkeypatch):
    """Points nnUNet_raw / _preprocessed / _results at empty folders under tmp_path."""
    env = {}
    for name in ("raw", "preprocessed", "results"):
        folder = tmp_path / f"nnUNet_{name}"
        folder.mkdir()
        monkeypatch.setenv(f"nnUNet_{name}", str(folder))
        env[name] = folder
    monkeypatch.setenv("nnUNet_def_n_proc", "1")  # in-process: no worker start-up in unit tests
    return env


@pytest.fixture(scope="session")
def synthetic_template(tmp_path_factory):
    """A small synthetic dataset written once per session; copy it with ``copy_synthetic``."""
    from monai_nnunet.dataset.synthetic import make_synthetic_dataset

    root = tmp_path_factory.mktemp("synthetic_template")
    return make_synthetic_dataset(root, **SMALL_ISO)


@pytest.fixture
def synthetic_dataset(nnunet_env, synthetic_template):
    """A fresh copy of the session's synthetic dataset inside ``nnUNet_raw``."""
    target = nnunet_env["raw"] / synthetic_template.name
    shutil.copytree(synthetic_template, target)
    return target


@pytest.fixture(scope="session")
def preprocessed_synthetic(tmp_path_factory, synthetic_template):
    """The session's synthetic dataset planned and preprocessed (2d and 3d_fullres) once.

    Returns a dict with ``raw``, ``preprocessed``, ``results`` roots and ``folder`` (the dataset's preprocessed
    folder). Tests that write results must use their own ``results`` folder.
    """
    root = tmp_path_factory.mktemp("preprocessed_synthetic")
    env = {name: root / f"nnUNet_{name}" for name in ("raw", "preprocessed", "results")}
    for folder in env.values():
        folder.mkdir()
    shutil.copytree(synthetic_template, env["raw"] / synthetic_template.name)
    with pytest.MonkeyPatch.context() as mp:
        for name, folder in env.items():
            mp.setenv(f"nnUNet_{name}", str(folder))
        from monai_nnunet.planning import plan_and_preprocess

        plan_and_preprocess([998], configurations=["2d", "3d_fullres"], num_processes=1)
    return {**env, "folder": env["preprocessed"] / synthetic_template.name}



@pytest.fixture
def run_env(preprocessed_synthetic, tmp_path, monkeypatch):
    results = tmp_path / "nnUNet_results"
    results.mkdir()
    monkeypatch.setenv("nnUNet_raw", str(preprocessed_synthetic["raw"]))
    monkeypatch.setenv("nnUNet_preprocessed", str(preprocessed_synthetic["preprocessed"]))
    monkeypatch.setenv("nnUNet_results", str(results))
    monkeypatch.setenv("nnUNet_n_proc_DA", "0")
    monkeypatch.setenv("nnUNet_def_n_proc", "1")  # exports and evaluation in-process: no worker start-up in tests
    return {**preprocessed_synthetic, "results": results}


SHORT = ["-device", "cpu", "--epochs", "2", "--iterations_per_epoch", "2", "--val_every", "1"]
ONE_EPOCH = ["-device", "cpu", "--epochs", "1", "--iterations_per_epoch", "2", "--val_every", "1"]


@pytest.fixture(scope="session")
def trained_template(tmp_path_factory, preprocessed_synthetic):
    """The results folder of fold 0 of 3d_fullres trained once for one epoch (``ONE_EPOCH``); copy it with
    ``trained_fold`` (a fold is relocatable, so a copy is a trained fold of its own)."""
    from monai_nnunet.cli.main import main

    results = tmp_path_factory.mktemp("trained_template") / "nnUNet_results"
    results.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        for name in ("raw", "preprocessed"):
            mp.setenv(f"nnUNet_{name}", str(preprocessed_synthetic[name]))
        mp.setenv("nnUNet_results", str(results))
        mp.setenv("nnUNet_n_proc_DA", "0")
        mp.setenv("nnUNet_def_n_proc", "1")
        assert main(["train", "998", "3d_fullres", "0", *ONE_EPOCH]) == 0
    return results


def fold_folder(results, trainer="nnUNetTrainer", configuration="3d_fullres", fold=0):
    return results / "Dataset998_Synthetic" / f"{trainer}__nnUNetPlans__{configuration}" / f"fold_{fold}"


@pytest.fixture
def trained_fold(run_env, trained_template):
    """A fresh copy of the session's trained fold in this test's ``nnUNet_results``: the fold folder."""
    shutil.copytree(trained_template, run_env["results"], dirs_exist_ok=True)
    return fold_folder(run_env["results"])
