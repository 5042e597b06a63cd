"""Per-case properties (geometry, crop box, spacing, foreground locations) as JSON: data that cannot carry code.

nnU-Net keeps them in pickles, which run code when they are loaded; a preprocessed cache or a prediction folder may
come from elsewhere, so this package writes and reads ``CASE.json`` instead. NumPy arrays, tuples and dicts with
non-string keys (label values, region tuples) are tagged so that they read back as they were written.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from monai_nnunet.utils.files import atomic_path

__all__ = ["PropertiesError", "decode_properties", "encode_properties", "load_properties", "save_properties"]

_ARRAY, _TUPLE, _ITEMS = "__ndarray__", "__tuple__", "__items__"


class PropertiesError(ValueError):
    """A properties file is missing, unreadable, or an old pickle."""


def encode_properties(value: Any) -> Any:
    """JSON-ready form of ``value`` (arrays, tuples and non-string dict keys tagged)."""
    if isinstance(value, np.ndarray):
        return {_ARRAY: value.tolist(), "dtype": value.dtype.str, "shape": list(value.shape)}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return {_TUPLE: [encode_properties(v) for v in value]}
    if isinstance(value, list):
        return [encode_properties(v) for v in value]
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            return {k: encode_properties(v) for k, v in value.items()}
        return {_ITEMS: [[encode_properties(k), encode_properties(v)] for k, v in value.items()]}
    if isinstance(value, Path):
        return str(value)
    return value


def decode_properties(value: Any) -> Any:
    """The inverse of :func:`encode_properties`."""
    if isinstance(value, list):
        return [decode_properties(v) for v in value]
    if isinstance(value, dict):
        if _ARRAY in value:
            return np.asarray(value[_ARRAY], dtype=np.dtype(value["dtype"])).reshape(value["shape"])
        if _TUPLE in value:
            return tuple(decode_properties(v) for v in value[_TUPLE])
        if _ITEMS in value:
            return {_hashable(decode_properties(k)): decode_properties(v) for k, v in value[_ITEMS]}
        return {k: decode_properties(v) for k, v in value.items()}
    return value


def _hashable(key: Any) -> Any:
    return tuple(_hashable(k) for k in key) if isinstance(key, (list, tuple)) else key


def save_properties(path: str | os.PathLike, properties: dict) -> Path:
    """Writes ``properties`` to ``path`` (``CASE.json``) atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(encode_properties(properties)))
    return Path(path)


def load_properties(path: str | os.PathLike, rerun: str = "the step that wrote it") -> dict:
    """Reads ``CASE.json``.

    Args:
        path: the JSON file.
        rerun: what to re-run when only an old pickle is there, for the message.

    Raises:
        PropertiesError: when the file is missing (naming a ``.pkl`` beside it, which is refused), or not JSON.
    """
    path = Path(path)
    if not path.is_file():
        pickle_file = path.with_suffix(".pkl")
        if pickle_file.is_file():
            raise PropertiesError(f"{pickle_file} is a pickle (written by nnU-Net or an earlier version of this "
                                  f"package), which could run code when loaded, so it is not read; re-run {rerun} "
                                  f"to write {path.name}")
        raise PropertiesError(f"{path} is missing")
    try:
        content = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise PropertiesError(f"{path} is not a properties file ({type(e).__name__}: {e})") from None
    if not isinstance(content, dict):
        raise PropertiesError(f"{path} does not hold a properties mapping")
    return decode_properties(content)
