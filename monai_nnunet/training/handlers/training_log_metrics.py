"""The epoch's values of the run's record as the training engine's metrics, for experiment trackers.

MONAI's ``TensorBoardStatsHandler`` and ``MLFlowHandler`` write ``engine.state.metrics`` when an epoch completes.
The training engine has no metrics of its own: what an nnU-Net run reports per epoch (train and validation loss,
learning rate, pseudo Dice, the case Dice per class) is in its :class:`TrainingLog` on ``engine.state.training_log``
(kept by :class:`~monai_nnunet.training.handlers.TrainingLogHandler`). This handler copies the epoch's entries there,
so a tracker attached after it records the values ``training_log.txt`` shows.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from ignite.engine import Engine, Events

from monai_nnunet.training.logging.training_log import TrainingLog

__all__ = ["TrainingLogMetrics", "metric_name"]


def metric_name(name: str) -> str:
    """A class name as part of a metric name: characters other than letters, digits, ``_``, ``-`` and ``.`` become
    ``_`` (TensorBoard tags and MLflow keys take those).

    Args:
        name: e.g. a label name from dataset.json.

    Returns:
        The cleaned name.
    """
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", str(name))


class TrainingLogMetrics:
    """Sets the epoch's values of ``engine.state.training_log`` as ``engine.state.metrics`` when an epoch completes.

    Attach to the training engine after ``TrainingLogHandler`` and before the trackers that read the metrics. Each
    epoch's metrics replace the previous epoch's, so a value the epoch has not (the case Dice of an epoch without
    case-level validation, a NaN validation loss) is not repeated from an earlier epoch. The names:

    - ``train_loss``, ``val_loss``, ``lr`` (at the epoch's first iteration), ``lr_end``, ``epoch_seconds``;
    - ``pseudo_dice/<class>`` and ``ema_pseudo_dice`` (the validation patches' pseudo Dice, its moving average);
    - ``dice/<class>`` and ``mean_dice`` in epochs that validated whole cases.

    Args:
        class_names: the foreground classes' names (dataset.json's labels); ``class1``, ``class2``, ... when they do
            not match the number of values.

    Raises:
        RuntimeError: at an epoch's end, when the engine has no training log (no ``TrainingLogHandler`` attached
            before this handler).
    """

    def __init__(self, class_names: Sequence[str] = ()) -> None:
        self.class_names = [str(c) for c in class_names]
        self._names: list[str] = []

    def attach(self, engine: Engine) -> None:
        """Registers the handler at ``EPOCH_COMPLETED`` of ``engine``."""
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def _class_names(self, count: int) -> list[str]:
        names = self.class_names if len(self.class_names) == count else [f"class{i + 1}" for i in range(count)]
        return [metric_name(n) for n in names]

    def epoch_values(self, log: TrainingLog) -> dict[str, float]:
        """The last recorded epoch's values of ``log``, by metric name, NaN values left out.

        Args:
            log: the run's record.

        Returns:
            ``{name: value}``; empty when no epoch has been recorded.
        """
        epoch = log.epochs_done - 1
        if epoch < 0:
            return {}
        values = {"train_loss": log.train_losses[epoch], "val_loss": log.val_losses[epoch], "lr": log.lrs[epoch],
                  "lr_end": log.lrs_end[epoch], "epoch_seconds": log.epoch_seconds[epoch]}
        if epoch < len(log.pseudo_dice):
            per_class = log.pseudo_dice[epoch]
            values.update({f"pseudo_dice/{n}": v for n, v in zip(self._class_names(len(per_class)), per_class)})
            values["ema_pseudo_dice"] = log.ema_pseudo_dice[epoch]
        if log.dice_epochs and log.dice_epochs[-1] == epoch:
            per_class = log.dice_per_class[-1]
            values.update({f"dice/{n}": v for n, v in zip(self._class_names(len(per_class)), per_class)})
            values["mean_dice"] = log.mean_dice[-1]
        return {k: float(v) for k, v in values.items() if not math.isnan(float(v))}

    def __call__(self, engine: Engine) -> None:
        log = getattr(engine.state, "training_log", None)
        if not isinstance(log, TrainingLog):
            raise RuntimeError("TrainingLogMetrics needs the run's training log on engine.state.training_log: attach "
                               "it after TrainingLogHandler (append it to train#handlers)")
        for name in self._names:
            engine.state.metrics.pop(name, None)
        values = self.epoch_values(log)
        engine.state.metrics.update(values)
        self._names = list(values)
