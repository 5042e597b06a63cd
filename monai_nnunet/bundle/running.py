"""What a bundle being run knows about itself: its folder and the config of one of its components.

MONAI's config language has no expression for "the folder this config file is in" nor for "the arguments this
component was built with". Both are known to the :class:`monai.bundle.ConfigWorkflow` (its ``config_root_path``)
and :class:`monai.bundle.ConfigParser` (its ``get`` / ``get_parsed_content``) that evaluate the expression calling
these functions, so they look for those objects on the call stack (public classes and public attributes only). This
is what makes a fold's bundle relocatable (``bundle_root: "$nnunet_bundle.bundle_folder()"``: a copied or moved
fold trains into its new place) and what lets a checkpoint record the network it trained as data, whatever class a
user put in ``network_def`` and however (in the file, with ``--network_def#_target_ ...`` or a whole
``--network_def "{...}"`` on MONAI's command line).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from monai.bundle import ConfigParser, ConfigWorkflow

__all__ = ["bundle_folder", "component_config", "running_parser", "running_workflow"]


def _on_stack(kind: type) -> Any | None:
    frame = sys._getframe(1)
    while frame is not None:
        candidate = frame.f_locals.get("self")
        if isinstance(candidate, kind):
            return candidate
        frame = frame.f_back
    return None


def running_workflow() -> ConfigWorkflow | None:
    """The ``ConfigWorkflow`` whose ``initialize``/``run``/``finalize`` is evaluating the caller, or ``None``."""
    return _on_stack(ConfigWorkflow)


def running_parser() -> ConfigParser | None:
    """The ``ConfigParser`` that is resolving the caller (an expression of its config), or ``None``."""
    return _on_stack(ConfigParser)


def bundle_folder() -> str:
    """The absolute folder of the bundle being run: the parent of the ``configs/`` folder that holds its (first)
    config file, as MONAI's ``ConfigWorkflow.run`` takes it. Outside a workflow (a ``ConfigParser`` used directly),
    the working directory, as ``bundle_root: .`` would be.

    Returns:
        The folder as a string (bundle values are strings).
    """
    workflow = running_workflow()
    if workflow is None:
        return os.getcwd()
    root = Path(workflow.config_root_path)
    return str((root.parent if root.name == "configs" else root).resolve())


def component_config(component_id: str) -> tuple[Any, dict[str, Any]] | None:
    """The ``_target_`` and the evaluated arguments of component ``component_id`` of the bundle being resolved.

    Each argument is evaluated by the running parser (``@`` references and ``$`` expressions give their values);
    an argument that is itself a component (a nested ``_target_``) is returned as its raw config, not built.

    Args:
        component_id: e.g. ``"network_def"``.

    Returns:
        ``(target, arguments)``, or ``None`` when no parser is resolving the caller or the id is not a component.
    """
    parser = running_parser()
    if parser is None or component_id not in parser:
        return None
    raw = parser.get(component_id)
    if not isinstance(raw, dict) or "_target_" not in raw:
        return None
    arguments: dict[str, Any] = {}
    for key, value in raw.items():
        if key.startswith("_"):
            continue
        nested = isinstance(value, dict) and "_target_" in value
        arguments[key] = value if nested else parser.get_parsed_content(f"{component_id}#{key}")
    return raw["_target_"], arguments
