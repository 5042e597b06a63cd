"""Checkpoint files: the one reader and the one writer.

A checkpoint may come from elsewhere (a colleague, the internet), so it is read as data only: ``torch.load`` with
``weights_only=True``, allowing just the NumPy scalar types that nnU-Net v2's own checkpoints hold in their logs.
A file that needs anything else is refused with a one-line message naming it; nothing in it is ever executed.
Writing goes through a temporary file and a rename, so a crash never leaves a truncated checkpoint.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from monai_nnunet.utils.files import atomic_path

__all__ = ["CheckpointError", "load_checkpoint", "save_checkpoint"]


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable, not a checkpoint, or would need code to load."""


def _numpy_safe_globals() -> list:
    """The NumPy types nnU-Net's checkpoints pickle (scalars in their logs): data, not code."""
    types: list = [np.dtype, np.ndarray]
    core = getattr(np, "_core", None) or getattr(np, "core", None)
    multiarray = getattr(core, "multiarray", None)
    for name in ("scalar", "_reconstruct"):
        if hasattr(multiarray, name):
            types.append(getattr(multiarray, name))
    for name in ("float64", "float32", "float16", "int64", "int32", "int16", "int8", "uint8", "bool_"):
        scalar = getattr(np, name)
        types.append(scalar)
        types.append(type(np.dtype(scalar)))
    return types


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu",
                    required_keys: Sequence[str] = ("network_weights",)) -> dict[str, Any]:
    """Reads a checkpoint as data.

    Args:
        path: the ``.pth`` file (ours or nnU-Net v2's).
        map_location: where tensors go.
        required_keys: keys the checkpoint must have.

    Returns:
        The checkpoint dict.

    Raises:
        CheckpointError: missing, unreadable, truncated or foreign file, a file that needs code to load, or missing
            keys; the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        detail = str(e).splitlines()[0] if str(e) else type(e).__name__
        if "weights_only" in str(e) or "global" in str(e).lower():
            raise CheckpointError(f"checkpoint {path} refused: it holds objects other than tensors and plain values, "
                                  f"which could run code when loaded ({_first_global(str(e))})") from None
        raise CheckpointError(f"checkpoint {path} is not a PyTorch checkpoint ({detail})") from None
    except Exception as e:  # noqa: BLE001 - random or truncated bytes fail in many ways inside the unpickler
        detail = str(e).splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"checkpoint {path} could not be read: it is truncated or not a PyTorch checkpoint "
                              f"({type(e).__name__}: {detail[:200]})") from None
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{path} does not hold a checkpoint dict (found {type(state).__name__})")
    missing = [k for k in required_keys if k not in state]
    if missing:
        raise CheckpointError(f"{path} is not a training checkpoint: it lacks {missing}")
    return dict(state)


def _first_global(message: str) -> str:
    for line in message.splitlines():
        if "GLOBAL" in line or "Unsupported global" in line:
            return line.strip()[:200]
    return message.splitlines()[0][:200] if message else "unsupported content"


def save_checkpoint(state: Mapping[str, Any], path: str | os.PathLike, required_keys: Sequence[str] = ()) -> Path:
    """``torch.save`` to a temporary file next to ``path``, then rename.

    Raises:
        CheckpointError: when ``state`` lacks one of ``required_keys``.
    """
    missing = [k for k in required_keys if k not in state]
    if missing:
        raise CheckpointError(f"refusing to write {path}: the checkpoint lacks {missing}")
    with atomic_path(path) as tmp:
        torch.save(dict(state), tmp)
    return Path(path)
