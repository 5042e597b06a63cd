"""``-pretrained_weights``: every weight but the segmentation heads, loaded when a fresh training starts."""

from __future__ import annotations

import os

from ignite.engine import Engine, Events

from monai_nnunet.networks.config import unwrap_network
from monai_nnunet.networks.pretrained import load_pretrained_weights
from monai_nnunet.training.handlers.training_log import log_line

__all__ = ["PretrainedWeightsLoader"]


class PretrainedWeightsLoader:
    """Loads a checkpoint's weights (ours or nnU-Net v2's, all but the segmentation heads) into the training
    engine's network on ``Events.STARTED``, and logs which layers were loaded and which were not. A resumed run
    (epoch > 0) keeps its own weights.

    Args:
        checkpoint: the checkpoint file; ``None`` does nothing.
        log_file: ``training_log.txt``.
    """

    def __init__(self, checkpoint: str | os.PathLike | None, log_file: str | os.PathLike | None = None) -> None:
        self.checkpoint = checkpoint
        self.log_file = log_file

    def attach(self, engine: Engine) -> None:
        if self.checkpoint is not None:
            engine.add_event_handler(Events.STARTED, self)

    def __call__(self, engine: Engine) -> None:
        if engine.state.epoch > 0:
            return
        own = list(unwrap_network(engine.network).state_dict())
        loaded = set(load_pretrained_weights(engine.network, self.checkpoint))
        skipped = [k for k in own if k not in loaded]
        log_line(self.log_file, f"pretrained weights {self.checkpoint}: loaded {len(loaded)} of {len(own)} tensors; "
                                f"not loaded (trained from scratch): {', '.join(skipped) if skipped else 'none'}")
