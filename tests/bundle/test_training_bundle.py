"""Every training run is a MONAI bundle: the template passes MONAI's checks, and the run's train.yaml trains through
``python -m monai.bundle run`` exactly as nnUNetv2_train does."""

import json
import os
import subprocess
import sys

import torch
import yaml
from monai.bundle import ConfigWorkflow

from monai_nnunet.bundle import TEMPLATE_BUNDLE
from monai_nnunet.bundle.metadata import SCHEMA_FILE
from monai_nnunet.training.execution import build_trainer
from tests.conftest import REPO_ROOT


def _verify_metadata(meta_file):
    result = subprocess.run([sys.executable, "-m", "monai.bundle", "verify_metadata", "--meta_file", str(meta_file),
                             "--filepath", str(SCHEMA_FILE)], capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)))
    assert result.returncode == 0, result.stderr
    assert "metadata is verified with no error" in result.stdout + result.stderr


def test_template_bundle_layout_and_checks(preprocessed_synthetic, tmp_path):
    for name in ("configs/train.yaml", "configs/inference.yaml", "configs/evaluate.yaml", "configs/multi_gpu_train.yaml",
                 "configs/metadata.json", "configs/logging.conf", "docs/README.md", "LICENSE"):
        assert (TEMPLATE_BUNDLE / name).is_file(), name
    assert (REPO_ROOT / "bundles" / "nnunet" / "configs" / "train.yaml").is_file()
    _verify_metadata(TEMPLATE_BUNDLE / "configs" / "metadata.json")
    # the template filled in for a real (small) dataset, as nnUNetv2_train fills it in
    workflow = ConfigWorkflow(config_file=str(TEMPLATE_BUNDLE / "configs" / "train.yaml"),
                              meta_file=str(TEMPLATE_BUNDLE / "configs" / "metadata.json"), logging_file=False,
                              workflow_type="train", bundle_root=str(tmp_path), device="cpu",
                              dataset_dir=str(preprocessed_synthetic["folder"]), dataset_name="Dataset998_Synthetic",
                              num_workers=0)
    workflow.initialize()
    assert workflow.check_properties() == []
    text = (TEMPLATE_BUNDLE / "configs" / "train.yaml").read_text()
    assert "_target_: monai_nnunet.networks.PlansDynUNet" in text  # our classes fully qualified
    assert "nnunet_trainer" not in text  # no component is a callback into a trainer object


def test_run_bundle_trains_through_monai_bundle_run(run_env):
    trainer = build_trainer(998, "3d_fullres", 0, device="cpu", num_epochs=3, iterations_per_epoch=2, val_every=5)
    trainer.initialize()  # writes the run's bundle into the fold folder (nothing trained yet)
    configs = trainer.output_folder / "configs"
    _verify_metadata(configs / "metadata.json")
    params = yaml.safe_load((configs / "train.yaml").read_text())
    assert params["dataset_name"] == "Dataset998_Synthetic" and params["epochs"] == 3 and params["fold"] == 0
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    result = subprocess.run([sys.executable, "-m", "monai.bundle", "run", "--config_file", str(configs / "train.yaml"),
                             "--epochs", "1", "--val_interval", "1"], cwd=trainer.output_folder, env=env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    final = torch.load(trainer.output_folder / "checkpoint_final.pth", weights_only=True)
    assert final["epoch"] == 1 and final["trainer_name"] == "nnUNetTrainer"
    summary = json.loads((trainer.output_folder / "validation_raw" / "summary.json").read_text())
    assert summary["metric_per_case"]
    assert "validation epoch 0" in (trainer.output_folder / "training_log.txt").read_text()
