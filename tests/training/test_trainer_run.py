"""nnUNetv2_train end to end on a small synthetic dataset: outputs, checkpoint keys, LR schedule, resume, --val."""

import json
import re
import math

import numpy as np
import pytest
import torch

from monai_nnunet.cli.main import main
from monai_nnunet.dataset.io import read_segmentation
from tests.conftest import SHORT, fold_folder

CHECKPOINT_KEYS = {"network_weights", "optimizer_state", "grad_scaler_state", "epoch", "current_epoch", "init",
                   "trainer_name", "trainer_config", "plans", "dataset_json", "lr_scheduler_state", "logging",
                   "best_metric"}


@pytest.fixture
def trained(run_env):
    assert main(["train", "998", "3d_fullres", "0", *SHORT]) == 0
    return fold_folder(run_env["results"])


def test_outputs_and_checkpoints(trained, run_env):
    for name in ("checkpoint_latest.pth", "checkpoint_best.pth", "checkpoint_final.pth", "training_log.txt",
                 "progress.png", "debug.json", "configs/train.yaml", "configs/metadata.json",
                 "validation_raw/summary.json"):
        assert (trained / name).is_file(), name
    assert (trained.parent / "plans.json").is_file() and (trained.parent / "dataset.json").is_file()
    final = torch.load(trained / "checkpoint_final.pth", weights_only=True)
    assert CHECKPOINT_KEYS <= set(final)
    assert final["epoch"] == final["current_epoch"] == 2
    assert final["trainer_name"] == "nnUNetTrainer" and final["configuration"] == "3d_fullres"
    assert final["init"]["fold"] == "0"
    assert len(final["logging"]["train_losses"]) == 2
    debug = json.loads((trained / "debug.json").read_text())
    assert debug["parameter_count"] > 0 and "torch" in debug["versions"]
    log = (trained / "training_log.txt").read_text()
    assert log.count("train_loss") == 2 and "validation epoch 1 dice class1=" in log and "best_epoch" in log
    # nnU-Net's pseudo Dice of the validation patches (one value per class) and its moving average, every epoch
    epochs = [line for line in log.splitlines() if " train_loss " in line]
    assert all(re.search(r" pseudo_dice [0-9.]+ [0-9.]+ ema [0-9.]+$", line) for line in epochs), log
    assert len(final["logging"]["ema_pseudo_dice"]) == 2
    # final validation: every validation case in its original geometry, summary with per-class Dice
    split = json.loads((run_env["folder"] / "splits_final.json").read_text())[0]["val"]
    written = sorted(p.name for p in (trained / "validation_raw").glob("*.nii.gz"))
    assert written == sorted(f"{c}.nii.gz" for c in split)
    for case in split:
        pred, pred_props = read_segmentation(trained / "validation_raw" / f"{case}.nii.gz")
        ref, ref_props = read_segmentation(run_env["raw"] / "Dataset998_Synthetic" / "labelsTr" / f"{case}.nii.gz")
        assert pred.shape == ref.shape
        np.testing.assert_allclose(pred_props["affine"], ref_props["affine"], atol=1e-4)
    summary = json.loads((trained / "validation_raw" / "summary.json").read_text())
    assert {"1", "2"} <= set(summary["mean"]) and len(summary["metric_per_case"]) == len(split)


def test_lr_follows_poly_per_iteration(trained):
    log = torch.load(trained / "checkpoint_final.pth", weights_only=True)["logging"]
    total = 2 * 2
    for epoch in range(2):
        assert log["lrs"][epoch] == pytest.approx(0.01 * (1 - epoch * 2 / total) ** 0.9)
        assert log["lrs_end"][epoch] == pytest.approx(0.01 * (1 - (epoch * 2 + 1) / total) ** 0.9)


def test_lr_per_epoch_reproduces_nnunet(run_env):
    assert main(["train", "998", "3d_fullres", "0", *SHORT, "--epochs", "3", "--lr_schedule", "per_epoch",
                 "--val_every", "5", "--disable_checkpointing"]) == 0
    folder = fold_folder(run_env["results"])
    assert not list(folder.glob("*.pth"))
    lines = [line for line in (folder / "training_log.txt").read_text().splitlines() if " train_loss " in line]
    lrs = [float(line.split(" lr ")[1].split()[0]) for line in lines]
    assert lrs == pytest.approx([0.01 * (1 - e / 3) ** 0.9 for e in range(3)], rel=1e-4)


class _Interrupt(Exception):
    pass


def test_interrupted_run_resumes_with_c(run_env, monkeypatch, capsys):
    from monai_nnunet.losses import DeepSupervisionWrapper

    calls = {"n": 0}
    original = DeepSupervisionWrapper.forward

    def crashing_loss(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:  # 2 training iterations + 1 validation batch, then the first iteration of epoch 2
            raise _Interrupt("killed")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(DeepSupervisionWrapper, "forward", crashing_loss)
    assert main(["train", "998", "3d_fullres", "0", *SHORT, "--epochs", "3"]) == 1
    assert "killed" in capsys.readouterr().err
    folder = fold_folder(run_env["results"])
    latest = torch.load(folder / "checkpoint_latest.pth", weights_only=True)
    assert latest["epoch"] == 1 and not (folder / "checkpoint_final.pth").exists()
    monkeypatch.setattr(DeepSupervisionWrapper, "forward", original)
    assert main(["train", "998", "3d_fullres", "0", *SHORT, "--epochs", "3", "-c"]) == 0
    final = torch.load(folder / "checkpoint_final.pth", weights_only=True)
    assert final["epoch"] == 3
    log = final["logging"]
    assert len(log["train_losses"]) == 3 and all(math.isfinite(v) for v in log["train_losses"])
    # the schedule continued where it stopped: epoch 1 starts at step 2 of 6
    assert log["lrs"][1] == pytest.approx(0.01 * (1 - 2 / 6) ** 0.9)
    text = (folder / "training_log.txt").read_text()
    assert "resuming from checkpoint_latest.pth after epoch 1" in text
    assert [line.split(" train_loss")[0].split(": ")[1] for line in text.splitlines() if " train_loss " in line] == [
        "epoch 0", "epoch 1", "epoch 2"]


def test_continue_without_checkpoint_starts_fresh(run_env, capsys):
    assert main(["train", "998", "3d_fullres", "0", *SHORT, "--epochs", "1", "-c", "--disable_checkpointing"]) == 0
    assert "no checkpoint" in capsys.readouterr().out


def test_val_best_uses_the_best_checkpoint(trained, capsys):
    best = torch.load(trained / "checkpoint_best.pth", weights_only=True)
    (trained / "validation_raw" / "summary.json").unlink()
    assert main(["train", "998", "3d_fullres", "0", "-device", "cpu", "--val", "--val_best"]) == 0
    assert (trained / "validation_raw" / "summary.json").is_file()
    assert f"validating checkpoint_best.pth (epoch {best['epoch']})" in capsys.readouterr().out


@pytest.mark.parametrize("args,message", [
    (["-c", "-pretrained_weights", "x.pth"], "cannot be combined"),
    (["-c", "--val"], "cannot be combined"),
    (["--val_best"], "only applies together with --val"),
    (["-tr", "no_such_trainer"], "nnUNetTrainer"),
    (["-p", "NoSuchPlans"], "NoSuchPlans.json does not exist"),
])
def test_bad_arguments(run_env, capsys, args, message):
    assert main(["train", "998", "3d_fullres", "0", "-device", "cpu", *args]) == 1
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("dataset,config,fold,message", [
    ("997", "3d_fullres", "0", "No dataset with id 997"),
    ("998", "3d_lowres", "0", "3d_lowres"),
    ("998", "3d_fullres", "7", "fold 7 does not exist"),
    ("998", "3d_fullres", "x", "fold must be"),
])
def test_bad_dataset_configuration_fold(run_env, capsys, dataset, config, fold, message):
    assert main(["train", dataset, config, fold, *SHORT]) == 1
    assert message in capsys.readouterr().err


def test_missing_preprocessed_folder(run_env, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("nnUNet_preprocessed", str(tmp_path))
    assert main(["train", "998", "3d_fullres", "0", "-device", "cpu"]) == 1
    assert "nnUNetPlans.json does not exist" in capsys.readouterr().err


def test_cache_written_by_nnunet_is_named(run_env, tmp_path, monkeypatch, capsys):
    import shutil

    pre = tmp_path / "pre"
    shutil.copytree(run_env["preprocessed"] / "Dataset998_Synthetic", pre / "Dataset998_Synthetic")
    cache = pre / "Dataset998_Synthetic" / "nnUNetPlans_3d_fullres"
    for f in list(cache.glob("*.npy")):
        f.rename(f.with_suffix(".b2nd"))
    monkeypatch.setenv("nnUNet_preprocessed", str(pre))
    assert main(["train", "998", "3d_fullres", "0", "-device", "cpu"]) == 1
    assert "preprocessed by nnU-Net itself" in capsys.readouterr().err
