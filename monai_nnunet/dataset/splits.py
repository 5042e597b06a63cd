"""Cross-validation splits: nnU-Net's 5-fold split (sorted case ids, KFold(5, shuffle=True, random_state=12345)).

The split is computed exactly as scikit-learn's ``KFold`` computes it (same permutation from
``numpy.random.RandomState(12345)``, same fold sizes), without depending on scikit-learn. An existing
``splits_final.json`` is never overwritten: a hand-written split is used as it is.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Sequence

import numpy as np

from monai_nnunet.utils.files import load_json, save_json

__all__ = ["SplitsError", "ensure_splits", "generate_crossval_split", "load_splits"]


class SplitsError(ValueError):
    """A splits file is malformed or does not fit the dataset."""


def generate_crossval_split(case_ids: Sequence[str], seed: int = 12345, n_splits: int = 5) -> list[dict]:
    """Folds as nnU-Net makes them: ``[{"train": [...], "val": [...]}, ...]``.

    Args:
        case_ids: the training case ids (sorted here, as nnU-Net does).
        seed: the KFold random state.
        n_splits: number of folds.

    Raises:
        SplitsError: when there are fewer cases than folds.
    """
    ids = np.array(sorted(case_ids))
    if len(ids) < n_splits:
        raise SplitsError(f"{len(ids)} case(s) cannot be split into {n_splits} folds; write splits_final.json by hand")
    indices = np.arange(len(ids))
    np.random.RandomState(seed).shuffle(indices)
    fold_sizes = np.full(n_splits, len(ids) // n_splits, dtype=int)
    fold_sizes[: len(ids) % n_splits] += 1
    splits, start = [], 0
    for size in fold_sizes:
        test_idx = np.sort(indices[start : start + size])
        is_train = np.ones(len(ids), dtype=bool)
        is_train[test_idx] = False
        splits.append({"train": [str(i) for i in ids[is_train]], "val": [str(i) for i in ids[test_idx]]})
        start += size
    return splits


def load_splits(path: str | os.PathLike, case_ids: Sequence[str] | None = None) -> list[dict]:
    """Reads and checks a ``splits_final.json``.

    Raises:
        SplitsError: when it is not a list of ``{"train": [...], "val": [...]}`` or names unknown cases.
    """
    splits = load_json(path)
    if not isinstance(splits, list) or not splits:
        raise SplitsError(f"{path}: expected a non-empty list of {{'train': [...], 'val': [...]}}")
    known = None if case_ids is None else set(case_ids)
    for i, fold in enumerate(splits):
        if not isinstance(fold, dict) or not {"train", "val"} <= set(fold):
            raise SplitsError(f"{path}: fold {i} must be an object with 'train' and 'val' lists")
        if known is not None:
            unknown = sorted((set(fold["train"]) | set(fold["val"])) - known)
            if unknown:
                raise SplitsError(f"{path}: fold {i} names case(s) not in the dataset: {unknown[:10]}")
    return splits


def ensure_splits(preprocessed_folder: str | os.PathLike, case_ids: Sequence[str],
                  raw_folder: str | os.PathLike | None = None) -> Path:
    """Makes sure ``preprocessed_folder/splits_final.json`` exists; never overwrites it.

    A ``splits_final.json`` in the raw dataset folder is copied (nnU-Net's behaviour); otherwise the 5-fold split
    is generated. Returns the path.
    """
    target = Path(preprocessed_folder) / "splits_final.json"
    if target.is_file():
        return target
    source = None if raw_folder is None else Path(raw_folder) / "splits_final.json"
    if source is not None and source.is_file():
        load_splits(source, case_ids)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    else:
        save_json(generate_crossval_split(case_ids), target)
    return target
