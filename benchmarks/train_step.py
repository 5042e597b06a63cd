"""Seconds per training iteration for the Hippocampus 3d_fullres plans: ours and nnU-Net v2's, same plans, batch,
patch and threads, in one run.

    python benchmarks/train_step.py [--device cpu] [--threads 2] [--iterations 5] [--nnunet-python PATH] [--compile]
                                    [-pl nnUNetPlannerResEncM] [--batch-size 2]

Both run their real training step on the same random batch (7 x 1 x 40 x 56 x 40, deep-supervision targets):
ours is the iteration of the run bundle's ``train#trainer`` (MONAI's ``SupervisedTrainer`` iteration with
PlansDynUNet, DC_and_CE_loss with deep supervision, SGD, the ``GradientClipping`` handler) and the poly LR step,
with the bundle's speed options as it sets them and with each of them off; nnU-Net's is ``nnUNetTrainer.train_step``
from a side venv (--nnunet-python, NNUNET_PYTHON or ../nnunet_venv), with its defaults (on CUDA with its
``nnUNet_compile`` both ways). Each variant runs in its own process, alternating, and the median of the timed
iterations (after warm-up) is reported with its ratio to nnU-Net's time. The plans come from our plan_and_preprocess of the
shared Hippocampus data (equal to nnU-Net's), made in a temporary folder unless --preprocessed is given.

``-pl`` plans with another planner, both tools alike: ``-pl nnUNetPlannerResEncM`` times the ResEnc M network
(``ResidualEncoderUNet``: ours from MONAI blocks, nnU-Net's from dynamic_network_architectures) on its
``nnUNetResEncUNetMPlans``. ``--batch-size N`` adds a configuration ``3d_fullres_bsN`` (``inherits_from:
3d_fullres``) to both tools' plans and times that (the ResEnc M preset plans batch 58 for Hippocampus, minutes per
CPU step).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO_ROOT, fresh_dir, nnunet_python, require_hippocampus  # noqa: E402


#: the bundle's speed options, each measured: the defaults, each option off, all off (nnU-Net's kernels)
VARIANTS = {
    "defaults": {},
    "without group-norm kernels": {"group_norm_kernels": False},
    "without channels-last": {"channels_last": False},
    "neither (nnU-Net's kernels)": {"group_norm_kernels": False, "channels_last": False},
}


def run_ours(preprocessed: str, iterations: int, warmup: int, threads: int, device: str,
             options: dict | None = None, plans: str = "nnUNetPlans", configuration: str = "3d_fullres") -> dict:
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    os.environ.setdefault("nnUNet_results", tempfile.mkdtemp())
    os.environ["nnUNet_n_proc_DA"] = "0"
    from monai_nnunet.training.execution import build_trainer

    trainer = build_trainer("Dataset004_Hippocampus", configuration, 0, plans=plans, device=device,
                            preprocessed_folder=Path(preprocessed) / "Dataset004_Hippocampus",
                            output_folder=tempfile.mkdtemp())
    workflow = trainer.initialize()
    if options:  # the bundle's speed options, as a user sets them in train.yaml
        for key, value in options.items():
            workflow.parser[key] = value
        workflow.parser.parse(reset=True)
    engine = workflow.parser.get_parsed_content("train#trainer")
    lr_scheduler = workflow.parser.get_parsed_content("lr_scheduler")
    from monai_nnunet.transforms.labels import deep_supervision_scales

    rng = np.random.default_rng(0)
    patch, batch_size = trainer.settings.patch_size, trainer.settings.batch_size
    seg = torch.from_numpy(rng.integers(0, 3, size=(batch_size, 1, *patch)).astype(np.int16))
    scales = deep_supervision_scales(trainer.configuration_manager.pool_op_kernel_sizes)
    batch = {"image": torch.from_numpy(rng.normal(size=(batch_size, 1, *patch)).astype(np.float32)),
             "label": [torch.nn.functional.interpolate(seg.float(), scale_factor=s, mode="nearest-exact")
                       .to(torch.int16) for s in scales], "keys": []}
    times = []
    for i in range(warmup + iterations):
        start = time.perf_counter()
        engine._iteration(engine, batch)  # what the engine runs per iteration (its handlers fire inside)
        lr_scheduler.step()  # LrScheduleHandler's step after the iteration
        if device == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return {"seconds": times}


def _add_batch_configuration(plans_file: Path, configuration: str, batch_size: int) -> None:
    plans = json.loads(plans_file.read_text())
    plans["configurations"][configuration] = {"inherits_from": "3d_fullres", "batch_size": batch_size}
    plans_file.write_text(json.dumps(plans, indent=1))


def measure(command: list[str], env: dict) -> list[float]:
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2, help="alternating runs per tool (default 2)")
    parser.add_argument("--preprocessed", default=None, help="our nnUNet_preprocessed holding Dataset004")
    parser.add_argument("--nnunet-preprocessed", default=None, help="nnU-Net's nnUNet_preprocessed holding Dataset004")
    parser.add_argument("--nnunet-python", default=None)
    parser.add_argument("--compile", action="store_true", help="also measure compile_network: true")
    parser.add_argument("-pl", default="ExperimentPlanner", help="planner of both tools' plans (e.g. "
                                                                  "nnUNetPlannerResEncM)")
    parser.add_argument("--batch-size", type=int, default=None, help="train a 3d_fullres_bsN configuration")
    parser.add_argument("--defaults-only", action="store_true", help="time our defaults only, not each speed option")
    parser.add_argument("--child", nargs=8, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        pre, it, wu, th, dev, options, plans, config = args.child
        print(json.dumps(run_ours(pre, int(it), int(wu), int(th), dev, json.loads(options), plans, config)))
        return
    from monai_nnunet.planning.api import resolve_planner

    plans_name = resolve_planner(args.pl).default_plans_name
    configuration = "3d_fullres" if args.batch_size is None else f"3d_fullres_bs{args.batch_size}"
    variants = {"defaults": {}} if args.defaults_only else dict(VARIANTS)
    if args.device == "cpu" and not args.defaults_only:
        variants["defaults + cpu_bf16 (opt-in)"] = {"cpu_bf16": True}
    if args.compile:
        variants["defaults + compile_network"] = {"compile_network": True}
    data = require_hippocampus()
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    with tempfile.TemporaryDirectory() as tmp:
        pre = args.preprocessed
        if pre is None:
            root = Path(tmp)
            raw = fresh_dir(root / "raw")
            (raw / data.name).symlink_to(data)
            pre = str(fresh_dir(root / "pre"))
            subprocess.run([sys.executable, "-m", "monai_nnunet", "plan_and_preprocess", "-d", "4", "-c", "3d_fullres",
                            "-np", "2", "-pl", args.pl], env=dict(env, nnUNet_raw=str(raw), nnUNet_preprocessed=pre,
                                                  nnUNet_results=str(root / "res")), check=True, capture_output=True)
        py = nnunet_python(args.nnunet_python)
        theirs_pre = args.nnunet_preprocessed
        if py is not None and theirs_pre is None:
            root = Path(tmp) / "nnunet"
            raw = fresh_dir(root / "raw")
            (raw / data.name).symlink_to(data)
            theirs_pre = str(fresh_dir(root / "pre"))
            subprocess.run([str(py.parent / "nnUNetv2_plan_and_preprocess"), "-d", "4", "-c", "3d_fullres", "-np", "2",
                            "-pl", args.pl],
                           env=dict(env, nnUNet_raw=str(raw), nnUNet_preprocessed=theirs_pre,
                                    nnUNet_results=str(root / "res")), check=True, capture_output=True)
        if args.batch_size is not None:
            for folder in (pre, theirs_pre):
                if folder is not None:
                    _add_batch_configuration(Path(folder) / data.name / f"{plans_name}.json", configuration,
                                             args.batch_size)
        from monai_nnunet.planning.plans import PlansManager

        batch = PlansManager(Path(pre) / data.name / f"{plans_name}.json").get_configuration(configuration).batch_size
        ours: dict[str, list[float]] = {name: [] for name in variants}
        theirs: dict[str, list[float]] = {}
        # nnU-Net with its defaults; on CUDA also with its nnUNet_compile setting both ways
        nnunet_runs = {"nnU-Net v2": {}} if args.device != "cuda" else {
            "nnU-Net v2 (nnUNet_compile=t)": {"nnUNet_compile": "t"},
            "nnU-Net v2 (nnUNet_compile=f)": {"nnUNet_compile": "f"}}
        for _ in range(args.rounds):  # alternating, so a slower phase of a shared machine hits every variant
            for name, options in variants.items():
                ours[name] += measure([sys.executable, __file__, "--child", pre, str(args.iterations),
                                       str(args.warmup), str(args.threads), args.device, json.dumps(options),
                                       plans_name, configuration], env)
            if py is not None:
                for name, extra in nnunet_runs.items():
                    theirs.setdefault(name, [])
                    theirs[name] += measure([str(py), str(Path(__file__).parent / "_nnunet_train_step.py"),
                                             theirs_pre, str(args.iterations), str(args.warmup), str(args.threads),
                                             args.device, plans_name, configuration], dict(env, **extra))
    reference = statistics.median(next(iter(theirs.values()))) if theirs else None
    print(f"training iteration, Hippocampus {plans_name} {configuration} (batch {batch}, patch 40x56x40), "
          f"{args.device}, {args.threads} thread(s), median of {args.rounds} x {args.iterations} iterations:")
    for name, times in {**{f"ours, {k}": v for k, v in ours.items()}, **theirs}.items():
        ratio = f"  {statistics.median(times) / reference:.2f}x nnU-Net's time" if reference else ""
        print(f"  {name:<44} {statistics.median(times):.3f} s{ratio}")
    if not theirs:
        print("  (nnU-Net v2 not found: pass --nnunet-python to compare in the same run)")


if __name__ == "__main__":
    main()
