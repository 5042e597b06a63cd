"""The components of the bundle's ``configs/inference.yaml``: the network from the plans, the folds as one
averaging module, and the evaluator's iteration and writer. The preprocessing, sliding window (with mirroring) and
export are ``nnUNetv2_predict``'s own, so a bundle predicts what ``nnUNetv2_predict`` predicts for the same weights.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from ignite.engine import Engine, Events
from torch import nn

from monai_nnunet.dataset.dataset_json import DatasetDescription, load_dataset_json
from monai_nnunet.inference.cases import InputCaseError
from monai_nnunet.inference.export import export_prediction
from monai_nnunet.inference.model_loading import (
    ModelLoadingError,
    TrainedModel,
    build_inference_network,
    inference_network_config,
    load_checkpoint,
    network_from_checkpoint,
    weights_in_network_layout,
)
from monai_nnunet.planning.plans import ConfigurationManager, PlansManager
from monai_nnunet.utils.files import load_json

__all__ = ["FoldEnsemble", "PredictionWriter", "fold_ensemble", "network_from_configuration", "network_from_plans",
           "prediction_iteration", "single_case", "trained_model_from_checkpoints"]


def _plans(plans: str | os.PathLike | Mapping) -> PlansManager:
    return PlansManager(dict(plans)) if isinstance(plans, Mapping) else PlansManager(plans)


def _dataset(dataset_json: str | os.PathLike | Mapping) -> DatasetDescription:
    if isinstance(dataset_json, Mapping):
        return DatasetDescription(dict(dataset_json))
    return load_dataset_json(dataset_json)


def network_from_plans(plans: str | os.PathLike | Mapping, dataset_json: str | os.PathLike | Mapping,
                       configuration: str, trainer_name: str = "nnUNetTrainer") -> nn.Module:
    """nnU-Net's plain U-Net (deep supervision off, eval mode) for a plans configuration, without weights.

    Args:
        plans: plans file or dict.
        dataset_json: dataset.json file or dict (channels and labels decide input and output channels).
        configuration: the plans configuration.
        trainer_name: kept for bundles of earlier versions; unused.
    """
    dataset = _dataset(dataset_json)
    return build_inference_network(_plans(plans).get_configuration(configuration), dataset.num_channels,
                                   dataset.num_segmentation_heads)


def network_from_configuration(configuration: Mapping[str, Any], num_input_channels: int, num_outputs: int,
                               trainer_name: str = "nnUNetTrainer") -> nn.Module:
    """nnU-Net's plain U-Net (deep supervision off, eval mode) from a plans configuration dict, without weights:
    the ``network_def`` of bundles exported by earlier versions (bundles now name the network class itself)."""
    return build_inference_network(ConfigurationManager(dict(configuration)), int(num_input_channels),
                                   int(num_outputs))


class FoldEnsemble(nn.Module):
    """The mean logits of several networks (one per fold); ``(B, C, *spatial)`` -> ``(B, K, *spatial)``."""

    def __init__(self, networks: Sequence[nn.Module]):
        super().__init__()
        if not networks:
            raise ValueError("FoldEnsemble needs at least one network")
        self.networks = nn.ModuleList(networks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = None
        for network in self.networks:
            out = network(x)
            out = out[0] if isinstance(out, (list, tuple)) else out
            total = out.clone() if total is None else total.add_(out)
        return total / len(self.networks)


def _state_dict(file: str | os.PathLike) -> dict:
    state = torch.load(file, map_location="cpu", weights_only=True)
    if isinstance(state, Mapping) and "network_weights" in state:  # a training checkpoint
        state = state["network_weights"]
    if not isinstance(state, Mapping):
        raise ValueError(f"{file} holds no state dict")
    return dict(state)


def fold_ensemble(network: nn.Module, model_files: Sequence[str | os.PathLike], device: str | torch.device = "cpu"
                  ) -> FoldEnsemble:
    """One copy of ``network`` per weights file (``models/model.pt``, ``models/model_fold_1.pt``, ... or training
    checkpoints), averaged.

    Raises:
        FileNotFoundError: a weights file is missing.
        ValueError: weights that do not fit the network (the message names the file and the layers).
    """
    if isinstance(model_files, (str, os.PathLike)):
        model_files = [model_files]
    networks = []
    for file in model_files:
        if not Path(file).is_file():
            raise FileNotFoundError(f"model weights {file} do not exist")
        net = copy.deepcopy(network)
        try:
            net.load_state_dict(_state_dict(file))
        except RuntimeError as e:
            raise ValueError(f"{file}: the weights do not fit the network built from the plans: {e}") from e
        networks.append(net.eval())
    return FoldEnsemble(networks).to(device).eval()


def _existing_file(path: Path, what: str, hint: str) -> Path:
    if path.is_file():
        return path
    present = sorted(p.name for p in path.parent.glob("*.pth" if what == "checkpoint" else "*.json")) \
        if path.parent.is_dir() else []
    raise ModelLoadingError(f"{what} {path} does not exist; {'checkpoints' if what == 'checkpoint' else 'JSON files'} "
                            f"in {path.parent}: {', '.join(present) if present else '(none)'}; {hint}")


def _mirror_axes(checkpoint: Mapping[str, Any], configuration: ConfigurationManager) -> tuple[int, ...]:
    axes = checkpoint.get("inference_allowed_mirroring_axes")
    if axes is None:  # nnU-Net's default: every spatial axis
        return tuple(range(len(configuration.patch_size)))
    return tuple(int(a) for a in axes)


def trained_model_from_checkpoints(model_files: str | os.PathLike | Sequence[str | os.PathLike],
                                   plans_file: str | os.PathLike, dataset_json_file: str | os.PathLike,
                                   configuration: str) -> TrainedModel:
    """The networks of training checkpoints as ``nnUNetv2_predict`` loads them: each checkpoint read as data, its
    network built from the checkpoint's own record (``network_def``; nnU-Net's own checkpoints: the plans' network)
    and its weights loaded strictly (nnU-Net's key layout converted). The ``inference.yaml`` of a fold folder.

    Args:
        model_files: one checkpoint or several (``fold_N/checkpoint_final.pth``, ...; their logits are averaged).
        plans_file: the plans the checkpoints were trained with (the results folder's ``plans.json``).
        dataset_json_file: the results folder's ``dataset.json``.
        configuration: the plans configuration, e.g. ``"3d_fullres"``.

    Returns:
        The :class:`~monai_nnunet.inference.TrainedModel` (networks on the CPU, eval mode, deep supervision off;
        mirror axes of the first checkpoint).

    Raises:
        ModelLoadingError: a checkpoint, the plans or dataset.json is missing (the message names it and lists the
            files present), a checkpoint cannot be read as data or its weights do not fit its network, or the
            configuration is a cascade stage (its input needs another model's predictions).
        PlansError: the plans lack the configuration.
    """
    files = [model_files] if isinstance(model_files, (str, os.PathLike)) else list(model_files)
    if not files:
        raise ModelLoadingError("model_files is empty: name at least one checkpoint")
    hint = "the bundle of a fold folder reads those of its results folder (the fold folder's parent)"
    plans = PlansManager(_existing_file(Path(plans_file), "plans", hint))
    dataset = load_dataset_json(_existing_file(Path(dataset_json_file), "dataset.json", hint))
    manager = plans.get_configuration(configuration)
    if manager.previous_stage_name is not None:
        raise ModelLoadingError(f"{configuration} is a cascade stage: its input includes the predictions of "
                                f"{manager.previous_stage_name}; predict it with nnUNetv2_predict -c {configuration}")
    checkpoints, networks = [], []
    for file in files:
        path = _existing_file(Path(file), "checkpoint", "choose another with --checkpoint NAME (or --model_files)")
        checkpoint = load_checkpoint(path)
        network = network_from_checkpoint(checkpoint, manager, dataset.num_channels, dataset.num_segmentation_heads)
        network.load_state_dict(weights_in_network_layout(checkpoint["network_weights"], network, str(path)))
        checkpoints.append(checkpoint)
        networks.append(network.eval())
    first = checkpoints[0]
    return TrainedModel(plans=plans, configuration=manager, configuration_name=configuration, dataset=dataset,
                        networks=networks, mirror_axes=_mirror_axes(first, manager),
                        trainer_name=str(first.get("trainer_name") or "nnUNetTrainer"),
                        network_def=inference_network_config(networks[0]))


def single_case(items: list) -> dict:
    """``collate_fn`` for a DataLoader with ``batch_size=1`` over whole cases (keeps properties as they are)."""
    return items[0]


def prediction_iteration(engine: Engine, batch: Mapping[str, Any]) -> dict:
    """The evaluator's iteration: the whole case through ``engine.inferer`` (sliding window with mirroring)."""
    if batch.get("error"):
        raise InputCaseError(batch["error"])
    engine.network.eval()
    with torch.no_grad():
        logits = engine.inferer(batch["data"][None], engine.network)[0]
    return {"logits": logits, "properties": batch["properties"], "case_id": batch["case_id"]}


class PredictionWriter:
    """Writes each predicted case into ``output_dir`` in its input's geometry (``nnUNetv2_predict``'s export).

    Args:
        output_dir: created if missing.
        plans, configuration, dataset_json: the model's plans, configuration name and dataset.json.
        save_probabilities: also write ``CASE.npz`` probabilities.
    """

    def __init__(self, output_dir: str | os.PathLike, plans: str | os.PathLike | Mapping, configuration: str,
                 dataset_json: str | os.PathLike | Mapping, save_probabilities: bool = False):
        self.output_dir = Path(output_dir)
        self.plans = _plans(plans)
        self.configuration = configuration
        self.dataset = _dataset(dataset_json)
        self.save_probabilities = bool(save_probabilities)
        self.written: list[Path] = []

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)

    def __call__(self, engine: Engine) -> None:
        out = engine.state.output
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.written.append(export_prediction(out["logits"].cpu().numpy(), out["properties"], self.plans,
                                              self.configuration, self.dataset, self.output_dir / out["case_id"],
                                              self.save_probabilities))


def read_json(path: str | os.PathLike) -> Any:
    """``load_json`` for config expressions."""
    return load_json(path)
