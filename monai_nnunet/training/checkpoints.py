"""The checkpoints of a training run: their documented keys, and which file a resumed run starts from.

Reading and writing is :mod:`monai_nnunet.utils.checkpoints` (``weights_only=True``, atomic writes); the handlers
that write and restore them are :class:`~monai_nnunet.training.handlers.NnUNetCheckpointSaver` and
:class:`~monai_nnunet.training.handlers.NnUNetCheckpointLoader`.
"""

from __future__ import annotations

import os
from pathlib import Path

from monai_nnunet.utils.checkpoints import CheckpointError, load_checkpoint, save_checkpoint

__all__ = ["CHECKPOINT_KEYS", "CheckpointError", "RESUME_ORDER", "find_resume_checkpoint", "load_checkpoint",
           "resume_iteration", "save_checkpoint"]

#: The documented keys, present in every checkpoint this package writes.
CHECKPOINT_KEYS = ("network_weights", "optimizer_state", "grad_scaler_state", "epoch", "current_epoch", "init")
#: A resumed run starts from the first of these that exists.
RESUME_ORDER = ("checkpoint_latest.pth", "checkpoint_final.pth", "checkpoint_best.pth")


def find_resume_checkpoint(fold_folder: str | os.PathLike) -> Path | None:
    """The checkpoint ``-c`` resumes from: latest, else final, else best; None when there is none."""
    for name in RESUME_ORDER:
        candidate = Path(fold_folder) / name
        if candidate.is_file():
            return candidate
    return None


def resume_iteration(fold_folder: str | os.PathLike) -> int:
    """The iteration a resumed run starts after (0 when there is nothing to resume): the run's bundle adds it to
    the data streams' seed, so a resumed run does not replay the batches its first part already saw."""
    path = find_resume_checkpoint(fold_folder)
    if path is None:
        return 0
    state = load_checkpoint(path, required_keys=("epoch",))
    return int(state.get("iteration", 0))
