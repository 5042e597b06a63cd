"""The registry of trainer configs, and what ``-tr NAME`` resolves to.

``TRAINER_CONFIGS`` is a plain dict (``TRAINER_CONFIGS["mine"] = my_config`` works, and may replace an entry);
:func:`register_trainer_config` adds an entry and refuses a name that is taken. ``-tr NAME`` is looked up there;
``-tr package.module:NAME`` imports ``NAME`` from the user's own code, a :class:`TrainerConfig` or a trainer class.

Registrations in the user's own code are found by their plain name: a name not registered yet is looked up, in this
order, in the modules named by the environment variable ``MONAI_NNUNET_TRAINER_MODULES`` (comma-separated; each is
imported, and its ``TRAINER_CONFIGS[...] = ...`` lines register), then in the entry points of the group
``monai_nnunet.trainer_configs`` that installed packages declare (``NAME = "package.module:OBJECT"``: a
:class:`TrainerConfig`, a trainer class, or a module to import).
"""

from __future__ import annotations

import importlib
import os
import re
from importlib.metadata import entry_points
from types import ModuleType

from monai_nnunet.training.configs.trainer_config import TrainerConfig, resolve_reference

__all__ = [
    "DEFAULT_TRAINER",
    "ENTRY_POINT_GROUP",
    "MODULES_ENV",
    "discover_trainer_configs",
    "TRAINER_CONFIGS",
    "UnknownTrainerError",
    "available_trainer_configs",
    "register_trainer_config",
    "resolve_trainer",
    "trainer_output_folder_name",
]

#: The ``-tr`` value used when none is given (nnU-Net's default trainer name).
DEFAULT_TRAINER = "nnUNetTrainer"

#: name -> config; filled with the built-in configs when :mod:`monai_nnunet.training.configs` is imported.
TRAINER_CONFIGS: dict[str, TrainerConfig] = {}
#: trainer classes declared through entry points, by name
TRAINER_CLASSES: dict[str, type] = {}
#: the entry-point group installed packages declare their trainer configs in
ENTRY_POINT_GROUP = "monai_nnunet.trainer_configs"
#: modules to import (comma-separated) so that their registrations are found
MODULES_ENV = "MONAI_NNUNET_TRAINER_MODULES"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


class UnknownTrainerError(KeyError, ValueError):
    """``-tr`` named no registered config and no importable ``package.module:NAME``.

    A ``KeyError`` (a failed registry lookup) and a ``ValueError`` (a bad command-line value); the message lists
    the known names.
    """

    def __init__(self, name: str, known: list[str], detail: str = "") -> None:
        self.name = name
        self.known = known
        message = f"unknown trainer {name!r}"
        if detail:
            message += f" ({detail})"
        message += (
            f". Known trainer configs: {', '.join(known) if known else '(none)'}. "
            "Your own config or trainer class: -tr package.module:NAME, or register it in a module named by "
            "$MONAI_NNUNET_TRAINER_MODULES or in a 'monai_nnunet.trainer_configs' entry point."
        )
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def register_trainer_config(name: str, config: TrainerConfig) -> TrainerConfig:
    """Adds a config under ``name``.

    Args:
        name: the ``-tr`` name; letters, digits, ``_``, ``.``, ``-``, starting with a letter or digit, without
            ``__`` (the separator of output folder names) and without ``:`` (reserved for ``module:NAME``).
        config: the config.

    Returns:
        ``config``, so it can be used as ``my_config = register_trainer_config("mine", TrainerConfig(...))``.

    Raises:
        ValueError: when the name is taken or malformed.
        TypeError: when ``config`` is not a :class:`TrainerConfig`.
    """
    if not isinstance(name, str) or not _NAME.match(name) or "__" in name:
        raise ValueError(
            f"invalid trainer config name {name!r}: use letters, digits, '_', '.', '-' (no '__', no ':')."
        )
    if not isinstance(config, TrainerConfig):
        raise TypeError(f"config must be a TrainerConfig, got {type(config).__name__}.")
    if name in TRAINER_CONFIGS:
        raise ValueError(f"a trainer config named {name!r} is already registered; choose another name.")
    TRAINER_CONFIGS[name] = config
    return config


def available_trainer_configs() -> list[str]:
    """The registered names, sorted (case-insensitively)."""
    return sorted(TRAINER_CONFIGS, key=str.lower)


def discover_trainer_configs(name: str | None = None) -> None:
    """Imports the modules of ``$MONAI_NNUNET_TRAINER_MODULES`` and loads the ``monai_nnunet.trainer_configs``
    entry points (all of them, or only ``name``'s).

    Raises:
        UnknownTrainerError: when a module named by the variable or an entry point cannot be imported.
    """
    for module in [m.strip() for m in os.environ.get(MODULES_ENV, "").split(",") if m.strip()]:
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise UnknownTrainerError(name or module, available_trainer_configs(),
                                      f"{MODULES_ENV} names {module!r}, which cannot be imported: {err}") from err
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if name is not None and ep.name != name:
            continue
        try:
            obj = ep.load()
        except (ImportError, AttributeError) as err:
            raise UnknownTrainerError(ep.name, available_trainer_configs(),
                                      f"its entry point {ep.value!r} cannot be loaded: {err}") from err
        if isinstance(obj, TrainerConfig):
            TRAINER_CONFIGS.setdefault(ep.name, obj)
        elif isinstance(obj, type):
            TRAINER_CLASSES.setdefault(ep.name, obj)
        elif not isinstance(obj, ModuleType):
            raise UnknownTrainerError(ep.name, available_trainer_configs(),
                                      f"its entry point names a {type(obj).__name__}, not a TrainerConfig, a "
                                      f"trainer class or a module")


def resolve_trainer(name: str | None = None) -> TrainerConfig | type:
    """What ``-tr name`` stands for.

    Args:
        name: a registered name, ``"package.module:NAME"``, or ``None`` for :data:`DEFAULT_TRAINER`.

    Returns:
        The registered :class:`TrainerConfig`, or the imported object: a :class:`TrainerConfig` instance or a
        class (a trainer subclass; the trainer checks what it can run).

    Raises:
        UnknownTrainerError: when the name is not registered, or its module or attribute cannot be imported.
        TypeError: when ``package.module:NAME`` is neither a TrainerConfig nor a class.
    """
    name = DEFAULT_TRAINER if name is None else name
    if not isinstance(name, str) or not name:
        raise UnknownTrainerError(str(name), available_trainer_configs(), "not a name")
    if ":" in name:
        try:
            obj = resolve_reference(name)
        except (ImportError, AttributeError, ValueError) as err:
            raise UnknownTrainerError(name, available_trainer_configs(), f"cannot import it: {err}") from err
        if isinstance(obj, TrainerConfig) or isinstance(obj, type):
            return obj
        raise TypeError(f"-tr {name} is a {type(obj).__name__}; expected a TrainerConfig or a trainer class.")
    if name not in TRAINER_CONFIGS and name not in TRAINER_CLASSES:
        discover_trainer_configs(name)
    config = TRAINER_CONFIGS.get(name, TRAINER_CLASSES.get(name))
    if config is None:
        raise UnknownTrainerError(name, available_trainer_configs())
    return config


def trainer_output_folder_name(trainer_name: str, plans_identifier: str, configuration: str) -> str:
    """nnU-Net's output folder name ``TRAINER__PLANS__CONFIGURATION``, with the ``-tr`` name as ``TRAINER``.

    ``package.module:NAME`` becomes ``package.module.NAME`` (``:`` is not allowed in Windows paths).

    Args:
        trainer_name: the ``-tr`` value.
        plans_identifier: e.g. ``"nnUNetPlans"``.
        configuration: e.g. ``"3d_fullres"``.

    Returns:
        e.g. ``"kiunet__nnUNetPlans__3d_fullres"``.
    """
    return f"{trainer_name.replace(':', '.')}__{plans_identifier}__{configuration}"
