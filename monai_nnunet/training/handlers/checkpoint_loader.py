"""Resuming a run (``-c``): the training state restored from the fold's latest checkpoint when training starts."""

from __future__ import annotations

import os
from pathlib import Path

from ignite.engine import Engine, Events

from monai_nnunet.networks.config import unwrap_network
from monai_nnunet.training.checkpoints import find_resume_checkpoint
from monai_nnunet.training.handlers.training_log import log_line
from monai_nnunet.training.logging.training_log import EpochProgress, TrainingLog
from monai_nnunet.utils.checkpoints import CheckpointError, load_checkpoint

__all__ = ["NnUNetCheckpointLoader"]


class NnUNetCheckpointLoader:
    """Restores network, optimiser, grad scaler, LR schedule, epoch and iteration counters (also in the middle of an
    epoch, after a preemption), the run's record and the best metric from ``checkpoint_latest.pth`` (else final, else best) in ``directory``.

    In the mould of MONAI's ``CheckpointLoader``: it runs on ``Events.STARTED`` and sets the engine's counters with
    ``engine.load_state_dict``, so Ignite continues from the next epoch. Attach it first.

    Args:
        directory: the fold folder.
        enabled: resume (``-c``); ``False`` does nothing.
        lr_scheduler: its position is restored.
        case_evaluator: its ``best_metric`` / ``best_metric_epoch`` are restored.
        log_file: where to say what was resumed.
    """

    def __init__(self, directory: str | os.PathLike, enabled: bool = True, lr_scheduler=None, case_evaluator=None,
                 log_file: str | os.PathLike | None = None) -> None:
        self.directory = Path(directory)
        self.enabled = bool(enabled)
        self.lr_scheduler = lr_scheduler
        self.case_evaluator = case_evaluator
        self.log_file = log_file

    def attach(self, engine: Engine) -> None:
        if self.enabled:
            engine.add_event_handler(Events.STARTED, self)

    def __call__(self, engine: Engine) -> None:
        path = find_resume_checkpoint(self.directory)
        if path is None:
            log_line(self.log_file, f"-c: no checkpoint in {self.directory}, starting a new training")
            return
        state = load_checkpoint(path, map_location=engine.state.device)
        network = unwrap_network(engine.network)
        try:
            network.load_state_dict(state["network_weights"])
        except RuntimeError as e:
            raise CheckpointError(f"{path}: the network weights do not fit this run's network_def: "
                                  f"{str(e).splitlines()[0]}") from None
        if state.get("optimizer_state") is not None:
            engine.optimizer.load_state_dict(state["optimizer_state"])
        if state.get("grad_scaler_state") and getattr(engine, "scaler", None) is not None:
            engine.scaler.load_state_dict(state["grad_scaler_state"])
        if state.get("lr_scheduler_state") is not None and self.lr_scheduler is not None:
            self.lr_scheduler.load_state_dict(state["lr_scheduler_state"])
        if state.get("logging"):
            engine.state.training_log = TrainingLog.from_dict(state["logging"])
        epochs = int(state["epoch"])
        iteration = int(state.get("iteration", epochs * engine.state.epoch_length))
        engine.load_state_dict({"iteration": iteration, "epoch_length": engine.state.epoch_length,
                                "max_epochs": max(engine.state.max_epochs, -(-iteration // engine.state.epoch_length))})
        if state.get("epoch_progress"):  # stopped in the middle of an epoch: its log line continues
            engine.state.epoch_progress = EpochProgress.from_dict(state["epoch_progress"])
        log = getattr(engine.state, "training_log", None)
        if self.case_evaluator is not None and state.get("best_metric") is not None and log is not None \
                and log.best_epoch is not None:
            self.case_evaluator.state.best_metric = float(state["best_metric"])
            self.case_evaluator.state.best_metric_epoch = int(log.best_epoch) + 1
        within = iteration - epochs * engine.state.epoch_length
        log_line(self.log_file, f"resuming from {path.name} after epoch {epochs}"
                 + (f" and {within} iteration(s) of epoch {epochs}" if within else ""))
