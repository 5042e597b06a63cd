"""Dataset names and ids: ``4``, ``"004"`` and ``"Dataset004_Hippocampus"`` all name the same dataset."""

from __future__ import annotations

import os
import re
from pathlib import Path

from monai_nnunet import paths

__all__ = ["DatasetNotFoundError", "dataset_id_from_name", "resolve_dataset_name"]

_NAME_PATTERN = re.compile(r"^Dataset(\d{3})_(.+)$")


class DatasetNotFoundError(LookupError):
    """No dataset (or more than one) matches the given name or id."""


def dataset_id_from_name(name: str) -> int:
    """Returns the integer id of a ``DatasetXXX_Name`` folder name.

    Raises:
        ValueError: when ``name`` does not follow the ``DatasetXXX_Name`` pattern.
    """
    match = _NAME_PATTERN.match(name)
    if match is None:
        raise ValueError(f"{name!r} is not a dataset name of the form DatasetXXX_Name (XXX: three digits)")
    return int(match.group(1))


def _set_roots() -> list[Path]:
    roots = []
    for variable in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        if os.environ.get(variable):
            roots.append(Path(os.environ[variable]).expanduser())
    return roots


def resolve_dataset_name(dataset: int | str) -> str:
    """Resolves a dataset id or name to its ``DatasetXXX_Name`` folder name.

    An id is looked up in ``nnUNet_raw``, ``nnUNet_preprocessed`` and ``nnUNet_results`` (those that are set),
    as nnU-Net does.

    Args:
        dataset: ``4``, ``"4"``, ``"004"`` or ``"Dataset004_Hippocampus"``.

    Returns:
        The folder name, e.g. ``"Dataset004_Hippocampus"``.

    Raises:
        ValueError: when ``dataset`` is neither an integer id nor a dataset name.
        DatasetNotFoundError: when no folder (or more than one) has that id.
        MissingEnvironmentVariableError: when none of the nnU-Net folder variables is set.
    """
    if isinstance(dataset, str) and dataset.startswith("Dataset"):
        dataset_id_from_name(dataset)  # validates the pattern
        return dataset
    try:
        dataset_id = int(dataset)
    except (TypeError, ValueError):
        raise ValueError(
            f"Dataset {dataset!r} is neither an integer id (e.g. 4 or 004) nor a name like Dataset004_Hippocampus"
        ) from None
    if not 0 <= dataset_id <= 999:
        raise ValueError(f"Dataset id {dataset_id} is out of range: ids have three digits (0-999)")
    roots = _set_roots()
    if not roots:
        paths.nnunet_raw()  # raises the explanatory MissingEnvironmentVariableError
    prefix = f"Dataset{dataset_id:03d}_"
    candidates = sorted(
        {p.name for root in roots if root.is_dir() for p in root.iterdir() if p.is_dir() and p.name.startswith(prefix)}
    )
    if len(candidates) == 1:
        return candidates[0]
    searched = ", ".join(str(r) for r in roots)
    if not candidates:
        raise DatasetNotFoundError(f"No dataset with id {dataset_id} (a folder {prefix}*) was found in: {searched}")
    raise DatasetNotFoundError(f"More than one dataset has id {dataset_id} ({', '.join(candidates)}) in: {searched}")
