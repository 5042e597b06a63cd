"""A :class:`TrainerConfig` as overrides of the run's bundle: the one configuration system is MONAI's.

``-tr NAME`` merges ``to_bundle_overrides(config)`` over ``train.yaml`` exactly as a second config file would be
merged (``network_def#_target_: ...``, ``loss#loss: {...}``, ``optimizer: {...}``, ``epochs: ...``); the fold's
``train.yaml`` holds them (a whole component in place of the template's, ``#`` ids under a ``# >>> -tr NAME``
heading), so the file read alone names every component. Every component is written as its ``_target_`` (the public
path it is importable from) and arguments, a loss instance too (its class and recorded constructor arguments): the
bundle runs in a fresh process without the module that registered the config.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import yaml

from monai_nnunet.bundle import TEMPLATE_BUNDLE
from monai_nnunet.losses import BlobDiceLoss, DC_and_Blob_CE_loss, DC_and_Region_CE_loss, RegionDiceLoss
from monai_nnunet.networks.config import describe_arguments
from monai_nnunet.training.configs.trainer_config import (
    OPTIMIZER_DEFAULTS,
    SCHEDULER_DEFAULTS,
    TrainerConfig,
    accepted_keywords,
    check_keywords,
    deep_merge,
    public_name,
    resolve_reference,
)

__all__ = ["OverlayError", "SETTING_IDS", "instance_component", "load_overlay", "overlay_file", "qualified_name",
           "to_bundle_overrides"]

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
#: what the bundle offers an optimiser and a scheduler, by the names of OPTIMIZER_DEFAULTS / SCHEDULER_DEFAULTS
_OPTIMIZER_VALUES = dict(zip(OPTIMIZER_DEFAULTS, ("@initial_lr", "@weight_decay", "@momentum", True), strict=True))
_SCHEDULER_VALUES = dict(zip(SCHEDULER_DEFAULTS, (
    "$@optimizer.defaults['lr']", "@lr_exponent",
    "$@epochs * (@iterations_per_epoch if @lr_schedule == 'per_iteration' else 1)"), strict=True))


class OverlayError(ValueError):
    """An overlay file is missing or is not a mapping of bundle ids, or a trainer config names something the run's
    bundle cannot write (a class it could not import, a loss instance whose arguments are not known)."""


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
    """The public ``package.module.Name`` of a class or function, as a bundle ``_target_``: the shortest module path
    it is importable from under its name (``torch.optim.AdamW``, not ``torch.optim.adamw.AdamW``).

    Raises:
        OverlayError: for an object defined in ``__main__`` or locally, or one its module does not expose (a bundle
            could not import it).
    """
    name = public_name(obj)
    if name is not None:
        return name
    qualname = getattr(obj, "__qualname__", repr(obj))
    if getattr(obj, "__module__", None) == "__main__" or "<locals>" in qualname:
        where = "a function" if "<locals>" in qualname else "__main__"
        raise OverlayError(f"{qualname} is defined in {where}: the run's bundle could not import it; define it in a "
                           f"module")
    raise OverlayError(f"{getattr(obj, '__module__', '?')}.{qualname} cannot be imported by that name, so the run's "
                       f"bundle could not name it; use a class or function its module defines at the top level")


def _component(field_name: str, value: Any) -> tuple[Any, str, dict[str, Any]]:
    """``(factory, _target_, keywords)`` of a class, function, reference string or ``functools.partial``.

    Raises:
        OverlayError: naming the field, for a reference that cannot be imported or a class a bundle cannot name.
    """
    try:
        factory = resolve_reference(value)
    except (ImportError, AttributeError, ValueError) as err:
        raise OverlayError(f"{field_name}: {value!r} cannot be imported: {err}") from None
    keywords: dict[str, Any] = {}
    inner = factory
    if isinstance(factory, functools.partial):
        keywords, inner = dict(factory.keywords), factory.func
    try:
        target = qualified_name(inner)
    except OverlayError as err:
        raise OverlayError(f"{field_name}: {err}") from None
    return factory, target, keywords


def _bundle_value(value: Any, where: str, hint: str) -> Any:
    """A recorded constructor argument as bundle data; tensors as ``$torch.tensor(...)``, modules as components.

    Raises:
        OverlayError: for a value a bundle file cannot hold.
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Mapping):
        return {str(k): _bundle_value(v, f"{where}[{k!r}]", hint) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_bundle_value(v, f"{where}[{i}]", hint) for i, v in enumerate(value)]
    if isinstance(value, torch.Tensor):
        return f"$torch.tensor({value.tolist()!r}, dtype={value.dtype})"
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        return value.item()  # NumPy scalars
    if isinstance(value, nn.Module):
        return instance_component(value, where, hint)
    raise OverlayError(f"{where} is a {type(value).__name__}, which the run's bundle cannot hold; {hint}")


def instance_component(instance: nn.Module, where: str = "loss", hint: str | None = None) -> dict[str, Any]:
    """A module instance as a bundle component: its class as ``_target_`` and the constructor arguments it recorded.

    The losses of :mod:`monai_nnunet.losses` (and the networks) record their arguments in ``init_kwargs``; a class
    of your own does so by setting ``self.init_kwargs`` to its arguments in ``__init__``. A class whose constructor
    takes no arguments needs none.

    Args:
        instance: e.g. ``DC_and_Blob_CE_loss({"batch_dice": True}, {})``.
        where: what the instance is, for messages (``loss``).
        hint: the message's advice (default: pass the class and ``loss_kwargs``).

    Returns:
        ``{"_target_": "package.module.Class", **arguments}``.

    Raises:
        OverlayError: for an instance whose arguments are not known or cannot be written into a bundle.
    """
    cls = type(instance)
    name = f"{cls.__module__}.{cls.__qualname__}"
    if hint is None:
        hint = f"pass the class and loss_kwargs instead (TrainerConfig(loss={cls.__name__}, loss_kwargs={{...}}))"
    recorded = getattr(instance, "init_kwargs", None)
    if not isinstance(recorded, Mapping):
        try:
            params = [p for p in inspect.signature(cls).parameters.values()
                      if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        except (TypeError, ValueError):
            params = [None]
        if params:
            raise OverlayError(f"{where}: a {name} instance does not record its constructor arguments (init_kwargs), "
                               f"so the run's bundle cannot rebuild it; {hint}")
        recorded = {}
    try:
        target = qualified_name(cls)
    except OverlayError as err:
        raise OverlayError(f"{where}: {err}") from None
    return {"_target_": target, **{str(k): _bundle_value(v, f"{where} argument {k!r}", hint)
                                   for k, v in recorded.items()}}


def _scheduled_component(field_name: str, value: Any, kwargs: Mapping[str, Any], first: Mapping[str, Any],
                         defaults: Mapping[str, Any], drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """The optimiser's or scheduler's block: ``_target_``, the argument the trainer passes, the offered defaults
    it takes, and the partial's and ``*_kwargs`` keywords over them (but those in ``drop``: the default's stays).

    Raises:
        OverlayError: naming the field, for a keyword it does not take or a required one nobody passes.
    """
    factory, target, keywords = _component(field_name, value)
    explicit = {**keywords, **kwargs}
    try:
        check_keywords(field_name, factory, explicit, next(iter(first)), tuple(defaults))
    except ValueError as err:
        raise OverlayError(str(err)) from None
    explicit = {k: v for k, v in explicit.items() if k not in drop}
    return {"_target_": target, **first, **_offered(factory, dict(defaults), explicit)}


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
        trainer_name: its ``-tr`` name (for messages).
        regions: the dataset is region-based (the default loss keywords are Dice + BCE's).

    Returns:
        ``{bundle id: value}`` in merge order; no value needs the registry or the module that registered the config.

    Raises:
        OverlayError: one line naming the ``-tr`` name and the field, for a class the bundle could not import
            (defined in ``__main__``), a reference that cannot be imported, an optimiser or scheduler keyword its
            class does not take (or a required one missing), or a loss instance whose constructor arguments are not
            known (pass the class and ``loss_kwargs`` instead).
    """
    try:
        return _overrides(config, regions)
    except OverlayError as err:
        raise OverlayError(f"-tr {trainer_name}: {err}") from None


def _overrides(config: TrainerConfig, regions: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if config.overlay is not None:
        out.update(load_overlay(config.overlay))
    architecture_keywords: dict[str, Any] = {}
    if config.architecture is not None and not (config.overlay and "network_def#_target_" in out):
        _, out["network_def#_target_"], architecture_keywords = _component("architecture", config.architecture)
    for key, value in describe_arguments(
            {k: v for k, v in {**architecture_keywords, **config.architecture_kwargs}.items()
             if k != "deep_supervision"}).items():
        out.setdefault(f"network_def#{key}", value)
    if config.loss is not None and "loss#loss" not in out:
        if isinstance(config.loss, nn.Module):  # a ready instance: its class and recorded arguments
            out["loss#loss"] = instance_component(config.loss)
            out.update(_loss_targets(type(config.loss)))
        else:
            factory, target, keywords = _component("loss", config.loss)
            if regions:
                defaults = {"bce_kwargs": {}, "soft_dice_kwargs": {**_DICE_DEFAULTS, "do_bg": True},
                            "use_ignore_label": "$@ignore_label is not None"}
            else:
                defaults = {"soft_dice_kwargs": dict(_DICE_DEFAULTS), "ce_kwargs": {}, "weight_ce": 1, "weight_dice": 1,
                            "ignore_label": "@ignore_label"}
            out["loss#loss"] = {"_target_": target, **_offered(factory, defaults,
                                                               deep_merge(keywords, config.loss_kwargs))}
            out.update(_loss_targets(getattr(factory, "func", factory)))
    if config.optimizer is not None:
        # an lr of the partial or optimizer_kwargs is the config's initial_lr (TrainerConfig sets it): the optimiser
        # is built with lr "@initial_lr", so the rate it has is the one the run parameters and checkpoints record
        out["optimizer"] = _scheduled_component("optimizer", config.optimizer, config.optimizer_kwargs,
                                                {"params": "$@network.parameters()"}, _OPTIMIZER_VALUES, drop=("lr",))
    if config.lr_scheduler is not None:
        out["lr_scheduler"] = _scheduled_component("lr_scheduler", config.lr_scheduler, config.lr_scheduler_kwargs,
                                                   {"optimizer": "@optimizer"}, _SCHEDULER_VALUES)
    for field_name, bundle_id in SETTING_IDS.items():
        value = getattr(config, field_name)
        if value is not None:
            out[bundle_id] = list(value) if isinstance(value, tuple) else value
    return out
