"""``progress.png``: losses, validation Dice, learning rate and epoch time over epochs."""

from __future__ import annotations

import os

from monai_nnunet.training.logging.training_log import TrainingLog
from monai_nnunet.utils.files import atomic_path

__all__ = ["plot_progress"]


def plot_progress(log: TrainingLog, path: str | os.PathLike) -> None:
    """Writes the progress figure (three panels) to ``path`` atomically."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    epochs = list(range(log.epochs_done))
    fig, axes = plt.subplots(3, 1, figsize=(12, 14))
    ax = axes[0]
    ax.plot(epochs, log.train_losses, color="b", label="train loss")
    ax.plot(epochs, log.val_losses, color="r", label="validation loss (patches)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    if log.dice_epochs:
        twin = ax.twinx()
        twin.plot(log.dice_epochs, log.mean_dice, color="g", marker="o", label="validation mean Dice (cases)")
        if log.dice_per_class and len(log.dice_per_class[0]) > 1:
            for c in range(len(log.dice_per_class[0])):
                twin.plot(log.dice_epochs, [d[c] for d in log.dice_per_class], linestyle=":",
                          label=f"Dice class {c + 1}")
        twin.set_ylabel("Dice")
        twin.set_ylim(0, 1)
        twin.legend(loc="upper right")
    ax.legend(loc="upper left")
    axes[1].plot(epochs, log.lrs, color="b", label="learning rate (epoch start)")
    axes[1].set_xlabel("epoch")
    axes[1].set_ylabel("learning rate")
    axes[1].legend()
    axes[2].plot(epochs, log.epoch_seconds, color="b", label="epoch duration (s)")
    axes[2].set_xlabel("epoch")
    axes[2].set_ylabel("seconds")
    axes[2].legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
