"""CPU forward + backward time and peak memory of each architecture for the Hippocampus 3d_fullres plans.

    python benchmarks/networks.py [--threads 2] [--repeats 5] [--batch 2] [--plans nnUNetPlans.json]
                                  [--only nnUNetTrainer ResEncM ResEncL]

The networks are built exactly as training builds them: through the registered trainer configs
(``nnUNetTrainer``, ``kiunet``, ``kiunet_minimal``, ``uiunet``, ``uiunet_minimal``), and, for ``ResEncM`` /
``ResEncL``, the plain trainer on nnU-Net 2.8.1's ``nnUNetResEncUNetMPlans`` / ``nnUNetResEncUNetLPlans`` 3d_fullres
configuration of the same data (``--resenc_plans``: the planning tests' fixture for Hippocampus; for Hippocampus the
two presets plan the same network, 40 x 56 x 40, and differ in batch size only: 58 and 141). Training mode, deep
supervision on, 1 input channel, 3 outputs, a random (B, 1, 40, 56, 40) batch; the loss is the sum of the mean
squares of all deep-supervision outputs.

Time: fixed thread count, two warm-up passes, then ``--repeats`` rounds that each run every network once
(interleaved, so load from other processes hits all alike); the table gives the median milliseconds of one
forward + backward and the median of the per-round ratios to the plain U-Net.

Memory: each network is measured in a fresh child process: resident set size (VmRSS) after building the network
and the batch, then the high-water mark (VmHWM) after two forward + backward passes. The difference is the peak
extra RAM a training step needs: autograd's saved activations, the gradients, temporary buffers, and allocator
overhead (glibc's mmap threshold is pinned at 1 MiB so that freed buffers leave the process). It is a CPU figure;
GPU memory tracks it (same tensors) without the allocator and library overhead.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from monai_nnunet.training.configs import resolve_trainer

ARCHITECTURES = ("nnUNetTrainer", "kiunet", "kiunet_minimal", "uiunet", "uiunet_minimal", "ResEncM", "ResEncL")
BASELINE = "nnUNetTrainer"
#: benchmark name -> the preset planner whose plans (``--resenc_plans``) give the network, built by nnUNetTrainer
RESENC = {"ResEncM": "nnUNetPlannerResEncM", "ResEncL": "nnUNetPlannerResEncL"}
RESENC_PLANS = Path(__file__).resolve().parents[1] / "tests" / "planning" / "fixtures" / "resenc_plans_hippocampus.json"

#: The Hippocampus (Dataset004) 3d_fullres configuration as nnU-Net v2.8.1 plans it (network keys only).
HIPPOCAMPUS_3D_FULLRES = {
    "patch_size": [40, 56, 40],
    "architecture": {
        "network_class_name": "dynamic_network_architectures.architectures.unet.PlainConvUNet",
        "arch_kwargs": {
            "n_stages": 4,
            "features_per_stage": [32, 64, 128, 256],
            "conv_op": "torch.nn.modules.conv.Conv3d",
            "kernel_sizes": [[3, 3, 3], [3, 3, 3], [3, 3, 3], [3, 3, 3]],
            "strides": [[1, 1, 1], [2, 2, 2], [2, 2, 2], [2, 2, 2]],
            "n_conv_per_stage": [2, 2, 2, 2],
            "n_conv_per_stage_decoder": [2, 2, 2],
            "conv_bias": True,
            "norm_op": "torch.nn.modules.instancenorm.InstanceNorm3d",
            "norm_op_kwargs": {"eps": 1e-05, "affine": True},
            "dropout_op": None,
            "dropout_op_kwargs": None,
            "nonlin": "torch.nn.LeakyReLU",
            "nonlin_kwargs": {"inplace": True},
        },
        "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"],
    },
}


def load_configuration(plans: str | None, configuration: str) -> dict:
    """The configuration entry of a plans file, or the built-in Hippocampus 3d_fullres entry."""
    if plans is None:
        return HIPPOCAMPUS_3D_FULLRES
    return json.loads(Path(plans).read_text())["configurations"][configuration]


def network_configuration(name: str, configuration: dict, resenc_plans: str | Path = RESENC_PLANS) -> dict:
    """The plans configuration benchmark ``name`` builds: a ResEnc preset's 3d_fullres, or ``configuration``."""
    if name not in RESENC:
        return configuration
    return json.loads(Path(resenc_plans).read_text())["plans"][RESENC[name]]["configurations"]["3d_fullres"]


def make_step(name: str, configuration: dict, batch: int, seed: int = 0,
              resenc_plans: str | Path = RESENC_PLANS) -> tuple[Callable[[], None], int]:
    """A closure running one forward + backward of trainer config ``name`` (``nnUNetTrainer`` on a ResEnc preset's
    plans for ``ResEncM``/``ResEncL``), and the network's parameter count."""
    torch.manual_seed(seed)
    configuration = network_configuration(name, configuration, resenc_plans)
    trainer = BASELINE if name in RESENC else name
    net = resolve_trainer(trainer).build_network(configuration, 1, 3, deep_supervision=True).train()
    x = torch.randn(batch, 1, *configuration["patch_size"])

    def step() -> None:
        net.zero_grad(set_to_none=False)
        outputs = net(x)
        outputs = outputs if isinstance(outputs, list) else [outputs]
        sum(o.square().mean() for o in outputs).backward()

    return step, sum(p.numel() for p in net.parameters())


def time_interleaved(steps: list[Callable[[], None]], repeats: int, warmup: int = 2) -> list[list[float]]:
    """Milliseconds per step, ``repeats`` rounds of every step once."""
    for step in steps:
        for _ in range(warmup):
            step()
    rounds = []
    for _ in range(repeats):
        row = []
        for step in steps:
            start = time.perf_counter()
            step()
            row.append((time.perf_counter() - start) * 1000)
        rounds.append(row)
    return rounds


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status (Linux only)")


def measure_memory_in_this_process(name: str, configuration: dict, batch: int,
                                   resenc_plans: str | Path = RESENC_PLANS) -> dict:
    """Peak extra RSS (MiB) of two forward + backward passes over the state after building."""
    step, params = make_step(name, configuration, batch, resenc_plans=resenc_plans)
    before = _status_kib("VmRSS")
    step()
    step()
    peak = _status_kib("VmHWM")
    return {"name": name, "params": params, "peak_mib": (peak - before) / 1024}


def measure_memory(name: str, args: argparse.Namespace) -> dict:
    """Runs :func:`measure_memory_in_this_process` in a fresh interpreter."""
    cmd = [sys.executable, __file__, "--memory-child", name, "--threads", str(args.threads), "--batch", str(args.batch),
           "--resenc_plans", str(args.resenc_plans)]
    if args.plans:
        cmd += ["--plans", args.plans, "--configuration", args.configuration]
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_=str(1 << 20))
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--plans", default=None, help="an nnUNetPlans.json (default: Hippocampus 3d_fullres)")
    parser.add_argument("--configuration", default="3d_fullres")
    parser.add_argument("--only", nargs="*", default=list(ARCHITECTURES), help="trainer config names (and ResEncM, "
                                                                               "ResEncL)")
    parser.add_argument("--resenc_plans", default=str(RESENC_PLANS),
                        help="nnU-Net's ResEnc plans of the data (as tests/planning/fixtures/resenc_plans_*.json)")
    parser.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    configuration = load_configuration(args.plans, args.configuration)

    if args.memory_child:
        print(json.dumps(measure_memory_in_this_process(args.memory_child, configuration, args.batch,
                                                        args.resenc_plans)))
        return

    names = [BASELINE] + [n for n in args.only if n != BASELINE]
    memory = {n: measure_memory(n, args) for n in names}
    steps = [make_step(n, configuration, args.batch, resenc_plans=args.resenc_plans)[0] for n in names]
    rounds = time_interleaved(steps, args.repeats)

    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, {args.threads} threads, "
          f"batch {args.batch} x 1 x {' x '.join(map(str, configuration['patch_size']))}, {args.repeats} rounds")
    print()
    print("| -tr | parameters | fwd+bwd ms (median) | x plain | peak extra RAM (MiB) | x plain |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    base_mem = memory[BASELINE]["peak_mib"]
    for i, name in enumerate(names):
        ms = statistics.median(r[i] for r in rounds)
        ratio = statistics.median(r[i] / r[0] for r in rounds)
        mem = memory[name]["peak_mib"]
        print(f"| {name} | {memory[name]['params'] / 1e6:.2f} M | {ms:.0f} | {ratio:.2f} | {mem:.0f} | "
              f"{mem / base_mem:.2f} |")


if __name__ == "__main__":
    main()
