"""Training together with prediction and transfer: the final validation equals nnUNetv2_predict on the same cases,
fine-tuning from pretrained weights with moved plans, augmentation on the training device (DDP: test_ddp.py)."""

import json
import shutil

import numpy as np
import pytest
import torch

from monai_nnunet.cli.main import main
from monai_nnunet.dataset.io import read_segmentation
from monai_nnunet.evaluation import evaluate_folder
from tests.conftest import SHORT, fold_folder

ONE_EPOCH = ["-device", "cpu", "--epochs", "1", "--iterations_per_epoch", "2", "--val_every", "1"]


def test_predicting_the_validation_cases_reproduces_summary(run_env, tmp_path):
    assert main(["train", "998", "3d_fullres", "0", *SHORT]) == 0
    folder = fold_folder(run_env["results"])
    val_ids = json.loads((run_env["folder"] / "splits_final.json").read_text())[0]["val"]
    images = tmp_path / "images"
    images.mkdir()
    for case in val_ids:
        shutil.copyfile(run_env["raw"] / "Dataset998_Synthetic" / "imagesTr" / f"{case}_0000.nii.gz",
                        images / f"{case}_0000.nii.gz")
    out = tmp_path / "predicted"
    assert main(["predict", "-i", str(images), "-o", str(out), "-d", "998", "-c", "3d_fullres", "-f", "0",
                 "-device", "cpu", "-npp", "0", "-nps", "0"]) == 0
    for case in val_ids:
        a, _ = read_segmentation(out / f"{case}.nii.gz")
        b, _ = read_segmentation(folder / "validation_raw" / f"{case}.nii.gz")
        np.testing.assert_array_equal(a, b)
    summary = evaluate_folder(run_env["folder"] / "gt_segmentations", out, run_env["folder"] / "dataset.json",
                              output_file=tmp_path / "summary.json", num_processes=1, chill=True)
    original = json.loads((folder / "validation_raw" / "summary.json").read_text())
    assert summary["foreground_mean"]["Dice"] == pytest.approx(original["foreground_mean"]["Dice"], nan_ok=True)


def test_pretraining_and_fine_tuning_recipe(run_env, tmp_path, monkeypatch):
    """Train on one dataset, move its plans to another, preprocess and fine-tune with -pretrained_weights."""
    from monai_nnunet.dataset.synthetic import make_synthetic_dataset
    from monai_nnunet.training.execution import build_trainer

    assert main(["train", "998", "3d_fullres", "0", *ONE_EPOCH]) == 0
    source = fold_folder(run_env["results"]) / "checkpoint_final.pth"
    raw = tmp_path / "raw"
    pre = tmp_path / "pre"
    shutil.copytree(run_env["raw"] / "Dataset998_Synthetic", raw / "Dataset998_Synthetic")
    shutil.copytree(run_env["preprocessed"] / "Dataset998_Synthetic", pre / "Dataset998_Synthetic")
    make_synthetic_dataset(raw, dataset_id=996, name="Target", num_cases=5, shape=(18, 26, 24), seed=5,
                           num_test_cases=0)
    monkeypatch.setenv("nnUNet_raw", str(raw))
    monkeypatch.setenv("nnUNet_preprocessed", str(pre))
    assert main(["extract_fingerprint", "-d", "996"]) == 0
    assert main(["move_plans_between_datasets", "-s", "998", "-t", "996", "-sp", "nnUNetPlans",
                 "-tp", "nnUNetPlans_pretrained"]) == 0
    assert main(["preprocess", "-d", "996", "-plans_name", "nnUNetPlans_pretrained", "-c", "3d_fullres"]) == 0
    # the weights the run starts from: the pretrained ones, but for the segmentation heads
    trainer = build_trainer(996, "3d_fullres", 0, plans="nnUNetPlans_pretrained", device="cpu",
                            pretrained_weights=str(source), num_epochs=1, iterations_per_epoch=2, val_every=1)
    engine = trainer.initialize().parser.get_parsed_content("train#trainer")
    from monai_nnunet.training.handlers import PretrainedWeightsLoader

    PretrainedWeightsLoader(str(source))(engine)
    pretrained = torch.load(source, weights_only=True)["network_weights"]
    loaded = engine.network.state_dict()
    heads = [k for k in loaded if not torch.equal(loaded[k], pretrained[k])]
    assert heads and all("output_block" in k or "deep_supervision_heads" in k or "seg" in k for k in heads), heads
    assert main(["train", "996", "3d_fullres", "0", "-p", "nnUNetPlans_pretrained", "-pretrained_weights",
                 str(source), *ONE_EPOCH]) == 0
    target_folder = run_env["results"] / "Dataset996_Target" / "nnUNetTrainer__nnUNetPlans_pretrained__3d_fullres"
    assert (target_folder / "fold_0" / "checkpoint_final.pth").is_file()
    # the log says which layers were loaded and which were not
    line = next(line for line in (target_folder / "fold_0" / "training_log.txt").read_text().splitlines()
                if "pretrained weights" in line)
    from monai_nnunet.networks.pretrained import SEGMENTATION_HEAD_PATTERN

    skipped = line.split("not loaded (trained from scratch): ")[1].split(", ")
    assert set(heads) <= set(skipped) and all(SEGMENTATION_HEAD_PATTERN.search(k) for k in skipped), skipped


def test_augmentation_on_the_training_device(run_env):
    """TrainerConfig(augmentation_device="device"): workers cut patches, the device augments (here the CPU)."""
    from monai_nnunet.training.configs import TRAINER_CONFIGS, TrainerConfig

    TRAINER_CONFIGS["gpu_augmentation_test"] = TrainerConfig(augmentation_device="device")
    try:
        assert main(["train", "998", "3d_fullres", "0", "-tr", "gpu_augmentation_test", *ONE_EPOCH,
                     "--disable_checkpointing"]) == 0
    finally:
        del TRAINER_CONFIGS["gpu_augmentation_test"]
    log = (fold_folder(run_env["results"], trainer="gpu_augmentation_test") / "training_log.txt").read_text()
    losses = [float(line.split("train_loss ")[1].split()[0]) for line in log.splitlines() if "train_loss" in line]
    assert len(losses) == 1 and np.isfinite(losses[0])
