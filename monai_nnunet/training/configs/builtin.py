"""The built-in trainer configs (``-tr nnUNetTrainer | kiunet | uiunet | blob_dice | region_dice | ..._minimal``).

Each is an overlay file of the template bundle (``configs/trainers/NAME.yaml``); the :class:`TrainerConfig` of a
built-in name points at its overlay and mirrors what it changes (architecture, loss, batch size), read from the
file, so the file is the one description.
"""

from __future__ import annotations

from monai_nnunet.training.configs.overrides import load_overlay, overlay_file
from monai_nnunet.training.configs.trainer_config import TrainerConfig

__all__ = ["BUILTIN_OVERLAYS", "builtin_trainer_configs"]

#: -tr name -> overlay file name (the default trainer has none)
BUILTIN_OVERLAYS = ("kiunet", "kiunet_minimal", "uiunet", "uiunet_minimal", "blob_dice", "region_dice")


def _from_overlay(name: str) -> TrainerConfig:
    overlay = load_overlay(name)
    prefix = "network_def#"
    architecture = overlay.get(prefix + "_target_")
    kwargs = {k[len(prefix):]: v for k, v in overlay.items() if k.startswith(prefix) and k != prefix + "_target_"}
    loss = overlay.get("loss#loss", {}).get("_target_") if isinstance(overlay.get("loss#loss"), dict) else None
    text = overlay_file(name).read_text().splitlines()
    description = text[0].split(":", 1)[-1].strip() if text and text[0].startswith("#") else ""
    return TrainerConfig(architecture=architecture, architecture_kwargs=kwargs, loss=loss,
                         batch_size=overlay.get("batch_size"), description=description, overlay=name)


def builtin_trainer_configs() -> dict[str, TrainerConfig]:
    """Fresh instances of the built-in configs, by ``-tr`` name.

    Returns:
        ``nnUNetTrainer`` (plain U-Net, Dice + CE: nnU-Net's default), ``kiunet`` and ``uiunet`` (the custom
        architectures with the default loss), ``kiunet_minimal`` and ``uiunet_minimal`` (slimmer networks and
        batch size 2, for GPUs with little memory), ``blob_dice`` and ``region_dice`` (plain U-Net with the
        instance-aware and region-weighted Dice + CE losses).
    """
    configs = {"nnUNetTrainer": TrainerConfig(description="nnU-Net's default: plain U-Net from the plans, Dice + CE")}
    configs.update({name: _from_overlay(name) for name in BUILTIN_OVERLAYS})
    return configs
