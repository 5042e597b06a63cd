"""Component-level parity with nnU-Net v2 on the real preprocessed Hippocampus data: the training batches'
statistics, and one optimisation step and a short run on the same batches from the same initial weights.

    python benchmarks/recipe_parity.py [--batches 300] [--seed 0] [--parts 0,1,2,3] [--nnunet-python PATH]
                                       [--preprocessed DIR] [--preprocessed-nnunet DIR] [--workdir DIR]

Whole trainings are too noisy to tell a systematic difference from chance at a small budget; this measures the
components separately, at the CPU budget of accuracy_hippocampus.py (the ``2d`` configuration of the plans variant
``nnUNetPlans_bs32``: batch 32, fold 0, 10 epochs x 50 iterations). Both preprocessed caches are read in place
(ours: ``--preprocessed``, nnU-Net's own preprocessing of the same plans: ``--preprocessed-nnunet``; make them with
``accuracy_hippocampus.py --compare-nnunet --workdir DIR``). nnU-Net runs from a side venv
(``--nnunet-python``, ``NNUNET_PYTHON`` or ``../nnunet_venv``) through ``_nnunet_recipe_parity.py``.

0. Preprocessing: nnU-Net's cache against ours (fold 0's training cases): shapes, images, labels.
1. Sampling + augmentation: ``--batches`` training batches from each tool's own training pipeline (ours: the
   ``train#dataset`` stream of the bundle our nnUNetTrainer builds; nnU-Net: its nnUNetTrainer's training loader,
   single-threaded), measured by the same code (``_batch_stats.py``): mean over batches +- its standard error, the
   difference and z = difference / combined standard error (|z| > 3 flagged).
2. Optimisation: nnU-Net's initialised network (torch seed ``--seed``) loaded into ours; one step on one batch of
   nnU-Net's loader (loss, gradient norm after clipping, weights after the step: max abs differences), then 20 steps
   over 20 of its batches as a 4 x 5 budget (the whole poly schedule in 20 steps) with nnU-Net's trainer and with
   our bundle's engine (its optimizer, LR scheduler handler, gradient clipping and loss from train.yaml) under
   ``lr_schedule`` per_iteration (our default) and per_epoch (nnU-Net's); and both tools' LR over the real budget.
3. Initialisation: our network's initial weights (seed ``--seed``) against nnU-Net's, per tensor (std, constants).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from ignite.engine import Events

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _batch_stats import batch_stats  # noqa: E402
from _common import REPO_ROOT, nnunet_python  # noqa: E402

from monai_nnunet.networks.nnunet_weights import load_nnunet_weights, monai_to_nnunet_state_dict  # noqa: E402
from monai_nnunet.training.execution import build_trainer  # noqa: E402

DATASET = "Dataset004_Hippocampus"
PLANS, CONFIGURATION, EPOCHS, ITERATIONS = "nnUNetPlans_bs32", "2d", 10, 50
SHORT_EPOCHS, SHORT_ITERATIONS = 4, 5
KEPT_HANDLERS = ("LrScheduleHandler", "monai_nnunet.training.handlers.GradientClipping")
HELPER = Path(__file__).resolve().parent / "_nnunet_recipe_parity.py"


def our_workflow(seed: int, epochs: int, iterations: int, only_step_handlers: bool = False,
                 bundle: dict | None = None, **settings):
    """Our bundle's workflow as nnUNetv2_train builds it (``settings``: its run settings); ``only_step_handlers``
    keeps only the handlers that act on the optimisation step (the LR schedule and gradient clipping), dropping
    validation, checkpoints and logs; ``bundle``: bundle values set as a user sets them in train.yaml."""
    trainer = build_trainer("4", CONFIGURATION, 0, plans=PLANS, device="cpu", num_epochs=epochs,
                            iterations_per_epoch=iterations, val_every=epochs, seed=seed, overwrite=True,
                            num_workers=0, **settings)
    workflow = trainer.initialize()
    if only_step_handlers:
        handlers = workflow.parser["train#handlers"]
        workflow.parser["train#handlers"] = [h for h in handlers if h.get("_target_") in KEPT_HANDLERS]
    for key, value in (bundle or {}).items():
        workflow.parser[key] = value
    if only_step_handlers or bundle:
        workflow.parser.parse(reset=True)
    return workflow


def _mean_se(values: list[float]) -> tuple[float, float]:
    values = [v for v in values if not math.isnan(v)]
    if len(values) < 2:
        return (values[0] if values else math.nan), math.nan
    return statistics.mean(values), statistics.stdev(values) / math.sqrt(len(values))


def our_batch_stats(workflow, n: int) -> tuple[list[dict], list[str]]:
    stream = workflow.parser.get_parsed_content("train#dataset")
    forced = stream.batch_size - round(stream.batch_size * (1 - stream.oversample_foreground_percent))
    stats, it = [], iter(stream)
    for _ in range(n):
        batch = next(it)
        stats.append(batch_stats(batch["image"].numpy(), [t.numpy() for t in batch["label"]], forced))
    return stats, [str(t.dtype) for t in batch["label"]]


def print_batch_table(ours: list[dict], theirs: list[dict]) -> list[str]:
    print(f"\n1. training batches (batch {32}, {len(ours)} ours / {len(theirs)} nnU-Net): mean over batches +- "
          f"standard error")
    print(f"{'statistic':<46} {'ours':>20} {'nnU-Net':>20} {'ours - nnU-Net':>15} {'z':>7}")
    flagged = []
    for key in ours[0]:
        (m1, s1), (m2, s2) = _mean_se([b[key] for b in ours]), _mean_se([b[key] for b in theirs])
        diff = m1 - m2
        se = math.hypot(s1, s2)
        z = diff / se if se > 0 else (0.0 if diff == 0 else math.inf)
        mark = "  <--" if abs(z) > 3 else ""
        if mark:
            flagged.append(key)
        print(f"{key:<46} {m1:>11.5f} +-{s1:.5f} {m2:>11.5f} +-{s2:.5f} {diff:>+15.5f} {z:>7.2f}{mark}")
    print("(rotation/scaling/mirroring are not observable in the output batches; 'image ==0 voxel share' is the "
          "out-of-bounds fill of the spatial transform, its proxy)")
    return flagged


def _grad_norm(network: torch.nn.Module) -> float:
    grads = [p.grad.detach().flatten() for p in network.parameters() if p.grad is not None]
    return float(torch.cat(grads).norm())


def _batches(npz: Path) -> list[dict]:
    arrays = np.load(npz)
    levels = sorted((k for k in arrays.files if k.startswith("target_")), key=lambda k: int(k.split("_")[1]))
    return [{"image": torch.from_numpy(arrays["data"][i]),
             "label": [torch.from_numpy(arrays[k][i]) for k in levels], "keys": [i]}
            for i in range(arrays["data"].shape[0])]


def run_ours(seed: int, epochs: int, iterations: int, init: dict, batches: list[dict], bundle: dict | None = None,
             **settings) -> dict:
    """Our engine (its optimizer, LR scheduler handler, gradient clipping, loss) over ``batches`` from ``init``."""
    workflow = our_workflow(seed, epochs, iterations, only_step_handlers=True, bundle=bundle, **settings)
    engine = workflow.parser.get_parsed_content("train#trainer")
    network = workflow.parser.get_parsed_content("network_def")  # the module prepare_network set up in place
    load_nnunet_weights(network, init)
    engine.data_loader = batches
    record = {"loss": [], "lr": [], "grad_norm": [], "order": []}

    @engine.on(Events.ITERATION_STARTED)
    def _lr(e):
        record["lr"].append(e.optimizer.param_groups[0]["lr"])

    @engine.on(Events.ITERATION_COMPLETED)
    def _step(e):
        record["loss"].append(float(e.state.output["loss"].detach()))
        record["grad_norm"].append(_grad_norm(e.network))
        record["order"].append(int(e.state.batch["keys"][0]))

    engine.run()
    record["weights"] = monai_to_nnunet_state_dict(network)
    return record


def our_budget_lr(workflow) -> list[float]:
    """The LR of every iteration of the real budget from the bundle's own optimizer and scheduler, stepped as its
    LrScheduleHandler steps it (after every iteration, or every epoch under ``lr_schedule: per_epoch``)."""
    parser = workflow.parser
    optimizer, scheduler = parser.get_parsed_content("optimizer"), parser.get_parsed_content("lr_scheduler")
    warnings.filterwarnings("ignore", re.escape("Detected call of `lr_scheduler.step()` before"))  # no training step here
    per_epoch = parser.get_parsed_content("lr_schedule") == "per_epoch"
    lrs = []
    for epoch in range(EPOCHS):
        for _ in range(ITERATIONS):
            lrs.append(optimizer.param_groups[0]["lr"])
            if not per_epoch:
                scheduler.step()
        if per_epoch:
            scheduler.step()
    return lrs


def _max_diff(a: dict, b: dict) -> tuple[float, int]:
    keys = sorted(set(a) & set(b))
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in keys), len(keys)


def part0(python: Path, env: dict, work: Path, ours_preprocessed: Path) -> None:
    out = work / "cache.json"
    _helper(python, ["cache", PLANS, CONFIGURATION, str(ours_preprocessed / DATASET / f"{PLANS}_{CONFIGURATION}"),
                     str(ours_preprocessed / DATASET / "splits_final.json"), str(out)], env, "nnU-Net's cache check")
    r = json.loads(out.read_text())
    print(f"\n0. preprocessed caches, fold 0's {r['cases']} training cases: shape mismatches {r['shape_mismatches']}, "
          f"max |image diff| {r['max_image_diff']:.2e}, label voxel mismatches {r['label_voxel_mismatches']}")


def part1(python: Path, env: dict, work: Path, seed: int, n: int):
    """The batch statistics table; returns our budget workflow (for part 2's LR) and the flagged statistics."""
    theirs_json = work / "nnunet_batches.json"
    # nnU-Net's batches in the background while ours are drawn
    background = subprocess.Popen([str(python), str(HELPER), "batches", PLANS, CONFIGURATION, str(n), str(seed),
                                   str(theirs_json)], env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
    workflow = our_workflow(seed, EPOCHS, ITERATIONS)
    start = time.perf_counter()
    ours_stats, our_dtypes = our_batch_stats(workflow, n)
    print(f"our {n} batches drawn in {time.perf_counter() - start:.0f} s", flush=True)
    log = background.communicate()[0]
    if background.returncode != 0:
        raise SystemExit(f"nnU-Net's batches failed:\n{log[-3000:]}")
    theirs = json.loads(theirs_json.read_text())
    flagged = print_batch_table(ours_stats, theirs["stats"])
    print(f"target dtypes: ours {our_dtypes}, nnU-Net {theirs['target_dtypes']}")
    return workflow, flagged


def _nnunet_steps(python: Path, env: dict, work: Path, seed: int) -> Path:
    steps = work / "steps"
    steps.mkdir(parents=True, exist_ok=True)
    _helper(python, ["steps", PLANS, CONFIGURATION, str(seed), str(SHORT_EPOCHS * SHORT_ITERATIONS),
                     str(SHORT_EPOCHS), str(SHORT_ITERATIONS), f"{EPOCHS},{ITERATIONS}", str(steps)], env,
            "nnU-Net's steps")
    return steps


def part3(python: Path, env: dict, work: Path, seed: int, budget_workflow) -> None:
    """Our network's initialisation (seed ``seed``) against nnU-Net's: per tensor, the std of the weights (log ratio
    and z = log ratio * sqrt(n - 1), the sampling error of two independent normal samples) and the constants."""
    init_file = work / "steps" / "init.pt"
    if not init_file.is_file():
        _nnunet_steps(python, env, work, seed)
    theirs = torch.load(init_file, weights_only=True)
    network = (budget_workflow or our_workflow(seed, EPOCHS, ITERATIONS)).parser.get_parsed_content("network_def")
    ours = monai_to_nnunet_state_dict(network)
    canonical = [k for k in theirs if ".all_modules." not in k and not k.startswith("decoder.encoder.")]
    zs, constants = {}, 0.0
    for key in canonical:
        a, b = ours[key].double(), theirs[key].double()
        if key.endswith("weight") and a.ndim > 1:
            zs[key] = math.log(float(a.std()) / float(b.std())) * math.sqrt(a.numel() - 1)
        else:
            constants = max(constants, float((a - b).abs().max()))
    worst = max(zs, key=lambda k: abs(zs[k]))
    print(f"\n3. initialisation (ours seed {seed} vs nnU-Net's): std of the {len(zs)} convolution weight tensors, "
          f"z of log(std ratio): mean {statistics.mean(zs.values()):+.2f}, max |z| {abs(zs[worst]):.2f} ({worst}, "
          f"std ours {float(ours[worst].std()):.5f} nnU-Net {float(theirs[worst].std()):.5f}); norm weights/biases "
          f"and biases: max |diff| {constants:.2e}")


def part2(python: Path, env: dict, work: Path, seed: int, budget_workflow) -> None:
    steps = _nnunet_steps(python, env, work, seed)
    ref = json.loads((steps / "steps.json").read_text())
    init = torch.load(steps / "init.pt", weights_only=True)
    after = torch.load(steps / "after_one_step.pt", weights_only=True)
    batches = _batches(steps / "batches.npz")
    one = run_ours(seed, 1, 1, init, batches[:1])
    print(f"\n2a. one step from nnU-Net's initial weights on one batch of its loader (lr {one['lr'][0]} / "
          f"{ref['one_step']['lr']}):")
    loss_o, loss_t = one["loss"][0], ref["one_step"]["loss"]
    gn_o, gn_t = one["grad_norm"][0], ref["one_step"]["grad_norm_after_clip"]
    w_diff, n_keys = _max_diff(one["weights"], after)
    moved, _ = _max_diff(init, after)
    print(f"  loss                      ours {loss_o:.7f}  nnU-Net {loss_t:.7f}  |diff| {abs(loss_o - loss_t):.2e}")
    gn_b = ref["one_step"]["grad_norm_after_clip_without_pre_norm_biases"]
    print(f"  grad norm after clipping  ours {gn_o:.7f}  nnU-Net {gn_t:.7f}  |diff| {abs(gn_o - gn_t):.2e}")
    print(f"    nnU-Net without the biases before instance norm (ours has none) {gn_b:.7f}  |diff| "
          f"{abs(gn_o - gn_b):.2e}")
    print(f"  weights after the step    max |diff| {w_diff:.2e} over {n_keys} tensors (the step moved weights by up "
          f"to {moved:.2e})")
    plain = run_ours(seed, 1, 1, init, batches[:1], bundle={"channels_last": False, "group_norm_kernels": False})
    w_plain, _ = _max_diff(plain["weights"], after)
    print(f"  ours without the CPU speed options (channels_last, group_norm_kernels false): loss |diff| "
          f"{abs(plain['loss'][0] - loss_t):.2e}, grad norm |diff| {abs(plain['grad_norm'][0] - gn_t):.2e}, "
          f"weights max |diff| {w_plain:.2e}")

    runs = {s: run_ours(seed, SHORT_EPOCHS, SHORT_ITERATIONS, init, batches, lr_schedule=s)
            for s in ("per_iteration", "per_epoch")}
    print(f"\n2b. {SHORT_EPOCHS * SHORT_ITERATIONS} steps over the same {len(batches)} batches as a "
          f"{SHORT_EPOCHS} x {SHORT_ITERATIONS} budget, from the same initial weights:")
    print(f"  {'step':>4} {'nnU-Net lr':>11} {'loss':>10} | {'ours per_epoch lr':>17} {'loss':>10} | "
          f"{'ours per_iteration lr':>21} {'loss':>10}")
    for i, loss in enumerate(ref["curve"]):
        pe, pi = runs["per_epoch"], runs["per_iteration"]
        print(f"  {i:>4} {ref['curve_lr'][i]:>11.6f} {loss:>10.6f} | {pe['lr'][i]:>17.6f} {pe['loss'][i]:>10.6f} | "
              f"{pi['lr'][i]:>21.6f} {pi['loss'][i]:>10.6f}")
    for name, run in runs.items():
        assert run["order"] == list(range(len(batches))), run["order"]
        d = max(abs(a - b) for a, b in zip(run["loss"], ref["curve"]))
        print(f"  ours {name:<13} max |loss diff| over the steps {d:.2e}; final loss ours {run['loss'][-1]:.6f} "
              f"nnU-Net {ref['curve'][-1]:.6f}")

    print(f"\n2c. LR over the real budget ({EPOCHS} x {ITERATIONS}), ours from the bundle's scheduler "
          f"(lr_schedule per_iteration, the default), nnU-Net's trainer's:")
    theirs_lr = ref["budget_lr"]
    our_lr = our_budget_lr(budget_workflow or our_workflow(seed, EPOCHS, ITERATIONS))
    for it in (0, 49, 50, 99, 250, 449, 450, 499):
        print(f"  iteration {it:>3}: ours {our_lr[it]:.6f}  nnU-Net {theirs_lr[it]:.6f}")
    print(f"  sum of LR over the budget: ours {sum(our_lr):.4f}  nnU-Net {sum(theirs_lr):.4f}  "
          f"(ours / nnU-Net {sum(our_lr) / sum(theirs_lr):.4f}); last epoch mean: ours "
          f"{statistics.mean(our_lr[-ITERATIONS:]):.6f} nnU-Net {statistics.mean(theirs_lr[-ITERATIONS:]):.6f}")


def _helper(python: Path, args: list[str], env: dict, what: str) -> None:
    result = subprocess.run([str(python), str(HELPER), *args], env=env, cwd=REPO_ROOT, capture_output=True,
                            text=True)
    if result.returncode != 0:
        raise SystemExit(f"{what} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=300, help="training batches per tool for part 1")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--parts", default="0,1,2,3", help="which parts to run (comma-separated)")
    parser.add_argument("--nnunet-python", default=None)
    parser.add_argument("--preprocessed", default="/tmp/acc/preprocessed", help="our nnUNet_preprocessed")
    parser.add_argument("--preprocessed-nnunet", default="/tmp/acc/preprocessed_nnunet",
                        help="nnU-Net's own preprocessing of the same plans")
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    parts = {p.strip() for p in args.parts.split(",")}
    if not parts <= {"0", "1", "2", "3"} or (args.batches < 2 and "1" in parts):
        raise SystemExit(f"--parts {args.parts!r}: expected a subset of 0,1,2,3; part 1 needs --batches >= 2")
    python = nnunet_python(args.nnunet_python)
    if python is None:
        raise SystemExit("needs a venv with nnunetv2 (--nnunet-python, NNUNET_PYTHON or ../nnunet_venv)")
    for folder in (args.preprocessed, args.preprocessed_nnunet):
        if not (Path(folder) / DATASET / f"{PLANS}.json").is_file():
            raise SystemExit(f"{folder}/{DATASET}/{PLANS}.json is missing: make the caches with "
                             f"accuracy_hippocampus.py --compare-nnunet --workdir DIR")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="recipe_parity_"))
    work.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    ours_preprocessed = Path(args.preprocessed).resolve()
    os.environ.update(nnUNet_preprocessed=str(ours_preprocessed), nnUNet_raw=str(work / "raw"),
                      nnUNet_results=str(work / "results_ours"), nnUNet_n_proc_DA="0")
    nnunet_env = dict(os.environ, nnUNet_preprocessed=str(Path(args.preprocessed_nnunet).resolve()),
                      nnUNet_results=str(work / "results_nnunet"), OMP_NUM_THREADS="1")
    print(f"{CONFIGURATION} ({PLANS}), fold 0, seed {args.seed}; nnU-Net from {python}; work in {work}", flush=True)
    if "0" in parts:
        part0(python, nnunet_env, work, ours_preprocessed)
    workflow, flagged = part1(python, nnunet_env, work, args.seed, args.batches) if "1" in parts else (None, None)
    if "2" in parts:
        part2(python, nnunet_env, work, args.seed, workflow)
    if "3" in parts:
        part3(python, nnunet_env, work, args.seed, workflow)
    if flagged is not None:
        print(f"\nbatch statistics beyond 3 standard errors: {flagged or 'none'}")


if __name__ == "__main__":
    main()
