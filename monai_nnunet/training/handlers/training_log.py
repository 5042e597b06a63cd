"""The run's record and ``training_log.txt``: per epoch the train and validation loss, the LR, seconds, memory and
the pseudo Dice on the validation patches with its moving average; per case-level validation the Dice per class and
the best epoch."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.distributed as dist
from ignite.engine import Engine, Events

from monai_nnunet.training.distributed import is_distributed, mean_over_ranks, rank
from monai_nnunet.training.logging.training_log import EpochProgress, TrainingLog, append_line
from monai_nnunet.training.runtime_utils import memory_in_use_mb, reset_peak_memory

__all__ = ["TrainingLogHandler", "log_line"]


def log_line(log_file: str | os.PathLike | None, line: str) -> None:
    """Appends a time-stamped line to ``log_file`` and prints it (rank 0 only under DDP)."""
    if rank() != 0:
        return
    if log_file is not None:
        append_line(log_file, line)
    print(line, flush=True)


class TrainingLogHandler:
    """Keeps the run's :class:`TrainingLog` on ``engine.state.training_log`` and writes its lines.

    Attach to the training engine after the validation handlers, so an epoch's line has that epoch's validation.

    Args:
        log_file: ``training_log.txt`` (appended to, so a resumed run continues it).
        patch_evaluator: the per-epoch evaluator on validation patches (its ``val_loss`` metric).
        case_evaluator: the case-level evaluator (its key metric and ``<name>_per_class``).
        class_names: names of the foreground classes, as in dataset.json.
        title: what the run is, for the first line (e.g. ``"nnUNetTrainer on Dataset004_Hippocampus 3d_fullres fold 0"``).
        val_loss_metric: name of the patch evaluator's loss metric.
        batch_size: the run's batch (the plans'); under DDP each rank trains on its share.
        pseudo_dice_metric: name of the patch evaluator's pseudo-Dice metric (logged with its moving average).
    """

    def __init__(self, log_file: str | os.PathLike | None, patch_evaluator=None, case_evaluator=None,
                 class_names: Sequence[str] = (), title: str = "training", val_loss_metric: str = "val_loss",
                 batch_size: int | None = None, pseudo_dice_metric: str = "val_pseudo_dice") -> None:
        self.batch_size = batch_size
        self.pseudo_dice_metric = pseudo_dice_metric
        self.log_file = None if log_file is None else Path(log_file)
        self.patch_evaluator = patch_evaluator
        self.case_evaluator = case_evaluator
        self.class_names = [str(c) for c in class_names]
        self.title = title
        self.val_loss_metric = val_loss_metric
        self._epoch_start = 0.0

    def attach(self, engine: Engine) -> None:
        if not isinstance(getattr(engine.state, "training_log", None), TrainingLog):
            engine.state.training_log = TrainingLog()
        engine.add_event_handler(Events.STARTED, self.started)
        engine.add_event_handler(Events.EPOCH_STARTED, self.epoch_started)
        engine.add_event_handler(Events.ITERATION_STARTED, self.iteration_started)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self.iteration_completed)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self.epoch_completed)
        engine.add_event_handler(Events.COMPLETED, self.completed)

    def started(self, engine: Engine) -> None:
        if engine.state.epoch == 0:  # a resumed run has said so already
            stream = getattr(engine.data_loader, "dataset", None)
            share = getattr(stream, "batch_size", None)
            size = self.batch_size or share
            batch = f", batch {size}" if size else ""
            if is_distributed():
                batch += f" ({share} on rank 0)" if share else ""
            log_line(self.log_file, f"training {self.title}: {engine.state.max_epochs} epochs x "
                                    f"{engine.state.epoch_length} iterations{batch}, device {engine.state.device}"
                     + (f", DDP over {dist.get_world_size()} processes" if is_distributed() else ""))

    def epoch_started(self, engine: Engine) -> None:
        resumed = getattr(engine.state, "epoch_progress", None)
        if not (isinstance(resumed, EpochProgress) and engine.state.iteration % engine.state.epoch_length):
            engine.state.epoch_progress = EpochProgress()  # a new epoch (not one resumed in its middle)
        self._epoch_start = time.perf_counter()
        reset_peak_memory(torch.device(engine.state.device))

    def iteration_started(self, engine: Engine) -> None:
        lr = float(engine.optimizer.param_groups[0]["lr"])
        engine.state.epoch_progress.lrs.append(lr)
        engine.state.training_log.iteration_lrs.append(lr)

    def iteration_completed(self, engine: Engine) -> None:
        progress: EpochProgress = engine.state.epoch_progress
        output = engine.state.output
        loss = output.get("loss") if isinstance(output, dict) else output
        if isinstance(loss, torch.Tensor):
            loss = loss.detach().float()  # summed on the device: one host sync per epoch, not per iteration
        if loss is not None:
            progress.loss_sum = progress.loss_sum + loss
            progress.iterations += 1
        progress.seconds += time.perf_counter() - self._epoch_start
        self._epoch_start = time.perf_counter()

    def _ran_this_epoch(self, evaluator, engine: Engine) -> bool:
        return evaluator is not None and evaluator.state.epoch == engine.state.epoch and evaluator.state.iteration > 0

    def epoch_completed(self, engine: Engine) -> None:
        log: TrainingLog = engine.state.training_log
        progress: EpochProgress = engine.state.epoch_progress
        train_loss = float(progress.loss_sum) / progress.iterations if progress.iterations else float("nan")
        train_loss = mean_over_ranks(train_loss)  # every rank calls it; rank 0 logs the run's mean
        val_loss = float("nan")
        if self._ran_this_epoch(self.patch_evaluator, engine):
            val_loss = float(self.patch_evaluator.state.metrics.get(self.val_loss_metric, float("nan")))
        lrs = progress.lrs
        lr_end = lrs[-1] if lrs else float(engine.optimizer.param_groups[0]["lr"])
        seconds = progress.seconds + time.perf_counter() - self._epoch_start
        log.record_epoch(train_loss, val_loss, lrs[0] if lrs else lr_end, lr_end, seconds,
                         memory_in_use_mb(torch.device(engine.state.device)))
        pseudo = self.patch_evaluator.state.metrics.get(f"{self.pseudo_dice_metric}_per_class") \
            if self._ran_this_epoch(self.patch_evaluator, engine) else None
        if pseudo is not None:
            log.record_pseudo_dice(pseudo)
        log_line(self.log_file, log.epoch_line(log.epochs_done - 1))
        evaluator = self.case_evaluator
        if self._ran_this_epoch(evaluator, engine):
            name = evaluator.state.key_metric_name
            per_class = evaluator.state.metrics.get(f"{name}_per_class")
            if per_class is None:
                per_class = [evaluator.state.metrics.get(name, float("nan"))]
            best_epoch = evaluator.state.best_metric_epoch
            best = evaluator.state.best_metric if best_epoch > 0 else None
            log.record_validation(engine.state.epoch - 1, per_class, best_epoch - 1 if best_epoch > 0 else None,
                                  None if best is None or math.isnan(best) else best)
            names = self.class_names if len(self.class_names) == len(per_class) else \
                [f"class{i + 1}" for i in range(len(per_class))]
            log_line(self.log_file, log.validation_line(names))

    def completed(self, engine: Engine) -> None:
        log: TrainingLog = engine.state.training_log
        best = "none" if log.best_metric is None else f"{log.best_metric:.4f}"
        log_line(self.log_file, f"training finished after {log.epochs_done} epochs; best epoch {log.best_epoch} "
                                f"(mean Dice {best})")
