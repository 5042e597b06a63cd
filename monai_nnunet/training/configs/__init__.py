"""Trainer configs: ``TrainerConfig``, the ``TRAINER_CONFIGS`` registry and ``-tr`` resolution.

Importing this package registers the built-in configs (``nnUNetTrainer``, ``kiunet``, ``kiunet_minimal``,
``uiunet``, ``uiunet_minimal``, ``blob_dice``, ``region_dice``), each an overlay file of the template bundle. A
config becomes overrides of the run's bundle (:func:`to_bundle_overrides`).
"""

from monai_nnunet.training.configs.builtin import builtin_trainer_configs
from monai_nnunet.training.configs.overrides import (
    instance_component,
    load_overlay,
    qualified_name,
    to_bundle_overrides,
)
from monai_nnunet.training.configs.registry import (
    DEFAULT_TRAINER,
    ENTRY_POINT_GROUP,
    MODULES_ENV,
    TRAINER_CLASSES,
    discover_trainer_configs,
    TRAINER_CONFIGS,
    UnknownTrainerError,
    available_trainer_configs,
    register_trainer_config,
    resolve_trainer,
    trainer_output_folder_name,
)
from monai_nnunet.training.configs.trainer_config import OVERRIDE_FIELDS, TrainerConfig, resolve_reference

for _name, _config in builtin_trainer_configs().items():
    if _name not in TRAINER_CONFIGS:  # a re-import (importlib.reload) keeps what users registered
        register_trainer_config(_name, _config)
del _name, _config

__all__ = [
    "DEFAULT_TRAINER",
    "ENTRY_POINT_GROUP",
    "MODULES_ENV",
    "TRAINER_CLASSES",
    "discover_trainer_configs",
    "instance_component",
    "load_overlay",
    "qualified_name",
    "to_bundle_overrides",
    "OVERRIDE_FIELDS",
    "TRAINER_CONFIGS",
    "TrainerConfig",
    "UnknownTrainerError",
    "available_trainer_configs",
    "builtin_trainer_configs",
    "register_trainer_config",
    "resolve_reference",
    "resolve_trainer",
    "trainer_output_folder_name",
]
