"""Seconds per training iteration of one run in one process against the same run over N DDP processes (gloo on the
CPU, NCCL on CUDA), in one invocation.

    python benchmarks/ddp_step.py [--processes 2] [--iterations 20] [--device cpu] [--shape 48 56 48]

A synthetic dataset (12 cases) is planned and preprocessed (3d_fullres) in a temporary folder; then
``nnUNetv2_train ... --epochs 2`` runs once as one process and once with ``-num_gpus N``: the same global batch
(the plans'), each rank training on its share. The figure is the second epoch's training time per iteration from
``training_log.txt`` (the first warms up). On a CPU the processes share the cores, so the figure says what DDP costs
there, not what it gains on several GPUs.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO_ROOT  # noqa: E402

EPOCH = re.compile(r"epoch (\d+) train_loss \S+ val_loss \S+ lr \S+ lr_end \S+ seconds ([0-9.]+)")


def _run(args: list[str], env: dict[str, str]) -> None:
    result = subprocess.run([sys.executable, "-m", "monai_nnunet", *args], env=env, cwd=REPO_ROOT,
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"monai_nnunet {' '.join(args)} failed:\n{result.stderr[-3000:]}")


def seconds_per_iteration(log_file: Path, iterations: int) -> float:
    epochs = {int(e): float(s) for e, s in EPOCH.findall(log_file.read_text())}
    return epochs[max(epochs)] / iterations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--shape", type=int, nargs=3, default=[48, 56, 48])
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="ddp_step_"))
    env = dict(os.environ, nnUNet_raw=str(root / "raw"), nnUNet_preprocessed=str(root / "preprocessed"),
               nnUNet_n_proc_DA="0", nnUNet_def_n_proc="1")
    for name in ("raw", "preprocessed"):
        (root / name).mkdir()
    _run(["make-synthetic-dataset", "-d", "997", "--num_cases", "12", "--num_test_cases", "0", "--shape",
          *map(str, args.shape)], env)
    _run(["plan_and_preprocess", "-d", "997", "-c", "3d_fullres"], env)
    train = ["train", "997", "3d_fullres", "0", "-device", args.device, "--epochs", "2", "--iterations_per_epoch",
             str(args.iterations), "--val_every", "2"]
    figures = {}
    for label, extra in (("1 process", []), (f"{args.processes} processes (DDP)", ["-num_gpus", str(args.processes)])):
        results = root / f"results_{len(figures)}"
        results.mkdir()
        _run(train + extra, dict(env, nnUNet_results=str(results)))
        log = next(results.glob("*/*/fold_0/training_log.txt"))
        figures[label] = seconds_per_iteration(log, args.iterations)
        print(f"{label:<24} {figures[label]:.3f} s per iteration (global batch, {args.device})", flush=True)
    one, many = figures.values()
    print(f"DDP over {args.processes} processes / 1 process: {many / one:.2f}x the time per iteration")


if __name__ == "__main__":
    main()
