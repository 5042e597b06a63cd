"""``progress.png``: losses, the pseudo Dice with its moving average and the case-level validation Dice, the
learning rate per iteration, and epoch time."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np

from monai_nnunet.training.logging.training_log import TrainingLog
from monai_nnunet.utils.files import atomic_path

__all__ = ["plot_progress"]


def plot_progress(log: TrainingLog, path: str | os.PathLike, class_names: Sequence[str] = (),
                  iterations_per_epoch: int | None = None) -> None:
    """Writes the progress figure (three panels) to ``path`` atomically.

    Every curve has markers, so a run of one epoch shows its points; epochs are integer ticks; legends sit beside
    the axes, not on the curves; the Dice axis fits the values (early Dice is small); the LR panel shows the rate
    of every iteration as it was applied.

    Args:
        log: the run's record.
        path: the PNG file.
        class_names: names of the foreground classes (dataset.json), in validation order.
        iterations_per_epoch: to place the per-iteration LR on the epoch axis.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    epochs = list(range(log.epochs_done))
    fig, axes = plt.subplots(3, 1, figsize=(12, 13))
    ax = axes[0]
    ax.plot(epochs, log.train_losses, color="b", marker="o", markersize=3, label="train loss")
    ax.plot(epochs, log.val_losses, color="r", marker="o", markersize=3, label="validation loss (patches)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    handles, labels = ax.get_legend_handles_labels()
    pseudo_epochs = list(range(len(log.ema_pseudo_dice)))
    if log.dice_epochs or pseudo_epochs:
        twin = ax.twinx()
    if pseudo_epochs:  # nnU-Net's progress curves: the pseudo Dice of the validation patches and its average
        means = [float(np.nanmean(d)) if not all(math.isnan(v) for v in d) else float("nan") for d in log.pseudo_dice]
        twin.plot(pseudo_epochs, means, color="g", linestyle="dotted", marker=".", label="pseudo Dice (patches)")
        twin.plot(pseudo_epochs, log.ema_pseudo_dice, color="g", linestyle="-", label="pseudo Dice (moving avg.)")
    if log.dice_epochs:
        twin.plot(log.dice_epochs, log.mean_dice, color="k", marker="s", markersize=5, label="mean Dice (cases)")
        n_classes = len(log.dice_per_class[0]) if log.dice_per_class else 0
        if n_classes > 1:
            names = list(class_names) if len(class_names) == n_classes else [f"class {c + 1}" for c in range(n_classes)]
            for c in range(n_classes):
                twin.plot(log.dice_epochs, [d[c] for d in log.dice_per_class], linestyle=":", marker="^",
                          markersize=4, label=f"Dice {names[c]}")
    if log.dice_epochs or pseudo_epochs:
        values = [v for d in log.dice_per_class for v in d if not math.isnan(v)] + \
            [v for v in log.mean_dice + log.ema_pseudo_dice if not math.isnan(v)]
        low = min(values) if values else 0.0
        twin.set_ylim(max(0.0, low - 0.05) if low > 0.2 else 0.0, 1.0)
        twin.set_ylabel("Dice")
        more_handles, more_labels = twin.get_legend_handles_labels()
        handles, labels = handles + more_handles, labels + more_labels
    ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.08, 1.0), fontsize="small")
    lr_ax = axes[1]
    if log.iteration_lrs and iterations_per_epoch:
        steps = [i / iterations_per_epoch for i in range(len(log.iteration_lrs))]
        lr_ax.plot(steps, log.iteration_lrs, color="b", marker="." if len(steps) < 200 else None,
                   label="learning rate (per iteration)")
    else:
        lr_ax.plot(epochs, log.lrs, color="b", marker="o", markersize=3, label="learning rate (epoch start)")
    lr_ax.set_xlabel("epoch")
    lr_ax.set_ylabel("learning rate")
    lr_ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize="small")
    time_ax = axes[2]
    time_ax.plot(epochs, log.epoch_seconds, color="b", marker="o", markersize=3, label="epoch duration (s)")
    time_ax.set_xlabel("epoch")
    time_ax.set_ylabel("seconds")
    time_ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize="small")
    for a in axes:
        a.xaxis.set_major_locator(MaxNLocator(integer=True))
        a.set_xlim(-0.5, max(log.epochs_done, 1))  # the LR curve runs to the end of the last epoch
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
