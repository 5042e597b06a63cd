"""Validation Dice of fold 0 on the shared Hippocampus data at a fixed training budget: ours, and nnU-Net v2's own
trainer side by side, over several seeds, in one run.

    python benchmarks/accuracy_hippocampus.py [--budget cpu|gpu] [--seeds 3] [--compare-nnunet]
                                              [--nnunet-python PATH] [--workdir DIR] [--set KEY=VALUE]

The data (``../shared/data/Dataset004_Hippocampus``, or ``MONAI_NNUNET_HIPPOCAMPUS``) is read in place. Our
``plan_and_preprocess`` plans it; both tools train with the *same plans file* and the same ``splits_final.json``:

- ``--budget cpu``: the ``2d`` configuration of a plans variant with batch 32 (``nnUNetPlans_bs32``, its own plans
  identifier and cache), fold 0, 10 epochs x 50 iterations, on the CPU (about 10 minutes per run on 2 cores);
- ``--budget gpu``: ``3d_fullres`` with the plans as planned, fold 0, 100 epochs x 250 iterations (a tenth of
  nnU-Net's 1000 epochs), on CUDA.

Each run ends with the tool's final validation (the fold's validation cases predicted whole, with mirroring, in
their original geometry); the figures are its Dice per class and their mean. ``--seeds N`` repeats each tool with
seeds 0..N-1 (``--first-seed K``: K..K+N-1) and prints the mean and the spread (max - min) over the seeds. nnU-Net
runs from a side venv (``--nnunet-python``, ``NNUNET_PYTHON`` or ``../nnunet_venv``) with its own trainer class
(``nnUNetTrainer`` with the budget's epochs and iterations) on its own preprocessing of the same plans; it is never a
dependency.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO_ROOT, nnunet_bin, nnunet_python, require_hippocampus  # noqa: E402

DATASET = "Dataset004_Hippocampus"
BUDGETS = {
    "cpu": {"configuration": "2d", "plans": "nnUNetPlans_bs32", "batch_size": 32, "epochs": 10, "iterations": 50,
            "device": "cpu"},
    "gpu": {"configuration": "3d_fullres", "plans": "nnUNetPlans", "batch_size": None, "epochs": 100,
            "iterations": 250, "device": "cuda"},
}


def _run(cmd: list[str], env: dict[str, str], what: str) -> str:
    result = subprocess.run(cmd, env=env, cwd=REPO_ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{what} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    return result.stdout


def _dice(summary_file: Path) -> dict:
    summary = json.loads(summary_file.read_text())
    return {"per_class": {k: float(v["Dice"]) for k, v in summary["mean"].items()},
            "mean": float(summary["foreground_mean"]["Dice"])}


def prepare_ours(work: Path, budget: dict, threads: int) -> dict[str, str]:
    """Plans and preprocesses the data with our tool; the budget's plans variant under its own identifier."""
    raw, pre = work / "raw", work / "preprocessed"
    raw.mkdir(parents=True, exist_ok=True)
    pre.mkdir(parents=True, exist_ok=True)
    if not (raw / DATASET).exists():
        (raw / DATASET).symlink_to(require_hippocampus(), target_is_directory=True)  # read in place
    env = dict(os.environ, nnUNet_raw=str(raw), nnUNet_preprocessed=str(pre), nnUNet_results=str(work / "unused"),
               nnUNet_n_proc_DA=str(threads), OMP_NUM_THREADS=str(threads))
    configuration = budget["configuration"]
    if not (pre / DATASET / f"{budget['plans']}.json").is_file():
        _run([sys.executable, "-m", "monai_nnunet", "plan_and_preprocess", "-d", "4", "-c", configuration, "-np",
              str(threads)], env, "our plan_and_preprocess")
        if budget["plans"] != "nnUNetPlans":
            plans = json.loads((pre / DATASET / "nnUNetPlans.json").read_text())
            plans["plans_name"] = budget["plans"]
            entry = plans["configurations"][configuration]
            entry["batch_size"] = budget["batch_size"]
            entry["data_identifier"] = f"{budget['plans']}_{configuration}"
            (pre / DATASET / f"{budget['plans']}.json").write_text(json.dumps(plans, indent=4))
            _run([sys.executable, "-m", "monai_nnunet", "preprocess", "-d", "4", "-plans_name", budget["plans"], "-c",
                  configuration, "-np", str(threads)], env, "our preprocess of the plans variant")
    return env


_OURS = """
import json, sys, torch
from monai_nnunet.training.execution import build_trainer
args = json.loads(sys.argv[1])
torch.set_num_threads(args["threads"])
trainer = build_trainer("4", args["configuration"], 0, plans=args["plans"], device=args["device"],
                        num_epochs=args["epochs"], iterations_per_epoch=args["iterations"], val_every=args["epochs"],
                        seed=args["seed"], overwrite=True)
workflow = trainer.initialize()
if args["bundle"]:  # bundle values, as a user sets them in train.yaml
    for key, value in args["bundle"].items():
        workflow.parser[key] = value
    workflow.parser.parse(reset=True)
workflow.run()
workflow.finalize()
"""


def train_ours(work: Path, env: dict[str, str], budget: dict, seed: int, threads: int,
               bundle: dict | None = None) -> dict:
    results = work / f"results_ours_seed{seed}"
    if results.exists():
        shutil.rmtree(results)
    results.mkdir()
    settings = {"threads": threads, "configuration": budget["configuration"], "plans": budget["plans"],
                "device": budget["device"], "epochs": budget["epochs"], "iterations": budget["iterations"],
                "seed": seed, "bundle": bundle or {}}
    start = time.perf_counter()
    _run([sys.executable, "-c", _OURS, json.dumps(settings)], dict(env, nnUNet_results=str(results)),
         f"our training (seed {seed})")
    seconds = time.perf_counter() - start
    summary = next(results.glob(f"{DATASET}/*/fold_0/validation_raw/summary.json"))
    return {**_dice(summary), "seconds": seconds, "seed": seed}


def prepare_nnunet(work: Path, python: Path, budget: dict, ours_env: dict[str, str], threads: int) -> dict[str, str]:
    """nnU-Net's own preprocessing of our plans file (same plans, same split)."""
    pre = work / "preprocessed_nnunet"
    env = dict(os.environ, nnUNet_raw=ours_env["nnUNet_raw"], nnUNet_preprocessed=str(pre),
               nnUNet_results=str(work / "unused"), nnUNet_n_proc_DA=str(threads), OMP_NUM_THREADS=str(threads))
    target = pre / DATASET
    plans = json.loads((Path(ours_env["nnUNet_preprocessed"]) / DATASET / f"{budget['plans']}.json").read_text())
    cache = plans["configurations"][budget["configuration"]].get("data_identifier",
                                                                 f"{budget['plans']}_{budget['configuration']}")
    if not (target / cache).is_dir():
        target.mkdir(parents=True, exist_ok=True)
        ours = Path(ours_env["nnUNet_preprocessed"]) / DATASET
        for name in ("dataset.json", "dataset_fingerprint.json", "splits_final.json", f"{budget['plans']}.json"):
            if (ours / name).is_file():
                shutil.copyfile(ours / name, target / name)
        _run([str(nnunet_bin(python, "nnUNetv2_preprocess")), "-d", "4", "-plans_name", budget["plans"], "-c",
              budget["configuration"], "-np", str(threads)], env, "nnU-Net's preprocess")
        if not (target / "splits_final.json").is_file():
            shutil.copyfile(Path(ours_env["nnUNet_preprocessed"]) / DATASET / "splits_final.json",
                            target / "splits_final.json")
    return env


def train_nnunet(work: Path, python: Path, env: dict[str, str], budget: dict, seed: int, threads: int) -> dict:
    results = work / f"results_nnunet_seed{seed}"
    if results.exists():
        shutil.rmtree(results)
    results.mkdir()
    out = _run([str(python), str(Path(__file__).resolve().parent / "_nnunet_accuracy_train.py"), budget["plans"],
                budget["configuration"], "0", str(budget["epochs"]), str(budget["iterations"]), str(seed),
                str(threads), budget["device"]], dict(env, nnUNet_results=str(results)),
               f"nnU-Net's training (seed {seed})")
    record = json.loads(out.strip().splitlines()[-1])
    return {**_dice(Path(record["summary"])), "seconds": record["seconds"], "seed": seed}


def _report(tool: str, runs: list[dict]) -> dict:
    means = [r["mean"] for r in runs]
    classes = list(runs[0]["per_class"])
    for r in runs:
        seed = r["seed"]
        per_class = " ".join(f"{k}={v:.4f}" for k, v in r["per_class"].items())
        print(f"  {tool:<8} seed {seed}: Dice {per_class} mean {r['mean']:.4f}  ({r['seconds']:.0f} s)", flush=True)
    mean = statistics.mean(means)
    spread = max(means) - min(means)
    per_class = {k: statistics.mean(r["per_class"][k] for r in runs) for k in classes}
    return {"mean": mean, "spread": spread, "std": statistics.stdev(means) if len(means) > 1 else 0.0,
            "per_class": per_class, "seconds": statistics.mean(r["seconds"] for r in runs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", choices=sorted(BUDGETS), default="cpu")
    parser.add_argument("--seeds", type=int, default=1, help="runs per tool, seeds K..K+N-1 (K: --first-seed)")
    parser.add_argument("--first-seed", type=int, default=0, help="the first seed (default 0)")
    parser.add_argument("--compare-nnunet", action="store_true", help="also train nnU-Net v2 (side venv)")
    parser.add_argument("--nnunet-python", default=None)
    parser.add_argument("--threads", type=int, default=2, help="torch threads and augmentation workers")
    parser.add_argument("--workdir", default=None, help="keep the preprocessed data and results here")
    parser.add_argument("--epochs", type=int, default=None, help="override the budget's epochs (a quick check)")
    parser.add_argument("--iterations", type=int, default=None, help="override the budget's iterations per epoch")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a value of our run's bundle (YAML), e.g. --set cpu_bf16=true; repeatable")
    args = parser.parse_args()
    bundle = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--set {item!r}: expected KEY=VALUE")
        bundle[key] = yaml.safe_load(value)
    budget = dict(BUDGETS[args.budget])
    budget.update({k: v for k, v in (("epochs", args.epochs), ("iterations", args.iterations)) if v})
    python = nnunet_python(args.nnunet_python) if args.compare_nnunet else None
    if args.compare_nnunet and python is None:
        raise SystemExit("--compare-nnunet needs a venv with nnunetv2 (--nnunet-python, NNUNET_PYTHON or "
                         "../nnunet_venv)")
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="accuracy_hippocampus_"))
    print(f"budget {args.budget}: {budget['configuration']} ({budget['plans']}), fold 0, {budget['epochs']} epochs x "
          f"{budget['iterations']} iterations, {budget['device']}; {args.seeds} seed(s) per tool "
          f"({args.first_seed}..{args.first_seed + args.seeds - 1})"
          + (f"; ours with {bundle}" if bundle else "") + f"; work in {work}", flush=True)
    ours_env = prepare_ours(work, budget, args.threads)
    nnunet_env = prepare_nnunet(work, python, budget, ours_env, args.threads) if python else None
    runs: dict[str, list[dict]] = {"ours": [], "nnU-Net": []}
    for seed in range(args.first_seed, args.first_seed + args.seeds):  # the tools alternate, so a slower phase of a shared machine hits both
        runs["ours"].append(train_ours(work, ours_env, budget, seed, args.threads, bundle))
        print(f"  ours    seed {seed}: mean Dice {runs['ours'][-1]['mean']:.4f}", flush=True)
        if python:
            runs["nnU-Net"].append(train_nnunet(work, python, nnunet_env, budget, seed, args.threads))
            print(f"  nnU-Net seed {seed}: mean Dice {runs['nnU-Net'][-1]['mean']:.4f}", flush=True)
    print("\nfold-0 validation Dice (final validation, original geometry):")
    reports = {tool: _report(tool, r) for tool, r in runs.items() if r}
    print()
    for tool, rep in reports.items():
        per_class = " ".join(f"{k}={v:.4f}" for k, v in rep["per_class"].items())
        print(f"{tool:<8} mean Dice {rep['mean']:.4f}  spread {rep['spread']:.4f}  std {rep['std']:.4f}  "
              f"per class {per_class}  {rep['seconds']:.0f} s per run")
    if "nnU-Net" in reports:
        ours, theirs = reports["ours"], reports["nnU-Net"]
        difference = ours["mean"] - theirs["mean"]
        allowed = min(0.5 * max(ours["spread"], theirs["spread"]), 0.005)
        verdict = "at parity" if difference >= -allowed else "BELOW nnU-Net"
        print(f"ours - nnU-Net: {difference:+.4f}; allowed below: {allowed:.4f} (half the larger spread, at most "
              f"0.005): {verdict}")


if __name__ == "__main__":
    main()
