"""``checkpoint_latest.pth`` after every epoch, ``checkpoint_best.pth`` when the key metric improves and
``checkpoint_final.pth`` at the end, with the documented keys, written atomically by rank 0."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path

from ignite.engine import Engine, Events

from monai_nnunet.networks.config import network_config, unwrap_network
from monai_nnunet.training.checkpoints import CHECKPOINT_KEYS
from monai_nnunet.training.distributed import rank
from monai_nnunet.utils.checkpoints import save_checkpoint
from monai_nnunet.utils.files import to_jsonable

__all__ = ["NnUNetCheckpointSaver", "training_checkpoint"]


def training_checkpoint(engine: Engine, lr_scheduler=None, case_evaluator=None, record: Mapping | None = None) -> dict:
    """The checkpoint dict of a training engine's current state.

    Keys: the documented ``network_weights, optimizer_state, grad_scaler_state, epoch, current_epoch, init`` (both
    epoch fields = completed epochs), ``iteration`` (and ``epoch_progress`` when written in the middle of an epoch), ``lr_scheduler_state``, ``logging`` (the run's record),
    ``best_metric``, ``network_def`` (the network's class and arguments, for prediction) and ``record``'s plain-data entries
    (``trainer_name``, ``plans``, ``configuration``, ``dataset_json``, ``inference_allowed_mirroring_axes``, ...).
    """
    network = unwrap_network(engine.network)
    log = getattr(engine.state, "training_log", None)
    best = None
    if case_evaluator is not None and case_evaluator.state.best_metric_epoch > 0:
        value = float(case_evaluator.state.best_metric)
        best = None if math.isnan(value) else value
    record = dict(record or {})
    completed = int(engine.state.iteration) // int(engine.state.epoch_length)  # mid-epoch (preemption): the epochs done
    progress = getattr(engine.state, "epoch_progress", None)
    state = {
        "network_weights": network.state_dict(),
        "optimizer_state": engine.optimizer.state_dict(),
        "grad_scaler_state": engine.scaler.state_dict() if getattr(engine, "scaler", None) is not None else None,
        "epoch": completed,
        "current_epoch": completed,
        "iteration": int(engine.state.iteration),
        "epoch_progress": progress.to_dict() if progress is not None and engine.state.iteration % engine.state.epoch_length
        else None,
        "init": record.pop("init", {}),
        "lr_scheduler_state": lr_scheduler.state_dict() if lr_scheduler is not None else None,
        "logging": log.to_dict() if log is not None else None,
        "best_metric": best,
        "network_def": network_config(network),
    }
    state.update(record)
    return state


class NnUNetCheckpointSaver:
    """Checkpoints of the training engine, in the mould of MONAI's ``CheckpointSaver`` with nnU-Net's file names.

    Attach to the training engine after the validation and log handlers, and before the
    :class:`~monai_nnunet.training.handlers.PreemptionHandler`: when a stop was requested, ``checkpoint_latest.pth``
    is also written at the end of the iteration in progress.

    Args:
        save_dir: the fold folder.
        lr_scheduler: saved as ``lr_scheduler_state``.
        case_evaluator: the evaluator whose key metric decides ``checkpoint_best.pth`` (MONAI tracks its best in
            ``state.best_metric`` / ``state.best_metric_epoch``).
        record: what else a checkpoint holds for resuming and prediction (see :func:`training_checkpoint`); stored
            as plain data.
        save_latest, save_best, save_final: which files to write.
        enabled: ``False`` writes nothing (``--disable_checkpointing``).
    """

    def __init__(self, save_dir: str | os.PathLike, lr_scheduler=None, case_evaluator=None,
                 record: Mapping | None = None, save_latest: bool = True, save_best: bool = True,
                 save_final: bool = True, enabled: bool = True) -> None:
        self.save_dir = Path(save_dir)
        self.lr_scheduler = lr_scheduler
        self.case_evaluator = case_evaluator
        self.record = to_jsonable(dict(record or {}))
        self.save_latest, self.save_best, self.save_final = bool(save_latest), bool(save_best), bool(save_final)
        self.enabled = bool(enabled)

    def attach(self, engine: Engine) -> None:
        if not self.enabled:
            return
        engine.add_event_handler(Events.EPOCH_COMPLETED, self.epoch_completed)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self.iteration_completed)
        if self.save_final:
            engine.add_event_handler(Events.COMPLETED, self.completed)

    def save(self, engine: Engine, name: str) -> Path | None:
        """Writes ``name`` into ``save_dir`` (rank 0 only); returns its path."""
        if rank() != 0:
            return None
        state = training_checkpoint(engine, self.lr_scheduler, self.case_evaluator, self.record)
        return save_checkpoint(state, self.save_dir / name, required_keys=CHECKPOINT_KEYS)

    def _improved_this_epoch(self, engine: Engine) -> bool:
        evaluator = self.case_evaluator
        if evaluator is None or evaluator.state.best_metric_epoch != engine.state.epoch:
            return False
        return not math.isnan(float(evaluator.state.best_metric))

    def epoch_completed(self, engine: Engine) -> None:
        if self.save_best and self._improved_this_epoch(engine):
            self.save(engine, "checkpoint_best.pth")
        if self.save_latest:
            self.save(engine, "checkpoint_latest.pth")

    def iteration_completed(self, engine: Engine) -> None:
        """``checkpoint_latest.pth`` at this iteration when a stop was requested (``engine.state.stop_requested``,
        set by :class:`~monai_nnunet.training.handlers.PreemptionHandler`)."""
        if getattr(engine.state, "stop_requested", None) and self.save_latest:
            self.save(engine, "checkpoint_latest.pth")

    def completed(self, engine: Engine) -> None:
        self.save(engine, "checkpoint_final.pth")
