"""Handlers the DDP tests add to a run's bundle (an overlay file appends them to ``train#handlers``)."""

from __future__ import annotations

from pathlib import Path

import torch
from ignite.engine import Engine, Events

from monai_nnunet.networks.config import unwrapped_state_dict
from monai_nnunet.training.distributed import rank


class SaveRankWeights:
    """At the end of training every rank saves its weights to ``directory/rank{R}.pt``."""

    def __init__(self, directory: str) -> None:
        self.directory = Path(directory)

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        torch.save(unwrapped_state_dict(engine.network.state_dict()), self.directory / f"rank{rank()}.pt")


class FailOnRank:
    """Raises on one rank at one iteration (a rank that fails mid-run)."""

    def __init__(self, rank: int, iteration: int) -> None:
        self.rank, self.iteration = int(rank), int(iteration)

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.ITERATION_STARTED, self)

    def __call__(self, engine: Engine) -> None:
        if rank() == self.rank and engine.state.iteration == self.iteration:
            raise RuntimeError(f"injected failure on rank {self.rank} at iteration {self.iteration}")
