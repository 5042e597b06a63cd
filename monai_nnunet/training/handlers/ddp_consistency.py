"""Under DDP: checks after every epoch that all ranks hold the same weights (DDP keeps them equal by averaging the
gradients; ranks that train apart, e.g. a network left unwrapped by an edited bundle, diverge at once)."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from ignite.engine import Engine, Events

from monai_nnunet.networks.config import unwrap_network
from monai_nnunet.training.distributed import gather_objects, is_distributed, world_size
from monai_nnunet.training.handlers.training_log import log_line

__all__ = ["RanksDivergedError", "WeightsConsistencyCheck", "weights_fingerprint"]


class RanksDivergedError(RuntimeError):
    """The ranks of a DDP run hold different weights."""


def weights_fingerprint(network: torch.nn.Module) -> list[float]:
    """Two numbers per parameter tensor (its sum and its sum of squares, in float64), read from the device at once:
    equal weights give equal fingerprints."""
    with torch.no_grad():
        sums = [torch.stack([p.double().sum(), p.double().square().sum()])
                for p in unwrap_network(network).parameters()]
    return torch.cat(sums).cpu().tolist()


class WeightsConsistencyCheck:
    """Compares the weights of all ranks after each epoch; does nothing in a single process.

    Args:
        log_file: ``training_log.txt``: at the end of training it says the ranks agreed.
        rtol: relative tolerance of the comparison.

    Raises (in the handler):
        RanksDivergedError: when the ranks' weights differ, naming the ranks.
    """

    def __init__(self, log_file: str | os.PathLike | None = None, rtol: float = 1e-6) -> None:
        self.log_file = None if log_file is None else Path(log_file)
        self.rtol = float(rtol)
        self.epochs_checked = 0

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.EPOCH_COMPLETED, self.check)
        engine.add_event_handler(Events.COMPLETED, self.completed)

    def check(self, engine: Engine) -> None:
        if not is_distributed():
            return
        fingerprints = gather_objects(weights_fingerprint(engine.network))
        reference = torch.tensor(fingerprints[0], dtype=torch.float64)
        differing = [r for r, f in enumerate(fingerprints)
                     if not torch.allclose(torch.tensor(f, dtype=torch.float64), reference, rtol=self.rtol, atol=1e-9)]
        if differing:
            raise RanksDivergedError(f"after epoch {engine.state.epoch - 1} the weights of rank(s) "
                                     f"{', '.join(map(str, differing))} differ from rank 0's: the ranks are not "
                                     f"training one run (is the network wrapped in DistributedDataParallel?)")
        self.epochs_checked += 1

    def completed(self, engine: Engine) -> None:
        if is_distributed() and self.epochs_checked:
            log_line(self.log_file, f"DDP: the weights of all {world_size()} ranks agreed after each of "
                                    f"{self.epochs_checked} epoch(s)")
