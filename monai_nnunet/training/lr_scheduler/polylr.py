"""nnU-Net's polynomial learning-rate decay, in closed form."""

from __future__ import annotations

import torch
from torch.optim.lr_scheduler import LRScheduler

__all__ = ["PolyLRScheduler"]


class PolyLRScheduler(LRScheduler):
    """``lr = initial_lr * (1 - step / max_steps) ** exponent``, computed in closed form at every step.

    Step it after every iteration (``max_steps = epochs * iterations_per_epoch``, the default here) or after
    every epoch (``max_steps = epochs``: nnU-Net v2's own schedule).

    Args:
        optimizer: the optimiser whose groups get the rate.
        initial_lr: rate at step 0.
        max_steps: step at which the rate reaches 0.
        exponent: decay exponent (0.9).
        last_epoch: index of the last step taken (-1: none), as PyTorch schedulers count.

    Raises:
        ValueError: for a non-positive ``initial_lr`` or ``max_steps``.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, initial_lr: float, max_steps: int, exponent: float = 0.9,
                 last_epoch: int = -1):
        if initial_lr <= 0 or max_steps < 1:
            raise ValueError(f"initial_lr and max_steps must be positive, got {initial_lr} and {max_steps}")
        self.initial_lr = float(initial_lr)
        self.max_steps = int(max_steps)
        self.exponent = float(exponent)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, step: int) -> float:
        """The rate used at step ``step`` (0-based)."""
        return self.initial_lr * (1 - min(step, self.max_steps) / self.max_steps) ** self.exponent

    def get_lr(self) -> list[float]:
        return [self.lr_at(max(self.last_epoch, 0)) for _ in self.optimizer.param_groups]

    def load_state_dict(self, state_dict: dict) -> None:
        """Restores the position (the steps taken) only: the schedule is the run's own, so a run resumed with more
        epochs decays over the new length, as nnU-Net's; the optimizer gets the rate of that position."""
        own = {"initial_lr": self.initial_lr, "max_steps": self.max_steps, "exponent": self.exponent}
        super().load_state_dict(state_dict)
        self.__dict__.update(own)
        rate = self.lr_at(max(self.last_epoch, 0))
        for group in self.optimizer.param_groups:
            group["lr"] = rate
        self._last_lr = [rate for _ in self.optimizer.param_groups]
