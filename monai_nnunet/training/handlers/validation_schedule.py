"""Validation every N epochs and after the last one (nnU-Net validates the final weights whatever N is)."""

from __future__ import annotations

from ignite.engine import Engine, Events
from monai.handlers import ValidationHandler

__all__ = ["IntervalValidationHandler"]


class IntervalValidationHandler(ValidationHandler):
    """MONAI's ``ValidationHandler`` at epoch level that also runs after the last epoch.

    Args:
        interval: run the validator every ``interval`` epochs.
        validator: the evaluator to run (may be set later with ``set_validator``).
        at_last_epoch: also run after the last epoch when it is not a multiple of ``interval``.
    """

    def __init__(self, interval: int, validator=None, at_last_epoch: bool = True) -> None:
        super().__init__(interval=interval, validator=validator, epoch_level=True)
        self.at_last_epoch = bool(at_last_epoch)

    def attach(self, engine: Engine) -> None:
        def due(engine: Engine, epoch: int) -> bool:
            return epoch % self.interval == 0 or (self.at_last_epoch and epoch == engine.state.max_epochs)

        engine.add_event_handler(Events.EPOCH_COMPLETED(event_filter=due), self)
