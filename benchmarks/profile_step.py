"""Where one training iteration's time goes: data wait, forward, loss (with deep supervision), backward, gradient
clipping, optimizer step; with torch's profiler, on the CPU and on CUDA when present.

    python benchmarks/profile_step.py [--device cpu|cuda] [--iterations 6] [--threads 2] [--workers N]
                                      [--preprocessed DIR] [--no-speed-options]

The run's own components, from the bundle ``nnUNetv2_train`` writes for the shared Hippocampus data (3d_fullres
plans, batch 2 at 40x56x40... as planned): its training loader (real augmentation, ``--workers`` processes, default
``nnUNet_n_proc_DA`` as in a run), ``prepare_batch``, network, loss, optimizer and gradient clipping. Each phase runs
inside ``torch.profiler.record_function``; the table is the profiler's time per phase (CUDA time too on a GPU), the
share of the step, and the data wait (time blocked on the loader) as a share of the step.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO_ROOT, fresh_dir, require_hippocampus  # noqa: E402

PHASES = ("data wait", "to device", "forward", "loss", "backward", "clip gradients", "optimizer step")


def _preprocess(tmp: Path) -> Path:
    data = require_hippocampus()
    raw = fresh_dir(tmp / "raw")
    (raw / data.name).symlink_to(data)
    pre = fresh_dir(tmp / "pre")
    subprocess.run([sys.executable, "-m", "monai_nnunet", "plan_and_preprocess", "-d", "4", "-c", "3d_fullres",
                    "-np", "2"], env=dict(os.environ, nnUNet_raw=str(raw), nnUNet_preprocessed=str(pre),
                                          nnUNet_results=str(tmp / "res"), PYTHONPATH=str(REPO_ROOT)),
                   check=True, capture_output=True)
    return pre


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if _cuda() else "cpu")
    parser.add_argument("--iterations", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--workers", type=int, default=None, help="loader processes (default: as a run sets them)")
    parser.add_argument("--preprocessed", default=None)
    parser.add_argument("--no-speed-options", action="store_true", help="channels_last and group_norm_kernels off")
    args = parser.parse_args()

    import torch
    from torch.profiler import ProfilerActivity, profile, record_function

    torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="profile_step_"))
    pre = Path(args.preprocessed) if args.preprocessed else _preprocess(tmp)
    os.environ.setdefault("nnUNet_results", str(tmp / "res"))
    from monai_nnunet.training.execution import build_trainer

    settings = {} if args.workers is None else {"num_workers": args.workers}
    trainer = build_trainer("Dataset004_Hippocampus", "3d_fullres", 0, device=args.device,
                            preprocessed_folder=pre / "Dataset004_Hippocampus", output_folder=tmp / "fold",
                            **settings)
    workflow = trainer.initialize()
    if args.no_speed_options:
        workflow.parser["channels_last"] = False
        workflow.parser["group_norm_kernels"] = False
        workflow.parser.parse(reset=True)
    p = workflow.parser.get_parsed_content
    engine = p("train#trainer")
    network, loss_function, optimizer = p("network"), p("loss"), p("optimizer")
    prepare_batch, max_norm = p("train#prepare_batch"), float(p("grad_clip_norm"))
    device = torch.device(args.device)
    loader = iter(p("train#dataloader"))
    cuda = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda") if cuda else None

    def sync():
        if cuda:
            torch.cuda.synchronize()

    walls: dict[str, list[float]] = {name: [] for name in PHASES}

    def phase(name, fn):
        sync()
        start = time.perf_counter()
        with record_function(name):
            out = fn()
            sync()
        walls[name].append(time.perf_counter() - start)
        return out

    def iteration():
        batch = phase("data wait", lambda: next(loader))
        image, label = phase("to device", lambda: prepare_batch(batch, device, True)[:2])
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, enabled=cuda):
            output = phase("forward", lambda: network(image))
            loss = phase("loss", lambda: loss_function(output, label))
        phase("backward", lambda: (scaler.scale(loss) if scaler else loss).backward())

        def clip():
            if scaler:
                scaler.unscale_(optimizer)
            return torch.nn.utils.clip_grad_norm_(network.parameters(), max_norm)

        phase("clip gradients", clip)
        phase("optimizer step", lambda: (scaler.step(optimizer), scaler.update()) if scaler else optimizer.step())

    network.train()
    for _ in range(args.warmup):
        iteration()
    for values in walls.values():
        values.clear()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        for _ in range(args.iterations):
            iteration()
    stats = {e.key: e for e in prof.key_averages() if e.key in PHASES}
    total = sum(statistics.median(v) for v in walls.values())
    workers = engine.data_loader.num_workers
    print(f"one training iteration, Hippocampus 3d_fullres (batch {image_shape(trainer)}), {device}, "
          f"{args.threads} thread(s), {workers} loader worker(s), speed options "
          f"{'off' if args.no_speed_options else 'as the bundle sets them'}; median of {args.iterations}:")
    print(f"  {'phase':<16} {'wall ms':>9} {'share':>7} {'profiler CPU ms':>16}" + ("  profiler CUDA ms" if cuda else ""))
    for name in PHASES:
        wall = statistics.median(walls[name])
        event = stats.get(name)
        cpu_ms = event.cpu_time_total / 1000 / args.iterations if event else float("nan")
        line = f"  {name:<16} {wall * 1000:9.1f} {wall / total:7.1%} {cpu_ms:16.1f}"
        if cuda:
            cuda_ms = getattr(event, "device_time_total", getattr(event, "cuda_time_total", 0.0)) / 1000 / \
                args.iterations if event else float("nan")
            line += f"  {cuda_ms:16.1f}"
        print(line)
    print(f"  {'total':<16} {total * 1000:9.1f}")
    print(f"data wait: {statistics.median(walls['data wait']) / total:.1%} of a step with {workers} worker(s)")


def image_shape(trainer) -> str:
    s = trainer.settings
    return f"{s.batch_size}, patch {'x'.join(map(str, s.patch_size))}"


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


if __name__ == "__main__":
    main()
