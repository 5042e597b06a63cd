"""A :class:`TrainerConfig` as overrides of the run's bundle: the one configuration system is MONAI's.

``-tr NAME`` merges ``to_bundle_overrides(config)`` over ``train.yaml`` exactly as a second config file would be
merged (``network_def#_target_: ...``, ``loss#loss: {...}``, ``epochs: ...``); the overrides are written into the
fold's ``train.yaml`` under a ``# >>> -tr NAME`` heading, so the file read alone still names every component.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch.nn as nn
import yaml

from monai_nnunet.bundle import TEMPLATE_BUNDLE
from monai_nnunet.losses import BlobDiceLoss, DC_and_Blob_CE_loss, DC_and_Region_CE_loss, RegionDiceLoss
from monai_nnunet.networks.config import describe_arguments
from monai_nnunet.training.configs.trainer_config import TrainerConfig, accepted_keywords, deep_merge, resolve_reference

__all__ = ["OverlayError", "SETTING_IDS", "load_overlay", "overlay_file", "qualified_name", "to_bundle_overrides"]

#: TrainerConfig field -> bundle id
SETTING_IDS = {
    "num_epochs": "epochs", "iterations_per_epoch": "iterations_per_epoch", "initial_lr": "initial_lr",
    "weight_decay": "weight_decay", "batch_size": "batch_size", "patch_size": "patch_size",
    "oversample_foreground_percent": "oversample_foreground_percent", "enable_deep_supervision": "deep_supervision",
    "mirror_axes": "mirror_axes", "val_every": "val_interval", "augmentation_device": "augmentation_device",
}
_TRAINERS = TEMPLATE_BUNDLE / "configs" / "trainers"
_DICE_DEFAULTS = {"batch_dice": "@batch_dice", "smooth": 1.0e-05, "do_bg": False,
                  "ddp": "$nnunet_training.is_distributed()"}


class OverlayError(ValueError):
    """An overlay file is missing or is not a mapping of bundle ids."""


def overlay_file(overlay: str | os.PathLike) -> Path:
    """The overlay's path: a file, or the name of a built-in one (``kiunet`` -> ``configs/trainers/kiunet.yaml``)."""
    path = Path(overlay)
    if path.suffix in (".yaml", ".yml", ".json") and path.is_file():
        return path
    builtin = _TRAINERS / f"{overlay}.yaml"
    if builtin.is_file():
        return builtin
    raise OverlayError(f"trainer overlay {overlay!r} is neither a file nor one of {sorted(p.stem for p in _TRAINERS.glob('*.yaml'))}")


def load_overlay(overlay: str | os.PathLike) -> dict[str, Any]:
    """The overlay's ids and values, in file order."""
    path = overlay_file(overlay)
    content = yaml.safe_load(path.read_text()) or {}
    if not isinstance(content, dict):
        raise OverlayError(f"{path} must hold a mapping of bundle ids to values")
    return content


def qualified_name(obj: Any) -> str:
    """``package.module.Name`` of a class or function, as a bundle ``_target_``.

    Raises:
        OverlayError: for an object defined in ``__main__`` or locally (a bundle could not import it).
    """
    name = f"{obj.__module__}.{obj.__qualname__}"
    if obj.__module__ == "__main__" or "<locals>" in obj.__qualname__:
        raise OverlayError(f"{obj.__qualname__} is defined in {'a function' if '<locals>' in name else '__main__'}: "
                           f"the run's bundle could not import it; define it in a module")
    return name


def _target(value: Any) -> str:
    if isinstance(value, str):
        return value.replace(":", ".")
    return qualified_name(value)


def _offered(factory: Any, defaults: dict[str, Any], explicit: dict[str, Any]) -> dict[str, Any]:
    """``defaults`` the factory accepts, with ``explicit`` merged over them (as ``TrainerConfig`` builds)."""
    accepted = accepted_keywords(factory)
    offered = {k: v for k, v in defaults.items() if accepted is None or k in accepted}
    return deep_merge(offered, describe_arguments(explicit))


def _loss_targets(loss_class: Any) -> dict[str, Any]:
    """The loader's precomputed maps for blob / region Dice losses (as the built-in overlays declare them)."""
    if not isinstance(loss_class, type):
        return {}
    if issubclass(loss_class, (DC_and_Blob_CE_loss, BlobDiceLoss)):
        return {k: v for k, v in load_overlay("blob_dice").items() if k.startswith("train#")}
    if issubclass(loss_class, (DC_and_Region_CE_loss, RegionDiceLoss)):
        return {k: v for k, v in load_overlay("region_dice").items() if k.startswith("train#")}
    return {}


def to_bundle_overrides(config: TrainerConfig, trainer_name: str, regions: bool = False) -> dict[str, Any]:
    """The bundle overrides that make ``train.yaml`` train what ``config`` describes.

    Args:
        config: the trainer config.
        trainer_name: its ``-tr`` name (a loss *instance* is looked up by it when the bundle runs).
        regions: the dataset is region-based (the default loss keywords are Dice + BCE's).

    Returns:
        ``{bundle id: value}`` in merge order.

    Raises:
        OverlayError: for a class the bundle could not import (defined in ``__main__``).
    """
    out: dict[str, Any] = {}
    if config.overlay is not None:
        out.update(load_overlay(config.overlay))
    if config.architecture is not None and not (config.overlay and "network_def#_target_" in out):
        out["network_def#_target_"] = _target(config.architecture)
    for key, value in describe_arguments(
            {k: v for k, v in config.architecture_kwargs.items() if k != "deep_supervision"}).items():
        out.setdefault(f"network_def#{key}", value)
    if config.loss is not None and "loss#loss" not in out:
        if not isinstance(config.loss, nn.Module):
            factory = resolve_reference(config.loss) if isinstance(config.loss, str) else config.loss
            if regions:
                defaults = {"bce_kwargs": {}, "soft_dice_kwargs": {**_DICE_DEFAULTS, "do_bg": True},
                            "use_ignore_label": "$@ignore_label is not None"}
            else:
                defaults = {"soft_dice_kwargs": dict(_DICE_DEFAULTS), "ce_kwargs": {}, "weight_ce": 1, "weight_dice": 1,
                            "ignore_label": "@ignore_label"}
            out["loss#loss"] = {"_target_": _target(config.loss), **_offered(factory, defaults, config.loss_kwargs)}
            out.update(_loss_targets(factory))
        else:  # a ready loss instance cannot be written as _target_ and arguments: the bundle looks it up by name
            out["loss#loss"] = f"$nnunet_training.registered_loss({trainer_name!r})"
            out.update(_loss_targets(type(config.loss)))
    if config.optimizer is not None:
        factory = resolve_reference(config.optimizer)
        out["optimizer"] = {"_target_": _target(config.optimizer), "params": "$@network.parameters()",
                            **_offered(factory, {"lr": "@initial_lr", "weight_decay": "@weight_decay",
                                                 "momentum": "@momentum", "nesterov": True}, {})}
    if config.lr_scheduler is not None:
        factory = resolve_reference(config.lr_scheduler)
        out["lr_scheduler"] = {"_target_": _target(config.lr_scheduler), "optimizer": "@optimizer",
                               **_offered(factory, {
                                   "initial_lr": "$@optimizer.defaults['lr']", "exponent": "@lr_exponent",
                                   "max_steps": "$@epochs * (@iterations_per_epoch if @lr_schedule == 'per_iteration' "
                                                "else 1)"}, {})}
    for field_name, bundle_id in SETTING_IDS.items():
        value = getattr(config, field_name)
        if value is not None:
            out[bundle_id] = list(value) if isinstance(value, tuple) else value
    return out
