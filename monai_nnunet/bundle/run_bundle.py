"""Write the filled-in bundle of a training run into its fold folder.

The run parameters block of the template's ``configs/train.yaml`` (between ``# >>> run parameters`` and
``# <<< run parameters``) is replaced by this run's values; the rest of the file (the composition of the run) is
kept as it is, so the bundle in the fold folder is the description of the run and ``python -m monai.bundle run
--config_file <fold>/configs/train.yaml`` repeats it.
"""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import yaml

from monai_nnunet.bundle import TEMPLATE_BUNDLE
from monai_nnunet.bundle.metadata import build_metadata
from monai_nnunet.utils.files import atomic_path, save_json

__all__ = ["BEGIN_MARKER", "END_MARKER", "replace_run_parameters", "run_parameters", "write_training_bundle"]

BEGIN_MARKER = "# >>> run parameters"
END_MARKER = "# <<< run parameters"
_TRAINER_ARGS = {
    "dataset_id": "@dataset_name", "configuration": "@configuration", "fold": "@fold",
    "plans_identifier": "@plans_identifier", "device": "@device", "trainer_config": "@trainer_name",
    "trainer_name": "@trainer_name", "preprocessed_folder": "@dataset_dir", "output_folder": "@output_dir",
    "continue_training": "@continue_training", "pretrained_weights": "@pretrained_weights",
    "save_checkpoints": "@save_checkpoints", "export_npz": "@export_npz", "num_epochs": "@epochs",
    "iterations_per_epoch": "@iterations_per_epoch", "val_every": "@val_interval", "initial_lr": "@initial_lr",
    "weight_decay": "@weight_decay", "lr_schedule": "@lr_schedule", "batch_size": "@batch_size",
    "patch_size": "@patch_size", "oversample_foreground_percent": "@oversample_foreground_percent",
    "num_workers": "@num_workers", "augmentation_device": "@augmentation_device", "seed": "@seed",
}


def trainer_target(trainer) -> str:
    cls = type(trainer)
    if cls.__module__ == "__main__":
        warnings.warn(f"{cls.__qualname__} is defined in __main__: the written bundle can only run where that class "
                      f"can be imported; put it in a module and pass -tr module:{cls.__qualname__}", stacklevel=3)
    return f"{cls.__module__}.{cls.__qualname__}"


def run_parameters(trainer) -> dict:
    """The run parameters of ``trainer`` as the bundle's top-level ids."""
    s = trainer.settings
    return {
        "bundle_root": str(trainer.output_folder),
        "output_dir": "@bundle_root",
        "dataset_dir": str(trainer.preprocessed_folder),
        "dataset_name": trainer.dataset_name,
        "configuration": trainer.configuration_name,
        "fold": trainer.fold,
        "plans_identifier": trainer.plans_identifier,
        "trainer_name": trainer.trainer_name,
        "device": str(trainer.device),
        "epochs": s.num_epochs,
        "iterations_per_epoch": s.iterations_per_epoch,
        "val_interval": s.val_every,
        "initial_lr": s.initial_lr,
        "weight_decay": s.weight_decay,
        "lr_schedule": s.lr_schedule,
        "batch_size": s.batch_size,
        "patch_size": list(s.patch_size),
        "oversample_foreground_percent": s.oversample_foreground_percent,
        "num_workers": s.num_workers,
        "augmentation_device": s.augmentation_device,
        "seed": s.seed,
        "continue_training": trainer.continue_training,
        "pretrained_weights": None if trainer.pretrained_weights is None else str(trainer.pretrained_weights),
        "save_checkpoints": trainer.save_checkpoints,
        "export_npz": trainer.export_npz,
        "nnunet_trainer": {"_target_": trainer_target(trainer), **_TRAINER_ARGS},
    }


def replace_run_parameters(template_text: str, parameters: dict) -> str:
    """Replaces the run parameters block of a train.yaml text.

    Raises:
        ValueError: when the markers are missing.
    """
    start, end = template_text.find(BEGIN_MARKER), template_text.find(END_MARKER)
    if start < 0 or end < start:
        raise ValueError(f"the train.yaml template lacks the '{BEGIN_MARKER}' / '{END_MARKER}' block")
    block = yaml.safe_dump(parameters, sort_keys=False, default_flow_style=None, width=120)
    return template_text[: start + len(BEGIN_MARKER)] + "\n" + block + template_text[end:]


def write_training_bundle(trainer, template: str | os.PathLike = TEMPLATE_BUNDLE) -> Path:
    """Writes ``<fold>/configs/{train.yaml, inference.yaml, metadata.json, logging.conf}`` (and docs, LICENSE) for
    ``trainer``'s run; returns the train.yaml path."""
    template = Path(template)
    configs = Path(trainer.output_folder) / "configs"
    configs.mkdir(parents=True, exist_ok=True)
    text = replace_run_parameters((template / "configs" / "train.yaml").read_text(), run_parameters(trainer))
    with atomic_path(configs / "train.yaml") as tmp:
        tmp.write_text(text)
    for name in ("inference.yaml", "evaluate.yaml", "multi_gpu_train.yaml", "logging.conf"):
        source = template / "configs" / name
        if source.is_file():
            shutil.copyfile(source, configs / name)
    save_json(build_metadata(trainer.dataset.raw, trainer.configuration_name), configs / "metadata.json")
    return configs / "train.yaml"
