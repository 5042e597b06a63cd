"""nnU-Net v2's side of recipe_parity.py, run with the python of a side venv that has nnunetv2 (its own
nnUNetTrainer, loader, transforms, network, loss, optimizer and LR schedule; the plans and cache of
``nnUNet_preprocessed``). Two modes:

    batches PLANS CONFIGURATION N SEED OUT.json
        the statistics (_batch_stats.batch_stats) of N training batches of the trainer's own training loader
        (fold 0, its full training transforms, single-threaded); writes {"stats": [...per batch...]}.
    steps PLANS CONFIGURATION SEED N_BATCHES EPOCHS ITERATIONS BUDGET_STEPS OUT_DIR
        the trainer initialised with torch seed SEED: writes its initial weights (init.pt), N_BATCHES batches of
        its training loader (batches.npz: data, target_0..), one train_step on batch 0 (loss, gradient norm after
        clipping, weights after: after_one_step.pt) and a run of EPOCHS x ITERATIONS train_steps over the saved
        batches from the initial weights with its own LR schedule (per epoch, num_epochs = EPOCHS); and the LR of
        every iteration of a BUDGET_STEPS = epochs x iterations budget (given as E,I). Writes steps.json.
"""

import json
import os
import random
import re
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _batch_stats import batch_stats  # noqa: E402

PRE_NORM_BIAS = re.compile(r"\.convs\.\d+\.conv\.bias$")


def _trainer(plans_identifier, configuration):
    from nnunetv2.paths import nnUNet_preprocessed
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    folder = os.path.join(nnUNet_preprocessed, "Dataset004_Hippocampus")
    with open(os.path.join(folder, plans_identifier + ".json")) as f:
        plans = json.load(f)
    plans["continue_training"] = False  # nnU-Net 2.8 pops this key from the plans in __init__
    with open(os.path.join(folder, "dataset.json")) as f:
        dataset_json = json.load(f)
    trainer = nnUNetTrainer(plans, configuration, 0, dataset_json, torch.device("cpu"))
    trainer.initialize()
    return trainer


def _seed(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _oversampled(batch_size, percent):
    return batch_size - round(batch_size * (1 - percent))


def batches(plans_identifier, configuration, n, seed, out):
    _seed(int(seed))
    trainer = _trainer(plans_identifier, configuration)
    loader, _ = trainer.get_dataloaders()
    forced = _oversampled(trainer.batch_size, trainer.oversample_foreground_percent)
    stats = []
    for _ in range(int(n)):
        batch = next(loader)
        stats.append(batch_stats(batch["data"].numpy(), [t.numpy() for t in batch["target"]], forced))
    with open(out, "w") as f:
        json.dump({"stats": stats, "target_dtypes": [str(t.dtype) for t in batch["target"]]}, f)


def _grad_norm(network, skip_pre_norm_biases=False):
    # the biases of the convolutions right before instance norm (``...convs.N.conv.bias``) get a gradient that is
    # zero but for rounding; our network has none (nnunet_weights drops them)
    grads = [p.grad.detach().flatten() for n, p in network.named_parameters() if p.grad is not None
             and not (skip_pre_norm_biases and PRE_NORM_BIAS.search(n))]
    return float(torch.cat(grads).norm())


def steps(plans_identifier, configuration, seed, n_batches, epochs, iterations, budget, out_dir):
    _seed(int(seed))
    trainer = _trainer(plans_identifier, configuration)
    init = {k: v.detach().clone() for k, v in trainer.network.state_dict().items()}
    torch.save(init, os.path.join(out_dir, "init.pt"))
    loader, _ = trainer.get_dataloaders()
    saved = [next(loader) for _ in range(int(n_batches))]
    arrays = {"data": np.stack([b["data"].numpy() for b in saved])}
    for level in range(len(saved[0]["target"])):
        arrays[f"target_{level}"] = np.stack([b["target"][level].numpy() for b in saved])
    np.savez(os.path.join(out_dir, "batches.npz"), **arrays)
    as_batch = [{"data": b["data"], "target": list(b["target"])} for b in saved]

    def fresh(num_epochs):
        trainer.network.load_state_dict(init)
        trainer.num_epochs = num_epochs
        trainer.optimizer, trainer.lr_scheduler = trainer.configure_optimizers()
        trainer.network.train()

    # one step (epoch 0 of the budget: on_train_epoch_start's lr_scheduler.step(0), then train_step)
    fresh(int(budget.split(",")[0]))
    trainer.lr_scheduler.step(0)
    lr0 = trainer.optimizer.param_groups[0]["lr"]
    loss = float(trainer.train_step(as_batch[0])["loss"])
    one = {"loss": loss, "grad_norm_after_clip": _grad_norm(trainer.network), "lr": lr0,
           "grad_norm_after_clip_without_pre_norm_biases": _grad_norm(trainer.network, True)}
    torch.save({k: v.detach().clone() for k, v in trainer.network.state_dict().items()},
               os.path.join(out_dir, "after_one_step.pt"))
    # a short run over the saved batches with nnU-Net's schedule (LR set at each epoch's start)
    fresh(int(epochs))
    curve, lrs = [], []
    for epoch in range(int(epochs)):
        trainer.lr_scheduler.step(epoch)
        for it in range(int(iterations)):
            lrs.append(trainer.optimizer.param_groups[0]["lr"])
            curve.append(float(trainer.train_step(as_batch[(epoch * int(iterations) + it) % len(as_batch)])["loss"]))
    # the LR of every iteration of the real budget
    budget_epochs, budget_iterations = (int(v) for v in budget.split(","))
    fresh(budget_epochs)
    budget_lrs = []
    for epoch in range(budget_epochs):
        trainer.lr_scheduler.step(epoch)
        budget_lrs += [trainer.optimizer.param_groups[0]["lr"]] * budget_iterations
    with open(os.path.join(out_dir, "steps.json"), "w") as f:
        json.dump({"one_step": one, "curve": curve, "curve_lr": lrs, "budget_lr": budget_lrs,
                   "target_dtypes": [str(t.dtype) for t in saved[0]["target"]],
                   "batch_dice": bool(trainer.configuration_manager.batch_dice)}, f)


def cache(plans_identifier, configuration, ours_folder, splits_file, out):
    import blosc2
    from nnunetv2.paths import nnUNet_preprocessed

    with open(os.path.join(nnUNet_preprocessed, "Dataset004_Hippocampus", plans_identifier + ".json")) as f:
        identifier = json.load(f)["configurations"][configuration]["data_identifier"]
    theirs = os.path.join(nnUNet_preprocessed, "Dataset004_Hippocampus", identifier)
    with open(splits_file) as f:
        cases = json.load(f)[0]["train"]
    shapes, image_diff, label_mismatch = 0, 0.0, 0
    for case in cases:
        image = np.load(os.path.join(ours_folder, case + ".npy"))
        label = np.load(os.path.join(ours_folder, case + "_seg.npy"))
        their_image = blosc2.open(os.path.join(theirs, case + ".b2nd"), mode="r")[:]
        their_label = blosc2.open(os.path.join(theirs, case + "_seg.b2nd"), mode="r")[:]
        if image.shape != their_image.shape or label.shape != their_label.shape:
            shapes += 1
            continue
        image_diff = max(image_diff, float(np.abs(image.astype(np.float64) - their_image).max()))
        label_mismatch += int((label.astype(np.int64) != their_label).sum())
    with open(out, "w") as f:
        json.dump({"cases": len(cases), "shape_mismatches": shapes, "max_image_diff": image_diff,
                   "label_voxel_mismatches": label_mismatch}, f)


if __name__ == "__main__":
    torch.set_num_threads(1)
    os.environ["nnUNet_n_proc_DA"] = "0"  # the trainer's SingleThreadedAugmenter: reproducible, no workers
    mode, args = sys.argv[1], sys.argv[2:]
    {"batches": batches, "steps": steps, "cache": cache}[mode](*args)
    os._exit(0)
