"""Checkpoint files: atomic writing, reading with clear errors, and which file a resumed run starts from."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from monai_nnunet.utils.files import atomic_path

__all__ = ["CHECKPOINT_KEYS", "CheckpointError", "find_resume_checkpoint", "load_checkpoint", "save_checkpoint"]

#: The documented keys, present in every checkpoint this package writes.
CHECKPOINT_KEYS = ("network_weights", "optimizer_state", "grad_scaler_state", "epoch", "current_epoch", "init")
#: A resumed run starts from the first of these that exists.
RESUME_ORDER = ("checkpoint_latest.pth", "checkpoint_final.pth", "checkpoint_best.pth")


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable or lacks keys."""


def save_checkpoint(state: dict, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file, then rename: a crash never leaves a truncated checkpoint."""
    missing = [k for k in CHECKPOINT_KEYS if k not in state]
    if missing:
        raise CheckpointError(f"refusing to write {path}: the checkpoint lacks {missing}")
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Reads a checkpoint written by this package (tensors and plain Python values only).

    Raises:
        CheckpointError: when the file is missing, unreadable, or lacks the documented keys.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:
        raise CheckpointError(f"{path} could not be read as a checkpoint ({type(e).__name__}: {e})") from e
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} does not hold a checkpoint dict")
    missing = [k for k in CHECKPOINT_KEYS if k not in state]
    if missing:
        raise CheckpointError(f"{path} lacks the checkpoint key(s) {missing}")
    return state


def find_resume_checkpoint(fold_folder: str | os.PathLike) -> Path | None:
    """The checkpoint ``-c`` resumes from: latest, else final, else best; None when there is none."""
    for name in RESUME_ORDER:
        candidate = Path(fold_folder) / name
        if candidate.is_file():
            return candidate
    return None
