"""A new draw of validation patches every epoch: the per-epoch evaluator's patch stream is reseeded with the epoch
(an evaluator restarts its loader at every run, so without this every epoch would see the same patches)."""

from __future__ import annotations

from ignite.engine import Engine, Events

__all__ = ["EpochSeededStream"]


class EpochSeededStream:
    """Sets ``stream.epoch`` to the evaluator's epoch when a run starts, before its loader draws.

    Args:
        stream: a ``PatchBatchStream`` (anything with an ``epoch`` attribute that seeds its passes).
    """

    def __init__(self, stream) -> None:
        self.stream = stream

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self)

    def __call__(self, engine: Engine) -> None:
        self.stream.epoch = int(engine.state.epoch)
