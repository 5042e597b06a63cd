"""Bookends of the case-level validation run (the evaluator over whole validation cases): the trainer prepares the
network (eval mode, no deep supervision) when it starts and, when it completes, turns the collected counts into Dice
per class, logs them and saves checkpoint_best.pth on improvement."""

from __future__ import annotations

from ignite.engine import Engine, Events

__all__ = ["CaseValidationHandler"]


class CaseValidationHandler:
    """Attach to the case-level evaluator (``validate#handlers`` in train.yaml).

    Args:
        trainer: the ``nnUNetTrainer`` (``begin_case_validation`` / ``end_case_validation``).
    """

    def __init__(self, trainer) -> None:
        self.trainer = trainer

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self._started)
        engine.add_event_handler(Events.COMPLETED, self._completed)

    def _started(self, engine: Engine) -> None:
        self.trainer.begin_case_validation()

    def _completed(self, engine: Engine) -> None:
        self.trainer.end_case_validation()
