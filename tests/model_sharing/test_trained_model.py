"""A model trained by ``nnUNetv2_train`` (one short epoch) exported, installed elsewhere and predicted with."""

import zipfile

import nibabel as nib
import numpy as np
import pytest

from monai_nnunet.cli.main import main

ONE_EPOCH = ["-device", "cpu", "--epochs", "1", "--iterations_per_epoch", "2", "--val_every", "1"]
PRED = ["-device", "cpu", "-npp", "0", "-nps", "0", "--disable_progress_bar", "--disable_tta"]
DATASET = "Dataset998_Synthetic"
MODEL = "nnUNetTrainer__nnUNetPlans__3d_fullres"


@pytest.mark.slow
def test_trained_fold_round_trip(run_env, tmp_path, monkeypatch):
    assert main(["train", "998", "3d_fullres", "0", *ONE_EPOCH]) == 0
    zip_path = tmp_path / "model.zip"
    assert main(["export_model_to_zip", "-d", "998", "-o", str(zip_path), "-c", "3d_fullres", "-f", "0"]) == 0
    with zipfile.ZipFile(zip_path) as zf:
        names = sorted(n.split(f"{MODEL}/", 1)[1] for n in zf.namelist())
    assert {"fold_0/checkpoint_final.pth", "fold_0/progress.png", "fold_0/debug.json",
            "fold_0/validation/summary.json", "plans.json", "dataset.json", "dataset_fingerprint.json"} <= set(names)
    images = run_env["raw"] / DATASET / "imagesTs"
    assert main(["predict", "-i", str(images), "-o", str(tmp_path / "original"), "-d", "998", "-c", "3d_fullres",
                 "-f", "0", *PRED]) == 0
    monkeypatch.setenv("nnUNet_results", str(tmp_path / "elsewhere"))
    assert main(["install_pretrained_model_from_zip", str(zip_path)]) == 0
    assert main(["predict_from_modelfolder", "-i", str(images), "-o", str(tmp_path / "shared"), "-m",
                 str(tmp_path / "elsewhere" / DATASET / MODEL), "-f", "0", *PRED]) == 0
    for case in sorted((tmp_path / "original").glob("*.nii.gz")):
        assert np.array_equal(np.asarray(nib.load(case).dataobj),
                              np.asarray(nib.load(tmp_path / "shared" / case.name).dataobj)), case.name
