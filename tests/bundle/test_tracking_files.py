"""The fold bundle's ``tensorboard.yaml`` and ``mlflow.yaml``, merged after ``train.yaml`` as the README shows,
record what ``training_log.txt`` shows: per epoch the train and validation loss, the learning rate, the pseudo Dice
and the case Dice per class, and the training loss of every iteration."""

import os
import re
import subprocess
import sys

import pytest

from monai_nnunet.training.execution import build_trainer
from tests.conftest import REPO_ROOT

EPOCHS, ITERATIONS = 2, 2
CLASSES = ("class1", "class2")  # the synthetic dataset's label names


@pytest.fixture
def fold(run_env):
    """A fresh run's fold folder with its bundle written (nothing trained yet)."""
    trainer = build_trainer(998, "3d_fullres", 0, device="cpu", num_epochs=EPOCHS, iterations_per_epoch=ITERATIONS,
                            val_every=1)
    trainer.initialize()
    return trainer.output_folder


def _train_with(fold, tracking_file):
    # the training only: the final validation of the cases records nothing the trackers show
    result = subprocess.run([sys.executable, "-m", "monai.bundle", "run", "--config_file",
                             f"['configs/train.yaml','configs/{tracking_file}']", "--run", "['$@train#trainer.run()']"],
                            cwd=fold, env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)), capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]


def _number(text, name):
    return float(re.search(rf" {name} (\S+)", text).group(1))


def _logged_values(fold):
    """Per metric name, ``{epoch: value}`` as ``training_log.txt`` prints them."""
    expected = {}
    for line in (fold / "training_log.txt").read_text().splitlines():
        epoch_line = re.search(r": epoch (\d+) (.*)$", line)
        validation_line = re.search(r": validation epoch (\d+) dice (.*) mean (\S+)", line)
        if epoch_line:
            epoch, text = int(epoch_line.group(1)), " " + epoch_line.group(2)
            for name in ("train_loss", "val_loss", "lr", "lr_end"):
                expected.setdefault(name, {})[epoch] = _number(text, name)
            pseudo = re.search(r" pseudo_dice (.*) ema (\S+)", text)
            for name, value in zip(CLASSES, pseudo.group(1).split()):
                expected.setdefault(f"pseudo_dice/{name}", {})[epoch] = float(value)
            expected.setdefault("ema_pseudo_dice", {})[epoch] = float(pseudo.group(2))
        elif validation_line:
            epoch = int(validation_line.group(1))
            for item in validation_line.group(2).split():
                name, value = item.split("=")
                expected.setdefault(f"dice/{name}", {})[epoch] = float(value)
            expected.setdefault("mean_dice", {})[epoch] = float(validation_line.group(3))
    return expected


def _check_against_log(fold, recorded):
    """``recorded``: per metric name, ``[(step, value), ...]`` from the tracker."""
    expected = _logged_values(fold)
    assert set(expected["train_loss"]) == set(range(EPOCHS)) and set(expected["dice/class1"]) == set(range(EPOCHS))
    for name, values in expected.items():
        assert name in recorded, f"{name} not recorded; recorded: {sorted(recorded)}"
        steps = dict(recorded[name])
        assert sorted(steps) == sorted(values), name
        for epoch, value in values.items():
            tolerance = 1e-6 + 1e-5 * abs(value) if name.startswith("lr") else 6e-5  # the log's printed digits
            assert steps[epoch] == pytest.approx(value, abs=tolerance), (name, epoch)
    iteration_losses = sorted(recorded["train_loss_iteration"])
    assert [step for step, _ in iteration_losses] == list(range(1, EPOCHS * ITERATIONS + 1))
    for epoch in range(EPOCHS):  # the epoch's train_loss is the mean of its iterations' losses
        losses = [v for _, v in iteration_losses[epoch * ITERATIONS:(epoch + 1) * ITERATIONS]]
        assert sum(losses) / ITERATIONS == pytest.approx(expected["train_loss"][epoch], abs=6e-5)


def test_tensorboard_records_the_training_log(fold):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _train_with(fold, "tensorboard.yaml")
    event_files = list((fold / "tensorboard").glob("events.out.tfevents.*"))
    assert len(event_files) == 1
    events = EventAccumulator(str(fold / "tensorboard"))
    events.Reload()
    recorded = {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}
    _check_against_log(fold, recorded)


def test_mlflow_records_the_training_log(fold):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    _train_with(fold, "mlflow.yaml")
    client = MlflowClient(tracking_uri=f"sqlite:///{fold / 'mlruns.db'}")
    experiment = client.get_experiment_by_name("Dataset998_Synthetic")
    runs = client.search_runs([experiment.experiment_id])
    assert [r.info.run_name for r in runs] == ["nnUNetTrainer__3d_fullres__fold_0"]
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.data.params["epochs"] == str(EPOCHS) and run.data.params["configuration"] == "3d_fullres"
    recorded = {name: [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, name)]
                for name in run.data.metrics}
    _check_against_log(fold, recorded)
    assert len(recorded["lr_group_0"]) == EPOCHS * ITERATIONS  # MLflow's learning rate of every iteration
