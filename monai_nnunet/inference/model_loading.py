"""A trained model's results folder -> networks, plans, configuration, dataset description and mirror axes.

The folder is the one the trainer writes (``$nnUNet_results/DatasetXXX_Name/TRAINER__PLANS__CONFIG``): ``plans.json``,
``dataset.json`` and ``fold_N/checkpoint_*.pth``. Checkpoints of this package (our network's state dict) and of
nnU-Net v2 (``PlainConvUNet`` state dict, ``init_args``) are both accepted; nnU-Net weights go through
:func:`monai_nnunet.networks.nnunet_to_monai_state_dict`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from monai_nnunet import paths
from monai_nnunet.dataset.dataset_json import DatasetDescription
from monai_nnunet.dataset.naming import DatasetNotFoundError, resolve_dataset_name
from monai_nnunet.networks.builder import build_network
from monai_nnunet.networks.full_resolution import full_resolution_network
from monai_nnunet.networks.config import (
    NetworkConfigError,
    build_network_from_config,
    check_plain_arguments,
    describe_arguments,
    network_config,
    unwrapped_state_dict,
)
from monai_nnunet.networks.nnunet_weights import NNUNET_COMPATIBLE_NETWORKS, nnunet_to_monai_state_dict
from monai_nnunet.networks.plans_architecture import read_architecture
from monai_nnunet.networks.residual_encoder_unet import ResidualEncoderUNet
from monai_nnunet.planning.cascade import network_input_channels
from monai_nnunet.planning.plans import ConfigurationManager, PlansManager
from monai_nnunet.utils.checkpoints import CheckpointError
from monai_nnunet.utils.checkpoints import load_checkpoint as safe_load_checkpoint
from monai_nnunet.utils.files import load_json

__all__ = [
    "DEFAULT_FOLDS",
    "ModelLoadingError",
    "TrainedModel",
    "build_inference_network",
    "inference_network_config",
    "network_from_checkpoint",
    "recorded_network_def",
    "load_checkpoint",
    "load_trained_model",
    "model_output_folder",
    "parse_folds",
    "weights_in_network_layout",
]

#: nnU-Net's default folds for prediction.
DEFAULT_FOLDS = (0, 1, 2, 3, 4)



class ModelLoadingError(FileNotFoundError):
    """A results folder, fold folder or checkpoint is missing, or a checkpoint does not fit its plans."""


@dataclass
class TrainedModel:
    """Everything prediction needs from a trained model.

    Attributes:
        plans: the plans the model was trained with.
        configuration: its configuration (``inherits_from`` resolved).
        configuration_name: e.g. ``"3d_fullres"``.
        dataset: the dataset description (labels, regions, channels, file ending).
        networks: one network per fold, in eval mode with deep supervision off, on the CPU.
        mirror_axes: spatial axes mirrored for test-time augmentation (``()``: none).
        trainer_name: the ``-tr`` name the model was trained with.
        folds: the folds, as given (``0``... or ``"all"``).
        model_folder: the results folder, when loaded from one.
        network_def: the networks' class and arguments (deep supervision off), as the checkpoint recorded them.
        training: the first fold's training record (trainer settings, epochs trained), for the bundle's README.
    """

    plans: PlansManager
    configuration: ConfigurationManager
    configuration_name: str
    dataset: DatasetDescription
    networks: list[nn.Module]
    mirror_axes: tuple[int, ...]
    trainer_name: str = "nnUNetTrainer"
    folds: list = field(default_factory=list)
    model_folder: Path | None = None
    network_def: dict | None = None
    training: dict = field(default_factory=dict)

    @property
    def num_segmentation_heads(self) -> int:
        return self.dataset.num_segmentation_heads


def parse_folds(folds: Sequence[int | str] | int | str | None) -> list[int | str]:
    """Normalises ``-f`` values: ``0``, ``"0"`` -> ``0``; ``"all"`` stays ``"all"``; ``None`` -> the five folds.

    Raises:
        ValueError: for a value that is neither an integer nor ``"all"``.
    """
    if folds is None:
        return list(DEFAULT_FOLDS)
    if isinstance(folds, (int, str)):
        folds = [folds]
    out: list[int | str] = []
    for f in folds:
        if isinstance(f, str) and f == "all":
            out.append("all")
            continue
        try:
            out.append(int(f))
        except (TypeError, ValueError):
            raise ValueError(f"fold {f!r} is neither an integer nor 'all'") from None
    if not out:
        raise ValueError("no folds given")
    return out


def model_output_folder(dataset: int | str, trainer: str, plans_identifier: str, configuration: str) -> Path:
    """``$nnUNet_results/DatasetXXX_Name/TRAINER__PLANS__CONFIG`` of a trained model, which must exist.

    Raises:
        ModelLoadingError: when the dataset has no results folder or the model folder is missing; the message lists
            the datasets or the trained models that exist.
        DatasetNotFoundError: when no dataset has that id (the message lists the datasets with results).
        MissingEnvironmentVariableError: when ``nnUNet_results`` is unset.
    """
    from monai_nnunet.training.configs import trainer_output_folder_name

    results = paths.nnunet_results()
    existing = sorted(p.name for p in results.iterdir() if p.is_dir()) if results.is_dir() else []
    try:
        name = resolve_dataset_name(dataset)
    except DatasetNotFoundError as e:
        raise DatasetNotFoundError(
            f"{e}. Datasets with trained models in {results}: {', '.join(existing) if existing else '(none)'}"
        ) from None
    dataset_folder = results / name
    if not dataset_folder.is_dir():
        raise ModelLoadingError(
            f"{dataset_folder} does not exist: no model of {name} has been trained. Datasets with results in "
            f"{results}: {', '.join(existing) if existing else '(none)'}"
        )
    folder = dataset_folder / trainer_output_folder_name(trainer, plans_identifier, configuration)
    if not folder.is_dir():
        existing = sorted(p.name for p in dataset_folder.iterdir() if p.is_dir() and p.name.count("__") == 2)
        raise ModelLoadingError(
            f"{folder} does not exist (trainer {trainer!r}, plans {plans_identifier!r}, configuration "
            f"{configuration!r}). Trained models of {name}: {', '.join(existing) if existing else '(none)'}"
        )
    return folder


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Loads a checkpoint on the CPU as data (``weights_only=True``; see :mod:`monai_nnunet.utils.checkpoints`).

    Raises:
        ModelLoadingError: when the file is missing, unreadable, needs code to load, or is not a checkpoint.
    """
    try:
        return safe_load_checkpoint(path, map_location="cpu")
    except CheckpointError as e:
        raise ModelLoadingError(str(e)) from None


def _is_nnunet_layout(state: Mapping[str, torch.Tensor]) -> bool:
    return any(k.startswith("encoder.stages.") or k.startswith("decoder.seg_layers.") for k in state)


def weights_in_network_layout(state: Mapping[str, torch.Tensor], network: nn.Module, source: str = "checkpoint"
                              ) -> dict[str, torch.Tensor]:
    """A state dict that ``network`` loads strictly: ours as it is, nnU-Net's ``PlainConvUNet`` /
    ``ResidualEncoderUNet`` layout converted (for the residual-encoder U-Net, which shares nnU-Net's parameter names,
    that drops nnU-Net's alias keys).

    Args:
        state: ``network_weights`` of a checkpoint (DDP ``module.`` / compile ``_orig_mod.`` prefixes allowed).
        network: the network built from the checkpoint's plans.
        source: named in error messages.

    Raises:
        ModelLoadingError: when the weights do not fit the network (other plans, other architecture).
    """
    state = unwrapped_state_dict(state)
    if _is_nnunet_layout(state) and (isinstance(network, ResidualEncoderUNet)
                                     or not _is_nnunet_layout(network.state_dict())):
        if not isinstance(network, NNUNET_COMPATIBLE_NETWORKS):
            raise ModelLoadingError(
                f"{source} holds nnU-Net PlainConvUNet weights, but the trainer builds {type(network).__name__}"
            )
        try:
            return nnunet_to_monai_state_dict(state, network)
        except (KeyError, ValueError) as e:
            raise ModelLoadingError(f"{source}: nnU-Net weights do not fit the plans' network: {e}") from e
    expected = network.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if tuple(expected[k].shape) != tuple(state[k].shape))
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[:3]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[:3]})")
        if wrong:
            k = wrong[0]
            parts.append(f"{len(wrong)} of another shape (e.g. {k}: {tuple(state[k].shape)} in the checkpoint, "
                         f"{tuple(expected[k].shape)} in the network)")
        raise ModelLoadingError(
            f"{source} does not fit the network {type(network).__name__} built from its plans: " + "; ".join(parts)
        )
    return state


def _eval_without_deep_supervision(network: nn.Module) -> nn.Module:
    # the inference form: one full-resolution tensor, TorchScript-compatible, the same state-dict keys
    return full_resolution_network(network).eval()


def build_inference_network(configuration: ConfigurationManager, num_input_channels: int, num_outputs: int,
                            network_def: Mapping[str, Any] | None = None) -> nn.Module:
    """The trained network without weights, in eval mode with deep supervision off.

    Args:
        configuration: the plans configuration (builds nnU-Net's plain U-Net when ``network_def`` is ``None``).
        num_input_channels: image channels.
        num_outputs: segmentation heads.
        network_def: the class and arguments a checkpoint recorded (its ``network_def``): the network is built
            from them, never from a trainer name.

    Raises:
        ModelLoadingError: when the recorded network cannot be built here.
    """
    if network_def is None:
        return _eval_without_deep_supervision(build_network(configuration, num_input_channels, num_outputs,
                                                            deep_supervision=False))
    try:
        network = build_network_from_config(_without_deep_supervision(network_def))
    except NetworkConfigError as e:
        raise ModelLoadingError(str(e)) from None
    return _eval_without_deep_supervision(network)


def _legacy_network_def(checkpoint: Mapping[str, Any], configuration: ConfigurationManager, channels: int,
                        outputs: int) -> dict | None:
    """Checkpoints of earlier versions record the trainer config (``trainer_config.architecture`` as
    ``module:Class`` and its ``architecture_kwargs``) instead of ``network_def``."""
    config = checkpoint.get("trainer_config")
    architecture = config.get("architecture") if isinstance(config, Mapping) else None
    if not isinstance(architecture, str):
        return None
    plan = read_architecture(configuration)
    kwargs = describe_arguments(plan.arch_kwargs)
    kwargs.update(describe_arguments(config.get("architecture_kwargs") or {}))
    kwargs.pop("deep_supervision", None)
    return {"_target_": architecture.replace(":", "."), "input_channels": channels, "num_classes": outputs, **kwargs}


def network_from_checkpoint(checkpoint: Mapping[str, Any], configuration: ConfigurationManager, channels: int,
                            outputs: int) -> nn.Module:
    """The network a checkpoint's weights belong to: its recorded ``network_def`` (plain values, a class from a
    trusted network module); nnU-Net v2 checkpoints (``PlainConvUNet`` / ``ResidualEncoderUNet`` weights) and
    checkpoints without a record get the plans' own network.

    Raises:
        ModelLoadingError: the record is not plain data, names an untrusted class, or cannot be built.
    """
    spec = recorded_network_def(checkpoint, configuration, channels, outputs)
    return build_inference_network(configuration, channels, outputs, spec)


def recorded_network_def(checkpoint: Mapping[str, Any], configuration: ConfigurationManager, channels: int,
                         outputs: int) -> dict | None:
    """The ``network_def`` a checkpoint records (earlier versions: from its trainer config), checked to be plain
    data; ``None`` for nnU-Net v2 checkpoints and checkpoints without a record (the plans' network).

    Raises:
        ModelLoadingError: the record holds expressions, references, components or non-JSON values.
    """
    spec = checkpoint.get("network_def")
    if not isinstance(spec, Mapping) and _is_nnunet_layout(unwrapped_state_dict(checkpoint["network_weights"])):
        return None
    if not isinstance(spec, Mapping):
        spec = _legacy_network_def(checkpoint, configuration, channels, outputs)
    if spec is None:
        return None
    try:
        check_plain_arguments(spec)
    except NetworkConfigError as e:
        raise ModelLoadingError(str(e)) from None
    return dict(spec)


def inference_network_config(network: nn.Module, recorded: Mapping[str, Any] | None = None) -> dict | None:
    """``network_def`` of a loaded network for an exported bundle (deep supervision off): the checkpoint's record,
    else the network's own description (this package's networks)."""
    spec = dict(recorded) if recorded is not None else network_config(network)
    return None if spec is None else _without_deep_supervision(spec)


def _without_deep_supervision(spec: Mapping[str, Any]) -> dict:
    """The record with deep supervision off for this package's networks, whose heads exist either way; another
    class (MONAI's ``DynUNet`` builds its heads only with ``deep_supervision=True``) is built as recorded, and its
    eval mode gives the one full-resolution output."""
    spec = dict(spec)
    if str(spec.get("_target_", "")).startswith("monai_nnunet.") and "deep_supervision" in spec:
        spec["deep_supervision"] = False
    return spec


def _checkpoint_configuration(checkpoint: Mapping[str, Any], model_folder: Path | None) -> str:
    for container in (checkpoint, checkpoint.get("init") or {}, checkpoint.get("init_args") or {}):
        value = container.get("configuration") if isinstance(container, Mapping) else None
        if isinstance(value, str):
            return value
    if model_folder is not None and model_folder.name.count("__") == 2:
        return model_folder.name.split("__")[2]
    raise ModelLoadingError("the checkpoint does not name its configuration ('configuration' or init['configuration'])")


def _mirror_axes(checkpoint: Mapping[str, Any], configuration: ConfigurationManager) -> tuple[int, ...]:
    axes = checkpoint.get("inference_allowed_mirroring_axes")
    if axes is None:
        return tuple(range(len(configuration.patch_size)))
    return tuple(int(a) for a in axes)


def _fold_folder(model_folder: Path, fold: int | str, checkpoint_name: str) -> Path:
    folder = model_folder / f"fold_{fold}"
    if not folder.is_dir():
        existing = sorted(p.name for p in model_folder.iterdir() if p.is_dir() and p.name.startswith("fold_"))
        raise ModelLoadingError(
            f"fold {fold} of {model_folder.name} has not been trained: {folder} does not exist. Fold folders present: "
            f"{', '.join(existing) if existing else '(none)'}; choose folds with -f"
        )
    checkpoint = folder / checkpoint_name
    if not checkpoint.is_file():
        existing = sorted(p.name for p in folder.glob("*.pth"))
        raise ModelLoadingError(
            f"{checkpoint} does not exist (fold {fold}). Checkpoints in {folder.name}: "
            f"{', '.join(existing) if existing else '(none: is training still running?)'}; choose one with -chk"
        )
    return checkpoint


def load_trained_model(
    model_folder: str | os.PathLike,
    folds: Sequence[int | str] | int | str | None = DEFAULT_FOLDS,
    checkpoint_name: str = "checkpoint_final.pth",
) -> TrainedModel:
    """Loads the networks of the given folds from a results folder.

    Args:
        model_folder: ``.../DatasetXXX_Name/TRAINER__PLANS__CONFIG`` with ``plans.json``, ``dataset.json`` and
            ``fold_N/<checkpoint_name>``.
        folds: fold numbers and/or ``"all"`` (``None``: 0-4).
        checkpoint_name: ``checkpoint_final.pth`` (default), ``checkpoint_best.pth``, ...

    Returns:
        The :class:`TrainedModel` (networks on the CPU, eval mode).

    Raises:
        ModelLoadingError: a folder, fold, checkpoint or JSON file is missing, or the weights do not fit the plans;
            the message names it and lists what exists.
    """
    model_folder = Path(model_folder)
    if not model_folder.is_dir():
        raise ModelLoadingError(f"model folder {model_folder} does not exist")
    for name in ("plans.json", "dataset.json"):
        if not (model_folder / name).is_file():
            raise ModelLoadingError(
                f"{model_folder / name} is missing: {model_folder} is not a complete results folder"
            )
    plans = PlansManager(model_folder / "plans.json")
    dataset_json = load_json(model_folder / "dataset.json")
    return _trained_model_from_checkpoints(
        [(f, load_checkpoint(_fold_folder(model_folder, f, checkpoint_name))) for f in parse_folds(folds)],
        plans, dataset_json, model_folder, checkpoint_name,
    )


def _trained_model_from_checkpoints(
    checkpoints: Sequence[tuple[int | str, Mapping[str, Any]]],
    plans: PlansManager | None,
    dataset_json: Mapping[str, Any] | None,
    model_folder: Path | None,
    checkpoint_name: str = "checkpoint",
) -> TrainedModel:
    if not checkpoints:
        raise ModelLoadingError("no checkpoint given")
    first = checkpoints[0][1]
    init = first.get("init_args") or first.get("init") or {}
    if plans is None:
        plans_dict = first.get("plans") or init.get("plans")
        if plans_dict is None:
            raise ModelLoadingError("the checkpoint holds no plans; give them explicitly")
        plans = PlansManager(plans_dict)
    if dataset_json is None:
        dataset_json = first.get("dataset_json") or init.get("dataset_json")
        if dataset_json is None:
            raise ModelLoadingError("the checkpoint holds no dataset.json; give it explicitly")
    dataset = DatasetDescription(dict(dataset_json), source=str(model_folder / "dataset.json") if model_folder
                                 else "dataset.json")
    configuration_name = _checkpoint_configuration(first, model_folder)
    configuration = plans.get_configuration(configuration_name)
    trainer_name = first.get("trainer_name") or "nnUNetTrainer"
    networks, records = [], []
    channels = network_input_channels(configuration, dataset)
    for fold, checkpoint in checkpoints:
        source = (str(model_folder / f"fold_{fold}" / checkpoint_name) if model_folder
                  else f"fold {fold} {checkpoint_name}")
        try:
            records.append(recorded_network_def(checkpoint, configuration, channels, dataset.num_segmentation_heads))
            network = build_inference_network(configuration, channels, dataset.num_segmentation_heads, records[-1])
        except ModelLoadingError as e:
            raise ModelLoadingError(f"{source}: {e}") from None
        network.load_state_dict(weights_in_network_layout(checkpoint["network_weights"], network, source))
        networks.append(network.eval())
    return TrainedModel(
        network_def=inference_network_config(networks[0], records[0]),
        plans=plans, configuration=configuration, configuration_name=configuration_name, dataset=dataset,
        networks=networks, mirror_axes=_mirror_axes(first, configuration), trainer_name=str(trainer_name),
        folds=[f for f, _ in checkpoints], model_folder=model_folder,
        training=_training_record(first),
    )


def _training_record(checkpoint: Mapping[str, Any]) -> dict:
    """What the first fold's checkpoint says about its training (plain values only): its ``init`` record (ours) or
    ``init_args`` (nnU-Net's), and the epochs trained."""
    record = checkpoint.get("init") or checkpoint.get("init_args") or {}
    out = {k: v for k, v in record.items() if isinstance(v, (str, int, float, bool, list, tuple)) or v is None} \
        if isinstance(record, Mapping) else {}
    if isinstance(checkpoint.get("current_epoch"), int):
        out["epochs_trained"] = checkpoint["current_epoch"]
    return out
