"""A fold's bundle is an artifact: run in place it never trains over the fold by accident; a copied or moved fold
(or a whole nnUNet_results tree) trains, resumes and validates in its new place and never touches the old one."""

import hashlib
import os
import shutil
import subprocess
import sys

import pytest
import torch

from monai_nnunet.cli.main import main
from tests.conftest import REPO_ROOT, fold_folder

SHORT_RUN = ["--epochs", "1", "--iterations_per_epoch", "2", "--val_interval", "1"]


def md5s(folder):
    """md5 of every checkpoint and of the log in a fold folder."""
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*"))
            if p.suffix == ".pth" or p.name == "training_log.txt"}


def bundle_run(config_file, *args, cwd, env=None):
    environment = dict(os.environ, PYTHONPATH=str(REPO_ROOT), **(env or {}))
    return subprocess.run([sys.executable, "-m", "monai.bundle", "run", "--config_file", str(config_file), *args],
                          cwd=cwd, env=environment, capture_output=True, text=True, timeout=900)


@pytest.fixture
def trained(trained_fold):
    return trained_fold


def test_running_a_trained_fold_in_place_is_refused_in_one_line(trained):
    before = md5s(trained)
    result = bundle_run("configs/train.yaml", cwd=trained)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last == (f"error: {trained} already holds checkpoint_final.pth (a finished training): continue it with "
                    f"--resume True, train it again from scratch with --overwrite True, or train into a new folder "
                    f"with --output_dir DIR")
    assert "Traceback" not in result.stderr
    assert md5s(trained) == before


def test_a_started_training_is_refused_too(trained):
    (trained / "checkpoint_final.pth").unlink()
    result = bundle_run("configs/train.yaml", *SHORT_RUN, cwd=trained)
    assert result.returncode == 1 and "holds checkpoint_latest.pth (a started training)" in result.stderr


def test_overwrite_trains_the_fold_again(trained):
    before = md5s(trained)
    result = bundle_run("configs/train.yaml", "--overwrite", "True", *SHORT_RUN, cwd=trained)
    assert result.returncode == 0, result.stderr[-2000:]
    after = md5s(trained)
    assert after["checkpoint_final.pth"] != before["checkpoint_final.pth"]


def test_a_new_output_dir_is_a_complete_results_folder(trained, run_env, tmp_path):
    target = run_env["results"] / "Dataset998_Synthetic" / "again__nnUNetPlans__3d_fullres" / "fold_0"
    before = md5s(trained)
    result = bundle_run("configs/train.yaml", "--output_dir", str(target), *SHORT_RUN, cwd=trained)
    assert result.returncode == 0, result.stderr[-2000:]
    assert md5s(trained) == before
    assert (target / "checkpoint_final.pth").is_file()
    assert (target.parent / "plans.json").read_text() == (trained.parent / "plans.json").read_text()
    assert (target.parent / "dataset.json").is_file()
    images = run_env["raw"] / "Dataset998_Synthetic" / "imagesTs"
    assert main(["predict", "-i", str(images), "-o", str(tmp_path / "pred"), "-d", "998", "-c", "3d_fullres",
                 "-f", "0", "-tr", "again", "-device", "cpu", "-npp", "0", "-nps", "0", "--disable_tta"]) == 0
    assert main(["export-bundle", "-d", "998", "-c", "3d_fullres", "-f", "0", "-tr", "again",
                 "-o", str(tmp_path / "again.zip")]) == 0


def test_a_results_folder_of_other_plans_is_refused(trained, tmp_path):
    other = tmp_path / "other__nnUNetPlans__3d_fullres"
    other.mkdir()
    (other / "plans.json").write_text('{"dataset_name": "another"}')
    result = bundle_run("configs/train.yaml", "--output_dir", str(other / "fold_0"), *SHORT_RUN, cwd=trained)
    assert result.returncode == 1
    assert f"error: {other / 'plans.json'} belongs to another run" in result.stderr.strip().splitlines()[-1]
    assert not (other / "fold_0" / "checkpoint_final.pth").exists()


def test_a_copied_fold_trains_into_the_copy_from_any_working_directory(trained, tmp_path):
    copy = tmp_path / "copied_results"
    shutil.copytree(trained.parents[2], copy)
    copied_fold = copy / trained.relative_to(trained.parents[2])
    original, copied = md5s(trained), md5s(copied_fold)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = bundle_run(copied_fold / "configs" / "train.yaml", "--overwrite", "True", *SHORT_RUN, cwd=elsewhere)
    assert result.returncode == 0, result.stderr[-2000:]
    assert md5s(trained) == original
    assert md5s(copied_fold)["checkpoint_final.pth"] != copied["checkpoint_final.pth"]
    assert list(elsewhere.iterdir()) == []


def test_resume_and_validate_a_copied_results_tree(trained, run_env, tmp_path, monkeypatch):
    copy = tmp_path / "copied_results"
    shutil.copytree(run_env["results"], copy)
    copied_fold = fold_folder(copy)
    original = md5s(trained)
    monkeypatch.setenv("nnUNet_results", str(copy))
    assert main(["train", "998", "3d_fullres", "0", "-c", "-device", "cpu", "--epochs", "2",
                 "--iterations_per_epoch", "2", "--val_every", "1"]) == 0
    assert torch.load(copied_fold / "checkpoint_final.pth", weights_only=True)["epoch"] == 2
    summary = copied_fold / "validation_raw" / "summary.json"
    summary.unlink()
    assert main(["train", "998", "3d_fullres", "0", "--val", "-device", "cpu"]) == 0
    assert summary.is_file()
    assert md5s(trained) == original
    # the bundle itself resumes the copy too
    result = bundle_run("configs/train.yaml", "--resume", "True", "--epochs", "3", "--iterations_per_epoch", "2",
                        "--val_interval", "1", cwd=copied_fold)
    assert result.returncode == 0, result.stderr[-2000:]
    assert torch.load(copied_fold / "checkpoint_final.pth", weights_only=True)["epoch"] == 3
    assert md5s(trained) == original


def test_a_moved_results_tree_resumes_where_it_is(trained, run_env, tmp_path, monkeypatch):
    moved = tmp_path / "moved_results"
    shutil.move(str(run_env["results"]), moved)
    monkeypatch.setenv("nnUNet_results", str(moved))
    assert main(["train", "998", "3d_fullres", "0", "-c", "-device", "cpu", "--epochs", "2",
                 "--iterations_per_epoch", "2", "--val_every", "1"]) == 0
    final = torch.load(fold_folder(moved) / "checkpoint_final.pth", weights_only=True)
    assert final["epoch"] == 2 and final["iteration"] == 4  # resumed after epoch 1, not a new training
    assert not run_env["results"].exists()


def test_overwrite_false_on_the_command_line_is_not_consent(trained):
    before = md5s(trained)
    result = bundle_run("configs/train.yaml", "--overwrite", "false", *SHORT_RUN, cwd=trained)
    assert result.returncode == 1
    assert "run parameter overwrite must be true or false, got 'false'" in result.stderr
    assert md5s(trained) == before
