"""A YAML loader for tests that read generated files: like ``yaml.safe_load``, but a key written twice in one mapping
is an error (``yaml.safe_load`` keeps the last silently; MONAI warns "Duplicate key" and keeps the last, so a reader
of the file sees a block that does not run)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

__all__ = ["DuplicateKeyError", "StrictLoader", "load_strict", "load_strict_file"]


class DuplicateKeyError(yaml.YAMLError):
    """A mapping of the YAML text holds the same key twice."""


class StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that raises :class:`DuplicateKeyError` on a duplicate key."""


def _construct_mapping(loader: StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if key in seen:
            raise DuplicateKeyError(f"duplicate key {key!r} on line {line} (first on line {seen[key]})")
        seen[key] = line
    return loader.construct_mapping(node, deep=True)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_strict(text: str) -> Any:
    """The YAML text's content.

    Raises:
        DuplicateKeyError: when a mapping holds a key twice.
    """
    return yaml.load(text, Loader=StrictLoader)  # noqa: S506 (StrictLoader is a SafeLoader)


def load_strict_file(path: str | os.PathLike) -> Any:
    """The YAML file's content.

    Raises:
        DuplicateKeyError: when a mapping holds a key twice.
    """
    return load_strict(Path(path).read_text())
