"""Which modules a recorded network class may come from.

A checkpoint, an nnU-Net results folder or a model zip records its network as a class path and arguments
(``network_def``). Those files are data, so resolving the path must not run code the user did not choose to run:
only installed, trusted network modules are imported, and nothing is imported before the name passed the check.

Trusted are :data:`TRUSTED_NETWORK_MODULES` (this package's networks, MONAI's ``monai.networks.nets`` and
``torch.nn``), the modules named in ``MONAI_NNUNET_NETWORK_MODULES`` (comma-separated) or in
``MONAI_NNUNET_TRAINER_MODULES`` (the user's own ``-tr`` code), and the modules that installed packages declare in
the ``monai_nnunet.networks`` entry-point group (the entry point's module is read from the package metadata, not
imported). A module the user trusts is still refused when the file it would be imported from lies in the working
directory or under ``nnUNet_results`` (a module planted beside a downloaded model, or inside an installed model
zip); the built-in ones belong to the packages this program runs from.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch.nn as nn

__all__ = ["NETWORK_MODULES_VARIABLE", "NETWORK_ENTRY_POINT_GROUP", "TRUSTED_NETWORK_MODULES", "UntrustedNetworkError",
           "public_class_path", "resolve_trusted_network", "trusted_network_modules"]

#: always trusted: their classes are installed with this package and its dependencies
TRUSTED_NETWORK_MODULES = ("monai_nnunet.networks", "monai.networks.nets", "torch.nn")
NETWORK_MODULES_VARIABLE = "MONAI_NNUNET_NETWORK_MODULES"
TRAINER_MODULES_VARIABLE = "MONAI_NNUNET_TRAINER_MODULES"
NETWORK_ENTRY_POINT_GROUP = "monai_nnunet.networks"


class UntrustedNetworkError(ValueError):
    """A recorded network class is outside the trusted modules, or would be imported from an untrusted place."""


def _names(variable: str) -> list[str]:
    return [m.strip() for m in os.environ.get(variable, "").split(",") if m.strip()]


def trusted_network_modules() -> tuple[str, ...]:
    """The module prefixes a recorded network class may come from (see the module docstring)."""
    declared = [ep.module for ep in importlib.metadata.entry_points(group=NETWORK_ENTRY_POINT_GROUP)]
    return (*TRUSTED_NETWORK_MODULES, *_names(NETWORK_MODULES_VARIABLE), *_names(TRAINER_MODULES_VARIABLE),
            *declared)


def _within(module: str, prefixes: Iterable[str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _untrusted_folders() -> list[Path]:
    folders = [Path.cwd().resolve()]
    results = os.environ.get("nnUNet_results")
    if results:
        folders.append(Path(results).resolve())
    return folders


def _check_origin(module: str, target: str) -> None:
    """Refuses a module whose top-level package would be imported from the working directory or ``nnUNet_results``
    (its file, or every folder of a namespace package); locating a top-level module runs none of its code, and its
    submodules are found inside those folders."""
    top = module.split(".")[0]
    loaded = sys.modules.get(top)
    if loaded is not None:
        places = [getattr(loaded, "__file__", None), *list(getattr(loaded, "__path__", []) or [])]
    else:
        spec = importlib.util.find_spec(top)
        if spec is None:
            raise UntrustedNetworkError(f"network _target_ {target!r}: module {top!r} is not installed")
        places = [spec.origin, *list(spec.submodule_search_locations or [])]
    for place in places:
        if not place:
            continue
        path = Path(place).resolve()
        for folder in _untrusted_folders():
            if path == folder or folder in path.parents:
                raise UntrustedNetworkError(
                    f"network _target_ {target!r} would be imported from {path}, inside {folder} (the working "
                    f"directory or nnUNet_results): only installed network modules are imported for a recorded "
                    f"network")


def resolve_trusted_network(target: Any) -> type[nn.Module]:
    """The ``torch.nn.Module`` class a recorded ``_target_`` names, imported only from a trusted module.

    Args:
        target: ``"package.module.Class"`` or ``"package.module:Class"``.

    Returns:
        The class.

    Raises:
        UntrustedNetworkError: the name is outside the trusted modules, or its module lies in the working directory
            or under ``nnUNet_results``; nothing was imported.
        ValueError: the name is malformed, not importable, or not a ``torch.nn.Module`` subclass.
    """
    if not isinstance(target, str) or not target or target.startswith(("$", "@", "%")):
        raise ValueError(f"a recorded network _target_ must be a dotted class name, got {target!r}")
    module, _, attribute = target.partition(":") if ":" in target else target.rpartition(".")
    if not module or not attribute or not all(p.isidentifier() for p in (*module.split("."), *attribute.split("."))):
        raise ValueError(f"network _target_ {target!r} is not a dotted class name")
    trusted = trusted_network_modules()
    if not _within(module, trusted):
        raise UntrustedNetworkError(
            f"network _target_ {target!r} is not in a trusted network module ({', '.join(trusted)}); name the "
            f"module in {NETWORK_MODULES_VARIABLE} to trust it")
    if not _within(module, TRUSTED_NETWORK_MODULES):  # the built-in ones are this program's own packages
        _check_origin(module, target)
    try:
        obj: Any = importlib.import_module(module)
    except ImportError as e:
        raise ValueError(f"network _target_ {target!r} cannot be imported ({e}): install the package that "
                         f"defines it") from None
    for part in attribute.split("."):
        obj = getattr(obj, part, None)
    if not (isinstance(obj, type) and issubclass(obj, nn.Module)):
        raise ValueError(f"network _target_ {target!r} is not a torch.nn.Module class")
    return obj


def public_class_path(cls: type) -> str:
    """``package.module.Class`` by the shortest module path that exposes the class under its name, preferring one
    inside the trusted modules (``monai.networks.nets.SegResNet`` rather than
    ``monai.networks.nets.segresnet.SegResNet``), so that the recorded name resolves where it is read."""
    parts = cls.__module__.split(".")
    exposing = []
    for depth in range(1, len(parts) + 1):
        name = ".".join(parts[:depth])
        obj: Any = sys.modules.get(name)
        for attr in cls.__qualname__.split("."):
            obj = getattr(obj, attr, None)
        if obj is cls:
            exposing.append(name)
    trusted = trusted_network_modules()
    preferred = [m for m in exposing if _within(m, trusted)] or exposing or [cls.__module__]
    return f"{preferred[0]}.{cls.__qualname__}"
