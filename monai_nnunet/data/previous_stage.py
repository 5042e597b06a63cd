"""Segmentations of a cascade's previous stage, in nnU-Net's ``predicted_next_stage`` format.

The final validation of a stage with a ``next_stage`` (``3d_lowres``) writes, for every validation case,
``<results>/TRAINER__PLANS__3d_lowres/predicted_next_stage/3d_cascade_fullres/CASE.npz`` holding ``seg``: the label
map ``(Z, Y, X)`` (uint8, uint16 above 255 labels) in the next stage's preprocessed geometry (its cache's shape, the
same crop box). The cascade stage reads them beside its own cache, as nnU-Net's ``nnUNetDatasetNumpy`` does
(``CASE.npy`` is read too).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from monai_nnunet.utils.files import atomic_path

__all__ = ["PREDICTED_NEXT_STAGE", "load_previous_stage_seg", "missing_previous_stage_cases", "save_next_stage_seg"]

#: the folder, beside a stage's fold folders, that holds its predictions for the next stage
PREDICTED_NEXT_STAGE = "predicted_next_stage"


def _files(folder: Path, case_id: str) -> tuple[Path, Path]:
    return folder / f"{case_id}.npz", folder / f"{case_id}.npy"


def save_next_stage_seg(seg: np.ndarray, folder: str | os.PathLike, case_id: str) -> Path:
    """Writes ``folder/CASE.npz`` (``seg``: ``(Z, Y, X)``, uint8 or uint16) atomically; returns the file."""
    seg = np.asarray(seg)
    dtype = np.uint8 if seg.size == 0 or int(seg.max()) < 255 else np.uint16
    target = Path(folder) / f"{case_id}.npz"
    with atomic_path(target) as tmp:
        np.savez_compressed(tmp, seg=np.ascontiguousarray(seg, dtype=dtype))
    return target


def load_previous_stage_seg(folder: str | os.PathLike, case_id: str,
                            expected_shape: Sequence[int] | None = None) -> np.ndarray:
    """The previous stage's segmentation of one case as ``(1, Z, Y, X)`` int16.

    Args:
        folder: the ``predicted_next_stage/<configuration>`` folder.
        case_id: the case.
        expected_shape: the case's spatial shape in this stage's cache (checked when given).

    Raises:
        FileNotFoundError: when the case has no file there.
        ValueError: when the file is not a segmentation of the expected shape.
    """
    npz, npy = _files(Path(folder), case_id)
    if npz.is_file():
        with np.load(npz, allow_pickle=False) as content:
            if "seg" not in content:
                raise ValueError(f"{npz} holds no 'seg' array (found {list(content.keys())})")
            seg = content["seg"]
    elif npy.is_file():
        seg = np.load(npy, allow_pickle=False)
    else:
        raise FileNotFoundError(f"{npz} does not exist: the previous stage has not predicted case {case_id}")
    seg = np.asarray(seg)
    if seg.ndim == (len(expected_shape) if expected_shape is not None else 3):
        seg = seg[None]
    if expected_shape is not None and tuple(seg.shape[1:]) != tuple(int(s) for s in expected_shape):
        raise ValueError(f"{npz}: segmentation of shape {tuple(seg.shape[1:])}, but case {case_id} has shape "
                         f"{tuple(expected_shape)} in this stage's cache (predicted for other plans?)")
    return seg.astype(np.int16, copy=False)


def missing_previous_stage_cases(folder: str | os.PathLike, case_ids: Sequence[str]) -> list[str]:
    """The cases of ``case_ids`` without a file in ``folder``, in order."""
    folder = Path(folder)
    return [c for c in case_ids if not any(f.is_file() for f in _files(folder, c))]
