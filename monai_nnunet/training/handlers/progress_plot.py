"""``progress.png`` after every epoch."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ignite.engine import Engine, Events

from monai_nnunet.training.distributed import rank
from monai_nnunet.training.logging.progress_plot import plot_progress

__all__ = ["ProgressPlotHandler"]


class ProgressPlotHandler:
    """Draws the run's record (``engine.state.training_log``) into ``output_file`` at every epoch end (rank 0).

    Attach after :class:`~monai_nnunet.training.handlers.TrainingLogHandler`.

    Args:
        output_file: the figure (``progress.png``), replaced atomically.
        class_names: names of the foreground classes for the Dice curves.
    """

    def __init__(self, output_file: str | os.PathLike, class_names: Sequence[str] = ()) -> None:
        self.output_file = Path(output_file)
        self.class_names = [str(c) for c in class_names]

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        if rank() == 0:
            plot_progress(engine.state.training_log, self.output_file, self.class_names,
                          iterations_per_epoch=engine.state.epoch_length)
