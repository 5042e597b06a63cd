"""Gradient-norm clipping of the training step (nnU-Net: norm 12, after unscaling the AMP gradients)."""

from __future__ import annotations

import torch
from ignite.engine import Engine
from monai.engines.utils import IterationEvents

__all__ = ["GradientClipping"]


class GradientClipping:
    """Clips the gradient norm after the backward pass, before the optimiser step.

    Attach to a MONAI ``SupervisedTrainer``: it runs on ``IterationEvents.BACKWARD_COMPLETED``, unscales the
    gradients first when the engine uses a grad scaler (AMP), so the norm is that of the true gradients.

    Args:
        max_norm: the largest total gradient norm (nnU-Net: 12); ``None`` or ``0`` disables clipping.
        norm_type: the p of the p-norm.
    """

    def __init__(self, max_norm: float | None = 12.0, norm_type: float = 2.0) -> None:
        self.max_norm = None if not max_norm else float(max_norm)
        self.norm_type = float(norm_type)

    def attach(self, engine: Engine) -> None:
        if self.max_norm is not None:
            engine.add_event_handler(IterationEvents.BACKWARD_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        scaler = getattr(engine, "scaler", None)
        if scaler is not None and getattr(engine, "amp", False):
            scaler.unscale_(engine.optimizer)
        torch.nn.utils.clip_grad_norm_(engine.network.parameters(), self.max_norm, norm_type=self.norm_type)
