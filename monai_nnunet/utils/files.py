"""Atomic file writing and JSON helpers.

Everything the pipeline writes goes through a temporary file in the destination folder followed by
``os.replace``, so an interrupted run never leaves a half-written plans file, cache entry or checkpoint.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

__all__ = ["atomic_path", "load_json", "save_json", "to_jsonable"]


@contextmanager
def atomic_path(destination: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary path next to ``destination``; renames it onto ``destination`` on success.

    The temporary file keeps the destination's suffix so writers that dispatch on the extension
    (``np.save``, ``torch.save``, image writers) behave as for the final name; the final file has the mode the
    process umask gives new files (a shared results folder stays readable to colleagues).
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(destination.suffixes)
    fd, tmp = tempfile.mkstemp(prefix=f".{destination.name}.", suffix=f".tmp{suffix}", dir=destination.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():  # mkstemp creates 0600; the result gets the mode any new file gets (umask)
            os.chmod(tmp_path, 0o666 & ~_current_umask())
        os.replace(tmp_path, destination)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def to_jsonable(obj: Any) -> Any:
    """Converts numpy scalars/arrays and tuples (recursively) into plain JSON types."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj


def save_json(obj: Any, path: str | os.PathLike, sort_keys: bool = False, indent: int = 4) -> None:
    """Writes ``obj`` as JSON atomically (numpy types converted)."""
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            json.dump(to_jsonable(obj), f, sort_keys=sort_keys, indent=indent)
            f.write("\n")


def load_json(path: str | os.PathLike) -> Any:
    """Reads a JSON file, naming the file in the error when it is missing or malformed.

    Raises:
        FileNotFoundError: when ``path`` does not exist.
        ValueError: when the file is not valid JSON.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    try:
        with open(path) as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from e
