"""The document's custom-trainer example, trainer configs with extra loss inputs, 2d, fold all, ignore label and a
hand-written split, all through nnUNetv2_train."""

import json
import shutil
import sys

import numpy as np
import pytest
import torch

from monai_nnunet.cli.main import main
from monai_nnunet.dataset.io import read_segmentation, write_segmentation
from tests.conftest import fold_folder

ONE_EPOCH = ["-device", "cpu", "--epochs", "1", "--iterations_per_epoch", "2", "--val_every", "1"]

MY_TRAINER = '''
import torch
from monai_nnunet.training import nnUNetTrainer
from monai_nnunet.losses import DC_and_CE_loss


class MyTrainer(nnUNetTrainer):
    def configure_optimizers(self):
        """Override optimizer configuration."""
        self.optimizer = torch.optim.Adam(
            self.network.parameters(),
            lr=0.001
        )

    def train_step(self, batch):
        """Override training step logic."""
        data, target = batch['data'], batch['target']

        # Custom forward pass
        output = self.network(data)

        # Custom loss computation
        loss = self.my_custom_loss(output, target)

        return loss

    # the document's example leaves my_custom_loss to the user; here it is nnU-Net's loss on the full resolution
    def my_custom_loss(self, output, target):
        return DC_and_CE_loss({}, {})(output[0], target[0])
'''


def test_document_custom_trainer_example(run_env, tmp_path, monkeypatch):
    (tmp_path / "my_trainers.py").write_text(MY_TRAINER)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("my_trainers", None)
    assert main(["train", "998", "3d_fullres", "0", "-tr", "my_trainers:MyTrainer", *ONE_EPOCH]) == 0
    folder = fold_folder(run_env["results"], trainer="my_trainers.MyTrainer")
    final = torch.load(folder / "checkpoint_final.pth", weights_only=True)
    assert "betas" in final["optimizer_state"]["param_groups"][0]  # Adam
    assert final["trainer_name"] == "my_trainers:MyTrainer"
    assert "_target_: my_trainers.MyTrainer" in (folder / "configs" / "train.yaml").read_text()
    assert (folder / "validation_raw" / "summary.json").is_file()


@pytest.mark.parametrize("trainer", ["blob_dice", "region_dice"])
def test_configs_whose_loss_takes_precomputed_maps(run_env, trainer):
    assert main(["train", "998", "3d_fullres", "0", "-tr", trainer, *ONE_EPOCH, "--disable_checkpointing"]) == 0
    log = (fold_folder(run_env["results"], trainer=trainer) / "training_log.txt").read_text()
    losses = [float(line.split("train_loss ")[1].split()[0]) for line in log.splitlines() if "train_loss" in line]
    assert len(losses) == 1 and np.isfinite(losses[0])


def test_2d_configuration_and_fold_all(run_env):
    assert main(["train", "998", "2d", "all", *ONE_EPOCH]) == 0
    folder = fold_folder(run_env["results"], configuration="2d", fold="all")
    summary = json.loads((folder / "validation_raw" / "summary.json").read_text())
    assert len(summary["metric_per_case"]) == 6  # fold all validates on every case


def test_ignore_label_and_hand_written_split(run_env, tmp_path, monkeypatch):
    """A dataset with an ignore label and a custom splits_final.json, preprocessed and trained."""
    from monai_nnunet.planning import plan_and_preprocess

    raw = tmp_path / "raw"
    pre = tmp_path / "pre"
    shutil.copytree(run_env["raw"] / "Dataset998_Synthetic", raw / "Dataset997_Sparse")
    meta = json.loads((raw / "Dataset997_Sparse" / "dataset.json").read_text())
    meta["labels"]["ignore"] = 3
    (raw / "Dataset997_Sparse" / "dataset.json").write_text(json.dumps(meta))
    for label_file in (raw / "Dataset997_Sparse" / "labelsTr").iterdir():
        seg, props = read_segmentation(label_file)
        seg[0, : seg.shape[1] // 2] = 3  # half of every case unannotated
        write_segmentation(seg[0], label_file, props)
    split = [{"train": ["synthetic_tr000", "synthetic_tr001", "synthetic_tr002"], "val": ["synthetic_tr003"]}]
    (raw / "Dataset997_Sparse" / "splits_final.json").write_text(json.dumps(split))
    monkeypatch.setenv("nnUNet_raw", str(raw))
    monkeypatch.setenv("nnUNet_preprocessed", str(pre))
    plan_and_preprocess([997], configurations=["3d_fullres"], num_processes=1)
    assert json.loads((pre / "Dataset997_Sparse" / "splits_final.json").read_text()) == split
    assert main(["train", "997", "3d_fullres", "0", *ONE_EPOCH]) == 0
    folder = run_env["results"] / "Dataset997_Sparse" / "nnUNetTrainer__nnUNetPlans__3d_fullres" / "fold_0"
    summary = json.loads((folder / "validation_raw" / "summary.json").read_text())
    assert [c["reference_file"].split("/")[-1] for c in summary["metric_per_case"]] == ["synthetic_tr003.nii.gz"]
    final = torch.load(folder / "checkpoint_final.pth", weights_only=True)
    assert np.isfinite(final["logging"]["train_losses"][0])
    prediction, _ = read_segmentation(folder / "validation_raw" / "synthetic_tr003.nii.gz")
    assert set(np.unique(prediction)) <= {0, 1, 2}  # the ignore label is never predicted


def test_region_based_dataset(run_env, tmp_path, monkeypatch):
    """Labels declared as regions: sigmoid outputs, Dice + BCE, region targets, regions_class_order export."""
    from monai_nnunet.planning import plan_and_preprocess

    raw, pre = tmp_path / "raw", tmp_path / "pre"
    shutil.copytree(run_env["raw"] / "Dataset998_Synthetic", raw / "Dataset995_Regions")
    meta = json.loads((raw / "Dataset995_Regions" / "dataset.json").read_text())
    meta["labels"] = {"background": 0, "whole": [1, 2], "core": [2]}
    meta["regions_class_order"] = [1, 2]
    (raw / "Dataset995_Regions" / "dataset.json").write_text(json.dumps(meta))
    monkeypatch.setenv("nnUNet_raw", str(raw))
    monkeypatch.setenv("nnUNet_preprocessed", str(pre))
    plan_and_preprocess([995], configurations=["3d_fullres"], num_processes=1)
    assert main(["train", "995", "3d_fullres", "0", *ONE_EPOCH]) == 0
    folder = run_env["results"] / "Dataset995_Regions" / "nnUNetTrainer__nnUNetPlans__3d_fullres" / "fold_0"
    log = (folder / "training_log.txt").read_text()
    assert "dice whole=" in log and "core=" in log
    summary = json.loads((folder / "validation_raw" / "summary.json").read_text())
    assert set(summary["mean"]) == {"(1, 2)", "(2,)"}
    case = summary["metric_per_case"][0]["prediction_file"]
    prediction, _ = read_segmentation(case)
    assert set(np.unique(prediction)) <= {0, 1, 2}  # regions_class_order turns regions back into labels


def test_png_dataset_end_to_end(run_env, tmp_path, monkeypatch):
    """2D PNG images through the same layout: plans (2d only), training, prediction written as PNG."""
    import itk

    from monai_nnunet.dataset.io import read_images

    ds = tmp_path / "raw" / "Dataset980_Png"
    for sub in ("imagesTr", "labelsTr", "imagesTs"):
        (ds / sub).mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(6):
        h, w = int(rng.integers(50, 70)), int(rng.integers(60, 80))
        image = (rng.random((h, w)) * 50 + 50).astype(np.uint8)
        seg = np.zeros((h, w), np.uint8)
        for c in (1, 2):
            y, x = rng.integers(10, h - 10), rng.integers(10, w - 10)
            seg[y - 5 : y + 5, x - 5 : x + 5] = c
            image[seg == c] += 60 * c
        itk.imwrite(itk.image_from_array(image), str(ds / "imagesTr" / f"case{i}_0000.png"))
        itk.imwrite(itk.image_from_array(seg), str(ds / "labelsTr" / f"case{i}.png"))
    itk.imwrite(itk.image_from_array(image), str(ds / "imagesTs" / "test0_0000.png"))
    (ds / "dataset.json").write_text(json.dumps({"channel_names": {"0": "gray"}, "numTraining": 6,
                                                 "labels": {"background": 0, "a": 1, "b": 2}, "file_ending": ".png"}))
    monkeypatch.setenv("nnUNet_raw", str(tmp_path / "raw"))
    monkeypatch.setenv("nnUNet_preprocessed", str(tmp_path / "pre"))
    assert main(["plan_and_preprocess", "-d", "980", "--verify_dataset_integrity"]) == 0
    plans = json.loads((tmp_path / "pre" / "Dataset980_Png" / "nnUNetPlans.json").read_text())
    assert list(plans["configurations"]) == ["2d"] and plans["image_reader_writer"] == "NaturalImage2DIO"
    assert main(["train", "980", "2d", "0", *ONE_EPOCH]) == 0
    assert main(["predict", "-i", str(ds / "imagesTs"), "-o", str(tmp_path / "pred"), "-d", "980", "-c", "2d",
                 "-f", "0", "-device", "cpu", "-npp", "0", "-nps", "0"]) == 0
    prediction, _ = read_segmentation(tmp_path / "pred" / "test0.png")
    image, _ = read_images([ds / "imagesTs" / "test0_0000.png"])
    assert prediction.shape[1:] == image.shape[1:] and set(np.unique(prediction)) <= {0, 1, 2}
