"""DDP that really trains one run (gloo on the CPU): torchrun of the CLI and of the bundle, ``-num_gpus``, two
"machines" over a localhost rendezvous, resuming, a failing rank; and one DDP step against one single-process step
on the whole batch."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from monai_nnunet.losses import DC_and_CE_loss, DeepSupervisionWrapper
from monai_nnunet.training.distributed import (
    DistributedSetupError,
    init_distributed,
    launched_world_size,
    rank_share,
    split_batch,
)
from monai_nnunet.training.engine import prepare_network
from monai_nnunet.utils.checkpoints import load_checkpoint
from tests.conftest import fold_folder

REPO = Path(__file__).resolve().parents[2]
RUN = ["-device", "cpu", "--epochs", "3", "--iterations_per_epoch", "2", "--val_every", "1"]
# an overlay's imports replace the bundle's: the bundle's own, and the probes
IMPORTS = ["$import torch", "$import monai", "$import monai_nnunet.losses as nnunet_losses",
           "$import monai_nnunet.training as nnunet_training", "$import monai_nnunet.transforms as nnunet_transforms",
           "$import tests.training.ddp_probes as probes"]
EPOCH = re.compile(r"epoch (\d+) train_loss ([0-9.]+) val_loss ([0-9.]+)")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(run_env, results: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    env.update(nnUNet_raw=str(run_env["raw"]), nnUNet_preprocessed=str(run_env["preprocessed"]),
               nnUNet_results=str(results or run_env["results"]), nnUNet_n_proc_DA="0", nnUNet_def_n_proc="1",
               PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""), OMP_NUM_THREADS="1",
               MONAI_NNUNET_DDP_TIMEOUT="120")
    return env


def _run(cmd: list[str], env: dict[str, str], cwd: Path = REPO, timeout: int = 240) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def _torchrun(*args: str, nproc: int = 2) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc), *args]


def _train(*extra: str) -> list[str]:
    return ["-m", "monai_nnunet", "train", "998", "3d_fullres", "0", *RUN, *extra]


def _epochs(log: str) -> list[tuple[int, float, float]]:
    return [(int(e), float(t), float(v)) for e, t, v in EPOCH.findall(log)]


def _assert_one_run(folder: Path, processes: int, epochs: int = 3) -> str:
    log = (folder / "training_log.txt").read_text()
    starts = [line for line in log.splitlines() if ": training nnUNetTrainer" in line]
    assert len(starts) == 1, log  # one writer: one start line
    assert f"DDP over {processes} processes" in starts[0]
    assert [e for e, _, _ in _epochs(log)] == list(range(epochs)), log  # no interleaved epochs of separate runs
    # the ranks hold the same weights after every epoch (ranks training apart would diverge and fail this check)
    assert f"the weights of all {processes} ranks agreed after each of {epochs} epoch(s)" in log
    assert (folder / "checkpoint_final.pth").is_file()
    assert json.loads((folder / "validation_raw" / "summary.json").read_text())["foreground_mean"]["Dice"] >= 0
    return log


@pytest.fixture
def torchrun_fold(run_env):
    """A fold trained by ``torchrun --nproc_per_node 2 -m monai_nnunet train``."""
    result = _run(_torchrun(*_train()), _env(run_env))
    assert result.returncode == 0, result.stderr[-3000:]
    return fold_folder(run_env["results"])


def test_torchrun_and_num_gpus_train_the_same_single_run(run_env, torchrun_fold, tmp_path):
    log = _assert_one_run(torchrun_fold, 2)
    results = tmp_path / "spawned"
    results.mkdir()
    spawned = _run([sys.executable, *_train("-num_gpus", "2")], _env(run_env, results))
    assert spawned.returncode == 0, spawned.stderr[-3000:]
    spawned_log = _assert_one_run(fold_folder(results), 2)
    # -num_gpus 2 is the same run as torchrun: the same losses epoch by epoch
    np.testing.assert_allclose(np.array(_epochs(spawned_log)), np.array(_epochs(log)), rtol=1e-3)
    a = load_checkpoint(torchrun_fold / "checkpoint_final.pth")["network_weights"]
    b = load_checkpoint(fold_folder(results) / "checkpoint_final.pth")["network_weights"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-3, atol=1e-4)


def test_resume_under_torchrun_continues_the_run(run_env, torchrun_fold):
    resumed = _run(_torchrun("-m", "monai_nnunet", "train", "998", "3d_fullres", "0", "-device", "cpu", "--epochs",
                             "5", "-c"), _env(run_env))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    log = (torchrun_fold / "training_log.txt").read_text()
    assert log.count("resuming from checkpoint_latest.pth after epoch 3") == 1
    assert [e for e, _, _ in _epochs(log)] == [0, 1, 2, 3, 4]
    # the schedule is the resumed run's (5 epochs): the rate is not 0 after the first run's 3 epochs
    lrs = [float(x) for x in re.findall(r"epoch [34] train_loss .* lr ([0-9.e-]+) ", log)]
    assert len(lrs) == 2 and all(lr > 0 for lr in lrs), log
    assert load_checkpoint(torchrun_fold / "checkpoint_final.pth")["current_epoch"] == 5


def test_bundle_under_torchrun_with_the_multi_gpu_overlay(run_env, torchrun_fold, tmp_path):
    probe = tmp_path / "probe.yaml"
    probe.write_text(
        f"imports: {IMPORTS}\n"
        f"train#trainer#train_handlers: \"$@train#handlers + [probes.SaveRankWeights('{tmp_path / 'weights'}')]\"\n")
    out = tmp_path / "bundle_run"
    files = f"['configs/train.yaml','configs/multi_gpu_train.yaml','{probe}']"
    result = _run(_torchrun("-m", "monai.bundle", "run", "--config_file", files, "--output_dir", str(out)),
                  _env(run_env), cwd=torchrun_fold)
    assert result.returncode == 0, result.stderr[-3000:]
    _assert_one_run(out, 2)
    ranks = [torch.load(tmp_path / "weights" / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    final = load_checkpoint(out / "checkpoint_final.pth")["network_weights"]
    for k, v in final.items():
        assert torch.equal(ranks[0][k], ranks[1][k]), k  # both ranks hold the run's weights
        assert torch.equal(ranks[0][k], v), k
    # the bundle run is the CLI's run: the same losses
    np.testing.assert_allclose(np.array(_epochs((out / "training_log.txt").read_text())),
                               np.array(_epochs((torchrun_fold / "training_log.txt").read_text())), rtol=1e-3)


def test_a_failing_rank_ends_the_run(run_env, torchrun_fold, tmp_path):
    probe = tmp_path / "fail.yaml"
    probe.write_text(
        f"imports: {IMPORTS}\n"
        "train#trainer#train_handlers: \"$@train#handlers + [probes.FailOnRank(1, 3)]\"\n")
    files = f"['configs/train.yaml','configs/multi_gpu_train.yaml','{probe}']"
    result = _run(_torchrun("-m", "monai.bundle", "run", "--config_file", files, "--output_dir",
                            str(tmp_path / "failing")), _env(run_env), cwd=torchrun_fold, timeout=180)
    assert result.returncode != 0
    assert "injected failure on rank 1 at iteration 3" in result.stderr
    assert "epoch 1 train_loss" not in (tmp_path / "failing" / "training_log.txt").read_text()


def test_num_gpus_reports_the_failing_rank(run_env, tmp_path):
    preprocessed = tmp_path / "preprocessed"
    shutil.copytree(run_env["preprocessed"], preprocessed)
    val = json.loads((preprocessed / "Dataset998_Synthetic" / "splits_final.json").read_text())[0]["val"]
    (preprocessed / "Dataset998_Synthetic" / "nnUNetPlans_3d_fullres" / f"{val[-1]}.npy").write_bytes(b"broken")
    env = _env(run_env, tmp_path)
    env["nnUNet_preprocessed"] = str(preprocessed)
    result = _run([sys.executable, *_train("-num_gpus", "2")], env, timeout=180)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]  # the command's own message ends its output
    assert re.match(r"monai-nnunet train: error: rank [01] of 2 failed, the run was ended: .*" + val[-1], last), \
        result.stderr


def test_two_machines_of_two_processes_over_a_rendezvous(run_env, tmp_path):
    # four ranks need a batch of at least four (the batch size does not change the cache)
    preprocessed = tmp_path / "preprocessed"
    shutil.copytree(run_env["preprocessed"], preprocessed)
    plans_file = preprocessed / "Dataset998_Synthetic" / "nnUNetPlans.json"
    plans = json.loads(plans_file.read_text())
    plans["configurations"]["3d_fullres"]["batch_size"] = 4
    plans_file.write_text(json.dumps(plans))
    env = _env(run_env, tmp_path)
    env["nnUNet_preprocessed"] = str(preprocessed)
    endpoint = f"127.0.0.1:{_port()}"
    nodes = [subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--node_rank", str(n), "--nproc_per_node",
         "2", "--rdzv_backend", "c10d", "--rdzv_endpoint", endpoint, "--rdzv_id", "test",
         *_train()], env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True) for n in (0, 1)]
    outputs = [p.communicate(timeout=300)[0] for p in nodes]
    assert [p.returncode for p in nodes] == [0, 0], "\n".join(o[-2000:] for o in outputs)
    log = _assert_one_run(fold_folder(tmp_path), 4)
    assert "batch 4 (1 on rank 0)" in log


def test_multi_gpu_overlay_refuses_a_single_process(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with pytest.raises(DistributedSetupError, match="multi_gpu_train.yaml is for several processes"):
        init_distributed("cpu", required=True)
    assert init_distributed("cpu") is False
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(DistributedSetupError, match="WORLD_SIZE='two'"):
        launched_world_size()
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    with pytest.raises(DistributedSetupError, match="MASTER_ADDR"):
        init_distributed("cpu")


def test_batch_and_case_shares():
    # nnU-Net's split of batch 5 with 33% oversampling over 2 ranks
    assert split_batch(5, 0.33, 0, 2) == (3, 0.0)
    size, share = split_batch(5, 0.33, 1, 2)
    assert size == 2 and share == pytest.approx(0.825)
    with pytest.raises(ValueError, match="smaller than the number of processes"):
        split_batch(1, 0.33, 0, 2)
    assert rank_share(["a", "b", "c"]) == ["a", "b", "c"]  # no process group: every case


# ---- one DDP step equals one single-process step on the concatenated batch ---------------------------------------
def _network() -> torch.nn.Module:
    from monai_nnunet.networks import PlansDynUNet

    torch.manual_seed(0)
    return PlansDynUNet(input_channels=1, num_classes=3, deep_supervision=True, n_stages=3,
                        features_per_stage=[4, 8, 16], conv_op=torch.nn.Conv3d, kernel_sizes=[[3, 3, 3]] * 3,
                        strides=[[1, 1, 1], [2, 2, 2], [2, 2, 2]], n_conv_per_stage=[2, 2, 2],
                        n_conv_per_stage_decoder=[2, 2], conv_bias=True, norm_op=torch.nn.InstanceNorm3d,
                        norm_op_kwargs={"eps": 1e-5, "affine": True}, nonlin=torch.nn.LeakyReLU,
                        nonlin_kwargs={"inplace": True})


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(4, 1, 16, 16, 16, generator=g), torch.randint(0, 3, (4, 1, 16, 16, 16), generator=g)


def _step(network, image, label, batch_dice: bool, ddp: bool) -> None:
    loss = DeepSupervisionWrapper(
        DC_and_CE_loss({"batch_dice": batch_dice, "smooth": 1e-5, "do_bg": False, "ddp": ddp}, {}),
        lowest_weight=1e-6)
    optimizer = torch.optim.SGD(network.parameters(), lr=0.1, momentum=0.99, nesterov=True)
    loss(network(image), label).backward()
    optimizer.step()


def _ddp_rank(rank: int, port: int, batch_dice: bool, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2",
                      LOCAL_RANK=str(rank))
    init_distributed("cpu")
    network = prepare_network(_network(), "cpu")
    image, label = _batch()
    _step(network, image[2 * rank:2 * rank + 2], label[2 * rank:2 * rank + 2], batch_dice, ddp=True)
    torch.save(network.module.state_dict(), Path(out) / f"rank{rank}.pt")
    torch.distributed.destroy_process_group()


@pytest.mark.parametrize("batch_dice", [False, True])
def test_one_ddp_step_is_one_step_on_the_whole_batch(tmp_path, batch_dice):
    mp.spawn(_ddp_rank, args=(_port(), batch_dice, str(tmp_path)), nprocs=2, join=True)
    single = _network()
    image, label = _batch()
    _step(single, image, label, batch_dice, ddp=False)
    before = _network().state_dict()
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    moved = 0
    for k, v in single.state_dict().items():
        torch.testing.assert_close(ranks[0][k], ranks[1][k], rtol=0, atol=0)
        torch.testing.assert_close(ranks[0][k], v, rtol=1e-4, atol=1e-6)  # DDP averaged the two halves' gradients
        moved += int(not torch.allclose(v, before[k]))
    assert moved > 10  # the step changed the weights
