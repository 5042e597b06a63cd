"""Calls the trainer's epoch hooks (timing, logging, checkpoint_latest, progress plot) and its end-of-training
hook (checkpoint_final)."""

from __future__ import annotations

from ignite.engine import Engine, Events

__all__ = ["EpochEndHandler"]


class EpochEndHandler:
    """Attaches ``trainer.on_epoch_start`` / ``on_epoch_end`` / ``on_train_end`` to the training engine.

    Args:
        trainer: the ``nnUNetTrainer`` whose hooks run.
    """

    def __init__(self, trainer) -> None:
        self.trainer = trainer

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_STARTED, self._epoch_started)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._epoch_completed)
        engine.add_event_handler(Events.COMPLETED, self._completed)

    def _epoch_started(self, engine: Engine) -> None:
        self.trainer.on_epoch_start()

    def _epoch_completed(self, engine: Engine) -> None:
        self.trainer.on_epoch_end()

    def _completed(self, engine: Engine) -> None:
        self.trainer.on_train_end()
