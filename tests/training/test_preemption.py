"""SIGTERM mid-epoch: training stops after the iteration in progress with checkpoint_latest.pth at that iteration
and a non-zero exit; -c resumes there with the same iteration count, LR sequence and log as an uninterrupted run."""

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from tests.conftest import REPO_ROOT, fold_folder

RUN = ["-device", "cpu", "--epochs", "3", "--iterations_per_epoch", "6", "--val_every", "3"]


def _train(extra=(), **popen):
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    return subprocess.Popen([sys.executable, "-m", "monai_nnunet", "train", "998", "3d_fullres", "0", *RUN, *extra],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


@pytest.mark.slow
def test_sigterm_mid_epoch_then_resume_equals_an_uninterrupted_run(run_env):
    folder = fold_folder(run_env["results"])
    process = _train()
    log = folder / "training_log.txt"
    deadline = time.time() + 600
    while time.time() < deadline and not (log.is_file() and "epoch 0 train_loss" in log.read_text()):
        time.sleep(0.05)
    assert process.poll() is None, process.communicate()
    time.sleep(0.3)  # into the second epoch
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=600)
    assert process.returncode != 0
    assert "stopped by SIGTERM" in err
    latest = torch.load(folder / "checkpoint_latest.pth", weights_only=True)
    assert 6 < latest["iteration"] < 18 and latest["epoch"] == latest["iteration"] // 6
    assert not (folder / "checkpoint_final.pth").exists()
    stopped_at = latest["iteration"]

    resumed = _train(["-c"])
    out, err = resumed.communicate(timeout=900)
    assert resumed.returncode == 0, err[-3000:]
    final = torch.load(folder / "checkpoint_final.pth", weights_only=True)
    assert final["iteration"] == 18 and final["epoch"] == 3
    lrs = final["logging"]["iteration_lrs"]
    assert lrs == pytest.approx([0.01 * (1 - i / 18) ** 0.9 for i in range(18)])  # as an uninterrupted run
    text = log.read_text()
    lines = [line.split(": ", 1)[1].split(" train_loss")[0] for line in text.splitlines() if " train_loss " in line]
    assert lines == ["epoch 0", "epoch 1", "epoch 2"]
    assert f"resuming from checkpoint_latest.pth after epoch {stopped_at // 6}" in text
    assert text.count("training nnUNetTrainer on") == 1
