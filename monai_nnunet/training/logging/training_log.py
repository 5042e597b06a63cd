"""Per-epoch records of a run, kept in checkpoints (so a resumed run continues its log) and written as
``training_log.txt`` lines."""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

__all__ = ["EpochProgress", "TrainingLog"]


@dataclass
class EpochProgress:
    """The epoch in progress: what its log line needs, kept on ``engine.state.epoch_progress`` so a checkpoint
    written in the middle of an epoch (preemption) carries it and the resumed epoch's line covers the whole epoch.

    ``loss_sum`` stays a tensor on the training device while training (no host sync per iteration).
    """

    loss_sum: Any = 0.0
    iterations: int = 0
    lrs: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {"loss_sum": float(self.loss_sum), "iterations": self.iterations, "lrs": list(self.lrs),
                "seconds": float(self.seconds)}

    @classmethod
    def from_dict(cls, d: dict) -> "EpochProgress":
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


@dataclass
class TrainingLog:
    """Lists indexed by epoch (0-based): train/validation loss, learning rate at the epoch's first and last
    iteration, seconds, memory; and the case-level validation results of the epochs that ran it."""

    train_losses: list[float] = field(default_factory=list)
    val_losses: list[float] = field(default_factory=list)
    lrs: list[float] = field(default_factory=list)
    lrs_end: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    memory_mb: list[float] = field(default_factory=list)
    iteration_lrs: list[float] = field(default_factory=list)
    dice_epochs: list[int] = field(default_factory=list)
    dice_per_class: list[list[float]] = field(default_factory=list)
    mean_dice: list[float] = field(default_factory=list)
    best_epoch: int | None = None
    best_metric: float | None = None
    pseudo_dice: list[list[float]] = field(default_factory=list)
    ema_pseudo_dice: list[float] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, list) else v) for k, v in self.__dict__.items()}

    @classmethod
    def from_dict(cls, d: dict) -> "TrainingLog":
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)

    @property
    def epochs_done(self) -> int:
        return len(self.train_losses)

    def record_epoch(self, train_loss: float, val_loss: float, lr: float, lr_end: float, seconds: float,
                     memory_mb: float) -> None:
        self.train_losses.append(float(train_loss))
        self.val_losses.append(float(val_loss))
        self.lrs.append(float(lr))
        self.lrs_end.append(float(lr_end))
        self.epoch_seconds.append(float(seconds))
        self.memory_mb.append(float(memory_mb))

    def record_pseudo_dice(self, per_class: Sequence[float]) -> None:
        """The epoch's pseudo Dice per class on the validation patches, and nnU-Net's moving average of its mean
        (``ema = 0.9 ema + 0.1 mean``, the first epoch's mean to start)."""
        values = [float(v) for v in per_class]
        finite = [v for v in values if not math.isnan(v)]
        mean = sum(finite) / len(finite) if finite else float("nan")
        previous = self.ema_pseudo_dice[-1] if self.ema_pseudo_dice else None
        ema = mean if previous is None or math.isnan(previous) else 0.9 * previous + 0.1 * mean
        self.pseudo_dice.append(values)
        self.ema_pseudo_dice.append(ema)

    def record_validation(self, epoch: int, dice_per_class: Sequence[float], best_epoch: int | None = None,
                          best_metric: float | None = None) -> None:
        """Adds a case-level validation result (0-based ``epoch``) and the best so far, as the evaluator tracks it
        (``None``: the best of the recorded means)."""
        values = [float(v) for v in dice_per_class]
        finite = [v for v in values if not math.isnan(v)]
        mean = sum(finite) / len(finite) if finite else float("nan")
        self.dice_epochs.append(int(epoch))
        self.dice_per_class.append(values)
        self.mean_dice.append(mean)
        if best_epoch is None:
            if not math.isnan(mean) and (self.best_metric is None or mean > self.best_metric):
                self.best_metric, self.best_epoch = mean, int(epoch)
        else:
            self.best_epoch, self.best_metric = int(best_epoch), None if best_metric is None else float(best_metric)

    def epoch_line(self, epoch: int) -> str:
        """One ``training_log.txt`` line for ``epoch`` (0-based)."""
        return (
            f"epoch {epoch} train_loss {self.train_losses[epoch]:.4f} val_loss {self.val_losses[epoch]:.4f} "
            f"lr {self.lrs[epoch]:.6g} lr_end {self.lrs_end[epoch]:.6g} seconds {self.epoch_seconds[epoch]:.2f} "
            f"memory_mb {self.memory_mb[epoch]:.0f}"
            + (f" pseudo_dice {' '.join(f'{v:.4f}' for v in self.pseudo_dice[epoch])} "
               f"ema {self.ema_pseudo_dice[epoch]:.4f}" if epoch < len(self.pseudo_dice) else "")
        )

    def validation_line(self, class_names: Sequence[str]) -> str:
        epoch, values, mean = self.dice_epochs[-1], self.dice_per_class[-1], self.mean_dice[-1]
        per_class = " ".join(f"{n}={v:.4f}" for n, v in zip(class_names, values))
        return (f"validation epoch {epoch} dice {per_class} mean {mean:.4f} "
                f"best_epoch {self.best_epoch} best_mean {self.best_metric if self.best_metric is None else round(self.best_metric, 4)}")


def append_line(path: str | os.PathLike, line: str) -> None:
    """Appends a time-stamped line (flushed, so ``tail -f`` follows the run)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')}: {line}\n")
        f.flush()
