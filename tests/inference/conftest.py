"""Fixtures for the prediction tests: a synthetic dataset planned, preprocessed and "trained" once per session
(3d_fullres folds 0 and 1, 2d fold 0; see ``_models.py``), copied into each test's nnU-Net folders."""

from __future__ import annotations

import shutil

import pytest
import torch

from tests.conftest import SMALL_ISO
from tests.inference._models import make_trained_model, narrow_plans, nnunet_folders

DATASET = "Dataset998_Synthetic"


@pytest.fixture(autouse=True)
def _single_thread():
    """One intra-op thread: the machine's two cores are shared, and tiny networks gain nothing from more."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def trained_template(tmp_path_factory):
    """Raw, preprocessed and results folders of one synthetic dataset with fabricated trained models."""
    from monai_nnunet.dataset.synthetic import make_synthetic_dataset
    from monai_nnunet.planning import plan_and_preprocess

    root = tmp_path_factory.mktemp("trained_template")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with nnunet_folders(root) as folders:
            make_synthetic_dataset(folders["raw"], **SMALL_ISO)
            plan_and_preprocess([SMALL_ISO["dataset_id"]], configurations=["3d_fullres", "2d"], num_processes=1)
            narrow_plans(folders["preprocessed"] / DATASET / "nnUNetPlans.json")
            make_trained_model(DATASET, "3d_fullres", folds=(0, 1))
            make_trained_model(DATASET, "2d", folds=(0,), train_steps=30)
    finally:
        torch.set_num_threads(threads)
    return folders


@pytest.fixture
def trained_env(nnunet_env, trained_template):
    """``nnunet_env`` holding a copy of the session's trained template."""
    for name in ("raw", "preprocessed", "results"):
        shutil.rmtree(nnunet_env[name])
        shutil.copytree(trained_template[name], nnunet_env[name])
    return nnunet_env
