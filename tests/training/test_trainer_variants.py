"""The document's custom-trainer example, trainer configs with extra loss inputs, 2d, fold all, ignore label and a
hand-written split, all through nnUNetv2_train."""

import json
import shutil
import sys
import textwrap

import numpy as np
import pytest
import torch

from monai_nnunet.cli.main import main
from monai_nnunet.dataset.io import read_segmentation, write_segmentation
from tests.conftest import SHORT, fold_folder

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
