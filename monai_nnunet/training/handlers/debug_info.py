"""``debug.json``: what the run built (network class and parameter count, loss, optimiser, plans configuration,
library versions, device), written when training starts."""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping
from pathlib import Path

import monai
import numpy as np
import torch
from ignite.engine import Engine, Events

from monai_nnunet import __version__
from monai_nnunet.networks.config import network_config, unwrap_network
from monai_nnunet.training.distributed import rank
from monai_nnunet.utils.files import save_json, to_jsonable

__all__ = ["DebugInfoWriter", "library_versions"]


def library_versions() -> dict:
    """Versions of Python, torch, MONAI, Ignite, NumPy and this package (and the GPU, if any)."""
    import ignite

    versions = {"python": platform.python_version(), "torch": torch.__version__, "monai": monai.__version__,
                "pytorch-ignite": ignite.__version__, "numpy": np.__version__, "monai_nnunet": __version__}
    if torch.cuda.is_available():
        versions["cuda"] = torch.version.cuda
        versions["gpu"] = torch.cuda.get_device_name(0)
    return versions


class DebugInfoWriter:
    """Writes ``output_file`` on ``Events.STARTED`` (rank 0).

    Args:
        output_file: ``debug.json``.
        info: further entries (the run's settings, the plans configuration, ...).
    """

    def __init__(self, output_file: str | os.PathLike, info: Mapping | None = None) -> None:
        self.output_file = Path(output_file)
        self.info = dict(info or {})

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self)

    def __call__(self, engine: Engine) -> None:
        if rank() != 0:
            return
        network = unwrap_network(engine.network)
        loss = engine.loss_function
        info = {
            "network_class": f"{type(network).__module__}.{type(network).__qualname__}",
            "parameter_count": int(sum(p.numel() for p in network.parameters())),
            "network_def": network_config(network),
            "loss": f"{type(loss).__module__}.{type(loss).__qualname__}",
            "optimizer": f"{type(engine.optimizer).__module__}.{type(engine.optimizer).__qualname__}",
            "device": str(engine.state.device),
            "amp": bool(getattr(engine, "amp", False)),
            "versions": library_versions(),
            **self.info,
        }
        save_json(to_jsonable(info), self.output_file)
