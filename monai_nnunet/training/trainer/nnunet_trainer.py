"""``nnUNetTrainer``: the thin front for nnU-Net users that writes the run's bundle and runs it.

The run is its MONAI bundle (``<fold>/configs/train.yaml``): every component that trains is declared there as a
``_target_`` with its arguments, and MONAI's ``ConfigWorkflow`` runs it, here as under
``python -m monai.bundle run``. This class checks the run (:func:`~monai_nnunet.training.run_setup.prepare_run`),
turns the ``-tr`` trainer config and the settings into bundle values, writes the bundle once, and runs it.

A subclass may override ``build_network_architecture``, ``configure_optimizers``, ``build_loss`` or
``train_step`` (nnU-Net's hooks); the run's bundle then declares the subclass as the ``nnunet_trainer`` component
and calls exactly the overridden hooks, so the bundle still describes the run.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from monai.bundle import ConfigWorkflow
from monai.engines.utils import IterationEvents
from torch import nn

from monai_nnunet.bundle import TEMPLATE_BUNDLE
from monai_nnunet.bundle.metadata import build_metadata
from monai_nnunet.bundle.run_bundle import (
    compose_train_yaml,
    network_block,
    read_run_parameters,
    record_overrides,
    run_config_files,
    write_training_bundle,
)
from monai_nnunet.losses import DC_and_BCE_loss, DC_and_CE_loss, DeepSupervisionWrapper
from monai_nnunet.planning.cascade import cascade_input_labels, network_input_channels
from monai_nnunet.training.cascade import check_previous_stage_predictions, previous_stage_predictions_folder
from monai_nnunet.training.checkpoints import CheckpointError
from monai_nnunet.training.configs import (
    TrainerConfig,
    load_overlay,
    resolve_trainer,
    to_bundle_overrides,
    trainer_output_folder_name,
)
from monai_nnunet.training.configs.overrides import qualified_name
from monai_nnunet.training.distributed import barrier, rank
from monai_nnunet.training.lr_scheduler import PolyLRScheduler
from monai_nnunet.training.run_setup import RunSetup, TrainingSetupError, prepare_run
from monai_nnunet.training.trainer.settings import SETTING_ALIASES, TrainingSettings, resolve_settings
from monai_nnunet.utils.checkpoints import load_checkpoint
from monai_nnunet.utils.devices import resolve_device
from monai_nnunet.utils.files import save_json, to_jsonable

__all__ = ["HOOKS", "TrainingSetupError", "nnUNetTrainer"]

#: the methods a subclass may override; the run's bundle calls exactly those that it overrides
HOOKS = ("build_network_architecture", "configure_optimizers", "build_loss", "train_step")
_LEGACY_MARKER = "nnunet_trainer.build_network_architecture()"  # bundles of earlier versions called every hook


class nnUNetTrainer:
    """nnU-Net's trainer (``from monai_nnunet.training import nnUNetTrainer``).

    Example::

        trainer = nnUNetTrainer(dataset_id=4, configuration="3d_fullres", fold=0, device="cuda")
        trainer.run_training()

    Args:
        dataset_id: dataset id or name (``4``, ``"004"``, ``"Dataset004_Hippocampus"``).
        configuration: plans configuration (``2d``, ``3d_fullres``, ...).
        fold: 0-4 (the 5-fold split in ``splits_final.json``) or ``"all"`` (train on every case).
        plans_identifier: plans name (``nnUNetPlans``).
        device: ``"cuda"``, ``"cpu"``, ``"mps"`` or a ``torch.device``.
        trainer_config: a ``TrainerConfig``, the name of a registered one (``-tr``), or None (the class's
            ``default_trainer_config``, else nnU-Net's default).
        trainer_name: the name in the output folder and checkpoints (default: the config's name, or the class name).
        preprocessed_folder: the dataset's preprocessed folder (default ``$nnUNet_preprocessed/DatasetXXX_Name``).
        output_folder: the fold folder (default ``$nnUNet_results/DatasetXXX_Name/TRAINER__PLANS__CONFIG/fold_N``).
        continue_training: resume from checkpoint_latest (else final, else best); start fresh if there is none.
        pretrained_weights: a checkpoint whose weights (all but the segmentation heads) initialise the network.
        save_checkpoints: False disables checkpoint files (``--disable_checkpointing``).
        export_npz: final validation also saves probabilities (``--npz``).
        overwrite: train again from scratch into a fold that holds checkpoints (``--overwrite``); without it such a
            fold is refused, so a trained fold is never overwritten by accident.
        **settings: run parameters of the bundle (``epochs``, ``iterations_per_epoch``, ``val_interval``,
            ``initial_lr``, ``lr_schedule``, ``num_workers``, ``augmentation_device``, ``seed``, ...; the older
            names ``num_epochs`` and ``val_every`` are accepted).

    Raises:
        TrainingSetupError: for a missing preprocessed folder or plans, a bad fold, an unavailable device.
        UnknownTrainerError: for an unknown trainer config name.
    """

    #: A subclass may set its own config (used when no ``trainer_config`` is passed).
    default_trainer_config: TrainerConfig | str | None = None

    def __init__(self, dataset_id: int | str, configuration: str, fold: int | str,
                 plans_identifier: str = "nnUNetPlans", device: str | torch.device = "cuda",
                 trainer_config: TrainerConfig | str | None = None, *, trainer_name: str | None = None,
                 preprocessed_folder: str | os.PathLike | None = None, output_folder: str | os.PathLike | None = None,
                 continue_training: bool = False, pretrained_weights: str | os.PathLike | None = None,
                 save_checkpoints: bool = True, export_npz: bool = False, overwrite: bool = False,
                 **settings: Any):
        if trainer_config is None:
            trainer_config = self.default_trainer_config
        config_name = trainer_config if isinstance(trainer_config, str) else None
        if isinstance(trainer_config, str):
            resolved = resolve_trainer(trainer_config)
            trainer_config = resolved if isinstance(resolved, TrainerConfig) else None
        self.trainer_config: TrainerConfig = trainer_config if trainer_config is not None else resolve_trainer(None)
        self.trainer_name = trainer_name or config_name or type(self).__name__
        self.device = resolve_device(device)
        self.setup: RunSetup = prepare_run(
            dataset_id, configuration, fold, plans_identifier,
            output_folder_name=trainer_output_folder_name(self.trainer_name, plans_identifier, configuration),
            preprocessed_folder=preprocessed_folder, output_folder=output_folder)
        self.previous_stage_predictions = self._previous_stage_predictions()
        self.config_overrides = to_bundle_overrides(self.trainer_config, self.trainer_name,
                                                    regions=self.setup.dataset.has_regions)
        self.explicit_settings = {k: v for k, v in settings.items() if v is not None}
        try:
            self.settings: TrainingSettings = resolve_settings(self.setup.configuration, self.config_overrides,
                                                               **settings)
        except ValueError as e:
            raise TrainingSetupError(str(e)) from e
        if self.previous_stage_predictions is not None and self.settings.augmentation_device != "cpu":
            raise TrainingSetupError(f"{configuration} is a cascade stage: its augmentation of the previous stage's "
                                     f"segmentation runs on the CPU; use augmentation_device cpu")
        self.continue_training = bool(continue_training)
        self.pretrained_weights = None if pretrained_weights is None else str(pretrained_weights)
        self.save_checkpoints = bool(save_checkpoints)
        self.export_npz = bool(export_npz)
        self.overwrite = bool(overwrite)
        self.workflow: ConfigWorkflow | None = None
        self.network: nn.Module | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.lr_scheduler: Any = None
        self.loss: nn.Module | None = None

    # ------------------------------------------------------------------------------------------ the run's paths
    output_folder = property(lambda self: self.setup.output_folder)
    dataset_name = property(lambda self: self.setup.dataset_name)
    configuration_name = property(lambda self: self.setup.configuration_name)
    configuration_manager = property(lambda self: self.setup.configuration)
    plans_manager = property(lambda self: self.setup.plans)
    plans_identifier = property(lambda self: self.setup.plans_identifier)
    dataset = property(lambda self: self.setup.dataset)
    fold = property(lambda self: self.setup.fold)
    preprocessed_folder = property(lambda self: self.setup.preprocessed_folder)
    cache_folder = property(lambda self: self.setup.cache_folder)
    log_file = property(lambda self: self.setup.output_folder / "training_log.txt")

    def _previous_stage_predictions(self) -> Path | None:
        """A cascade stage: the previous stage's ``predicted_next_stage/<configuration>`` folder, checked to hold every
        case of the fold (else the run is refused with the command that makes them); ``None`` otherwise."""
        previous = self.setup.configuration.previous_stage_name
        if previous is None:
            return None
        folder = previous_stage_predictions_folder(self.setup.output_folder, self.trainer_name,
                                                   self.setup.plans_identifier, previous, self.configuration_name)
        split = self.setup.split()
        try:
            check_previous_stage_predictions(
                folder, [*split["train"], *split["val"]], dataset_name=self.setup.dataset_name,
                previous_stage=previous, configuration=self.configuration_name, fold=self.setup.fold,
                preprocessed_folder=self.setup.preprocessed_folder, trainer_name=self.trainer_name,
                plans_identifier=self.setup.plans_identifier)
        except ValueError as e:
            raise TrainingSetupError(str(e)) from None
        return folder

    # ------------------------------------------------------------------------------------------ the bundle
    def run_parameters(self) -> dict[str, Any]:
        """The run parameters block of ``train.yaml``."""
        s, setup, dataset = self.settings, self.setup, self.setup.dataset
        names = {value: name for name, value in dataset.labels.items() if name not in ("ignore", "background")}
        if dataset.has_regions:  # a single-label region is declared as its label value
            names.update({(value,): name for value, name in list(names.items()) if not isinstance(value, tuple)})
        classes = [list(c) if isinstance(c, tuple) else c for c in dataset.foreground_regions]
        class_names = [names.get(c, str(c)) for c in dataset.foreground_regions]
        return {
            "bundle_root": "$nnunet_bundle.bundle_folder()", "output_dir": "@bundle_root",
            "dataset_dir": str(setup.preprocessed_folder), "dataset_name": setup.dataset_name,
            "configuration": setup.configuration_name, "fold": setup.fold,
            "plans_identifier": setup.plans_identifier, "trainer_name": self.trainer_name, "device": str(self.device),
            "epochs": s.epochs, "iterations_per_epoch": s.iterations_per_epoch, "val_iterations": s.val_iterations,
            "val_interval": s.val_interval, "initial_lr": s.initial_lr, "weight_decay": s.weight_decay,
            "momentum": s.momentum, "lr_exponent": s.lr_exponent, "lr_schedule": s.lr_schedule,
            "grad_clip_norm": s.grad_clip_norm, "batch_size": s.batch_size, "patch_size": list(s.patch_size),
            "oversample_foreground_percent": s.oversample_foreground_percent, "deep_supervision": s.deep_supervision,
            "mirror_axes": list(s.mirror_axes), "augmentation_device": s.augmentation_device,
            "num_workers": s.num_workers, "seed": s.seed, "save_checkpoints": self.save_checkpoints,
            "export_npz": self.export_npz, "resume": False, "overwrite": False,
            "pretrained_weights": self.pretrained_weights,
            "data_identifier": setup.configuration.data_identifier,
            "num_input_channels": network_input_channels(setup.configuration, dataset),
            "num_classes": dataset.num_segmentation_heads, "batch_dice": bool(setup.configuration.batch_dice),
            "ignore_label": dataset.ignore_label,
            "masked_channels": [c for c, m in enumerate(setup.configuration.use_mask_for_norm) if m],
            "strides": [list(map(int, st)) for st in setup.configuration.pool_op_kernel_sizes],
            "foreground_classes": classes, "class_names": class_names,
            "annotated_labels": [-1, *dataset.all_labels] if dataset.has_ignore_label else None,
            "previous_stage_predictions": None if self.previous_stage_predictions is None
            else str(self.previous_stage_predictions),
            "cascade_labels": cascade_input_labels(setup.configuration, dataset),
        }

    def _overridden_hooks(self) -> list[str]:
        return [h for h in HOOKS if getattr(type(self), h) is not getattr(nnUNetTrainer, h)]

    def bundle_sections(self) -> list[tuple[str, dict[str, Any]]]:
        """The overrides written into ``train.yaml``: region-based labels, the ``-tr`` config, a subclass's hooks.

        Every value is a ``_target_`` with arguments or a bundle expression: none needs the registry or the module
        that registered the ``-tr`` config (:func:`~monai_nnunet.training.configs.to_bundle_overrides`). A whole
        component (``optimizer``, ``loss``, ``network_def``) replaces the template's block
        (:func:`~monai_nnunet.bundle.run_bundle.compose_train_yaml`).

        Returns:
            ``(heading, overrides)`` in merge order.
        """
        sections = []
        if self.previous_stage_predictions is not None:
            sections.append((f"cascade stage (previous stage {self.setup.configuration.previous_stage_name}): its "
                             f"segmentation as one-hot input channels, and their augmentation",
                             load_overlay(TEMPLATE_BUNDLE / "configs" / "cascade.yaml")))
        if self.setup.dataset.has_regions:
            sections.append(("region-based labels (dataset.json regions_class_order)",
                             load_overlay(TEMPLATE_BUNDLE / "configs" / "region_labels.yaml")))
        config = {k: v for k, v in self.config_overrides.items() if k not in self.settings.to_dict()}
        record = to_jsonable(self.trainer_config.to_dict())
        if any(v not in (None, {}, "", []) for k, v in record.items() if k != "description"):
            config["checkpoint_record#trainer_config"] = record
        sections.append((f"-tr {self.trainer_name}: the trainer config, merged over the components above", config))
        hooks = self._overridden_hooks()
        if type(self) is not nnUNetTrainer:
            section: dict[str, Any] = {"nnunet_trainer": {
                "_target_": qualified_name(type(self)), "dataset_id": "@dataset_name",
                "configuration": "@configuration", "fold": "@fold", "plans_identifier": "@plans_identifier",
                "device": "@device", "trainer_name": "@trainer_name", "preprocessed_folder": "@dataset_dir",
                "output_folder": "@output_dir", "epochs": "@epochs", "iterations_per_epoch": "@iterations_per_epoch",
                "initial_lr": "@initial_lr", "batch_size": "@batch_size"}}
            if "build_network_architecture" in hooks:
                section["network_def"] = "$@nnunet_trainer.build_network_architecture()"
            if "configure_optimizers" in hooks:
                section["optimizer"] = "$@nnunet_trainer.bundle_optimizer(@network)"
                section["lr_scheduler"] = "$@nnunet_trainer.bundle_lr_scheduler(@optimizer)"
                # the checkpoints record the rate the subclass's optimiser has, not the initial_lr setting
                section["checkpoint_record#init#initial_lr"] = "$@optimizer.defaults['lr']"
            if "build_loss" in hooks:
                section["loss"] = "$@nnunet_trainer.build_loss()"
            if "train_step" in hooks:
                section["train#trainer#iteration_update"] = "$@nnunet_trainer.bundle_iteration"
            sections.append((f"-tr {self.trainer_name}: {type(self).__qualname__} (an nnUNetTrainer subclass: its "
                             f"overridden methods {', '.join(hooks) or '(none)'} run)", section))
        return sections

    def train_yaml(self) -> str:
        """The text of the run's ``train.yaml``."""
        return compose_train_yaml(self.run_parameters(), network_block(self.setup.configuration),
                                  self.bundle_sections())

    def _located(self) -> dict[str, Any]:
        """The run's folders as this process finds them (``nnUNet_results``, ``nnUNet_preprocessed``): a fold that
        was copied or moved is trained, resumed and validated where it is now, never where it was written."""
        located: dict[str, Any] = {"bundle_root": str(self.output_folder),
                                   "dataset_dir": str(self.setup.preprocessed_folder)}
        if self.previous_stage_predictions is not None:
            located["previous_stage_predictions"] = str(self.previous_stage_predictions)
        return located

    def _workflow(self, config_files: list[str], draft: bool = False, **overrides: Any) -> ConfigWorkflow:
        extra = {"nnunet_trainer": self} if type(self) is not nnUNetTrainer else {}
        overrides = {**self._located(), **overrides}
        meta = Path(config_files[0]).parent / "metadata.json"
        if draft:  # this process's own folder
            save_json(build_metadata(self.setup.dataset.raw, self.configuration_name), meta)
        else:  # the fold's folder: under DDP rank 0 writes, the other ranks read it
            if not meta.is_file() and rank() == 0:
                save_json(build_metadata(self.setup.dataset.raw, self.configuration_name), meta)
            barrier()
        # logging_file=False: the process keeps its own logging; MONAI warns that it skips its file, every run
        workflows_logger = logging.getLogger("monai.bundle.workflows")
        level = workflows_logger.level
        workflows_logger.setLevel(logging.ERROR)
        try:
            workflow = ConfigWorkflow(config_file=config_files if len(config_files) > 1 else config_files[0],
                                      meta_file=str(meta), workflow_type="train", logging_file=False, **extra,
                                      **overrides)
        finally:
            workflows_logger.setLevel(level)
        workflow.initialize()
        return workflow

    def _draft_workflow(self, text: str, build: str, **overrides: Any) -> ConfigWorkflow:
        """The workflow of a ``train.yaml`` text not (yet) written to the fold; ``build`` is instantiated while the
        draft file exists."""
        with tempfile.TemporaryDirectory() as tmp:
            draft = Path(tmp) / "train.yaml"
            draft.write_text(text)
            workflow = self._workflow([str(draft)], draft=True, **overrides)
            workflow.parser.get_parsed_content(build)
        return workflow

    def _refuse_overwriting_a_trained_fold(self) -> None:
        if self.continue_training or self.overwrite:
            return
        found = [n for n in ("checkpoint_final.pth", "checkpoint_latest.pth") if (self.output_folder / n).is_file()]
        if found:
            raise TrainingSetupError(
                f"{self.output_folder} already holds {found[0]}: resume it with -c, or pass --overwrite to train "
                f"this fold again from scratch (its checkpoints are replaced)")

    def _check_pretrained_weights(self) -> None:
        if self.pretrained_weights is not None:
            try:
                load_checkpoint(self.pretrained_weights, required_keys=())
            except CheckpointError as e:
                raise CheckpointError(f"-pretrained_weights: {e}") from None

    def _existing_bundle(self) -> bool:
        train_yaml = self.output_folder / "configs" / "train.yaml"
        return train_yaml.is_file() and _LEGACY_MARKER not in train_yaml.read_text()

    def _changed_settings(self) -> dict[str, Any]:
        """Settings given now (CLI flags) that differ from the fold's bundle, for ``overrides.yaml``."""
        recorded = read_run_parameters(self.output_folder)
        current = self.settings.to_dict()
        names = {SETTING_ALIASES.get(k, k) for k in self.explicit_settings}
        return {k: current[k] for k in sorted(names) if k in current and recorded.get(k) != current[k]}

    def initialize(self) -> ConfigWorkflow:
        """Builds the run's workflow. A fresh run writes its bundle into the fold folder (after every component was
        built, so a run that cannot start writes nothing); ``-c`` runs the fold's bundle as it is, with changed
        settings recorded in ``configs/overrides.yaml``."""
        if self.workflow is not None:
            return self.workflow
        self._check_pretrained_weights()
        if self.continue_training and self._existing_bundle():
            if rank() == 0:  # the only writer under DDP
                record_overrides(self.output_folder, self._changed_settings())
            barrier()
            self.workflow = self._workflow(run_config_files(self.output_folder), resume=True, device=str(self.device))
            self.workflow.parser.get_parsed_content("train#trainer")
            return self.workflow
        self._refuse_overwriting_a_trained_fold()
        text = self.train_yaml()
        # every component builds before anything is written
        workflow = self._draft_workflow(text, "train#trainer", resume=self.continue_training,
                                        overwrite=self.overwrite)
        if rank() == 0:  # the only writer under DDP
            write_training_bundle(self.output_folder, text, self.setup.dataset.raw, self.configuration_name)
        self.workflow = workflow
        return workflow

    def run_training(self) -> None:
        """Trains (the bundle's ``run``: the training engine, then the final validation)."""
        workflow = self.initialize()
        workflow.run()
        workflow.finalize()

    def validate_only(self, use_best: bool = False) -> Path | None:
        """``--val``: the final validation of ``checkpoint_final.pth`` (``use_best``: ``checkpoint_best.pth``); the
        fold's bundle is not rewritten.

        Raises:
            CheckpointError: when that checkpoint does not exist.
        """
        name = "checkpoint_best.pth" if use_best else "checkpoint_final.pth"
        path = self.output_folder / name
        if not path.is_file():
            raise CheckpointError(f"{path} does not exist: --val needs a trained fold"
                                  + (" with a case-level validation (checkpoint_best)" if use_best else ""))
        # resume: the fold's training is there by design (the bundle refuses a trained folder otherwise)
        overrides = {"final_validation#checkpoint": str(path), "device": str(self.device), "resume": True}
        workflow = self._workflow(run_config_files(self.output_folder), **overrides) if self._existing_bundle() \
            else self._draft_workflow(self.train_yaml(), "final_validation", **overrides)
        return workflow.parser.get_parsed_content("final_validation").run()

    # ------------------------------------------------------------------------------------------ nnU-Net's hooks
    def build_network_architecture(self) -> nn.Module:
        """The network for this configuration: the trainer config's architecture, else the plans' U-Net."""
        return self.trainer_config.build_network(self.configuration_manager,
                                                 network_input_channels(self.configuration_manager, self.dataset),
                                                 self.dataset.num_segmentation_heads,
                                                 deep_supervision=self.settings.deep_supervision)

    def configure_optimizers(self):
        """SGD (Nesterov, momentum 0.99, weight decay 3e-5) and the polynomial LR schedule.

        Returns:
            ``(optimizer, lr_scheduler)``; an override may instead set ``self.optimizer`` (and optionally
            ``self.lr_scheduler``) and return None.
        """
        s = self.settings
        optimizer = torch.optim.SGD(self.network.parameters(), lr=s.initial_lr, weight_decay=s.weight_decay,
                                    momentum=s.momentum, nesterov=True)
        return optimizer, self._default_scheduler(optimizer)

    def _default_scheduler(self, optimizer: torch.optim.Optimizer) -> PolyLRScheduler:
        s = self.settings
        steps = s.epochs * (s.iterations_per_epoch if s.lr_schedule == "per_iteration" else 1)
        return PolyLRScheduler(optimizer, optimizer.param_groups[0].get("initial_lr", optimizer.param_groups[0]["lr"]),
                               steps, s.lr_exponent)

    def build_loss(self) -> nn.Module:
        """Dice + CE (Dice + BCE for regions) with the plans' batch_dice and the dataset's ignore label, or the
        trainer config's loss; wrapped for deep supervision."""
        batch_dice = self.configuration_manager.batch_dice
        if self.dataset.has_regions:
            loss = self.trainer_config.build_loss(
                default=DC_and_BCE_loss, bce_kwargs={},
                soft_dice_kwargs={"batch_dice": batch_dice, "do_bg": True, "smooth": 1e-5},
                use_ignore_label=self.dataset.has_ignore_label)
        else:
            loss = self.trainer_config.build_loss(
                default=DC_and_CE_loss, soft_dice_kwargs={"batch_dice": batch_dice, "smooth": 1e-5, "do_bg": False},
                ce_kwargs={}, weight_ce=1, weight_dice=1, ignore_label=self.dataset.ignore_label)
        return loss if isinstance(loss, DeepSupervisionWrapper) else DeepSupervisionWrapper(loss)

    def train_step(self, batch: dict) -> torch.Tensor:
        """Forward pass and loss of one batch (``batch["data"]``, ``batch["target"]``); returns the loss. Only a
        subclass's override runs (the default step is the bundle's ``SupervisedTrainer`` iteration)."""
        output = self.network(batch["data"])
        extras = {k: batch[k] for k in ("instances", "regions") if k in batch}
        return self.loss(output, batch["target"], **extras)

    # ----------------------------------------------------------------- the bundle's calls into a subclass's hooks
    def bundle_optimizer(self, network: nn.Module) -> torch.optim.Optimizer:
        """Runs ``configure_optimizers`` for the bundle's ``optimizer``."""
        self.network = network
        result = self.configure_optimizers()
        if isinstance(result, tuple):
            self.optimizer, self.lr_scheduler = result
        elif isinstance(result, torch.optim.Optimizer):
            self.optimizer = result
        if self.optimizer is None:
            raise TrainingSetupError("configure_optimizers() must return (optimizer, scheduler) or set self.optimizer")
        return self.optimizer

    def bundle_lr_scheduler(self, optimizer: torch.optim.Optimizer):
        """The scheduler ``configure_optimizers`` made, else the default poly schedule, for the bundle."""
        scheduler = self.lr_scheduler
        if scheduler is None or getattr(scheduler, "optimizer", None) is not optimizer:
            scheduler = self.lr_scheduler = self._default_scheduler(optimizer)
        return scheduler

    def bundle_iteration(self, engine, batchdata: dict) -> dict:
        """The training iteration when a subclass overrides ``train_step``: its loss, then backward (with the grad
        scaler on CUDA), the engine's ``BACKWARD_COMPLETED`` handlers (gradient clipping) and the optimiser step."""
        self.network, self.optimizer, self.loss = engine.network, engine.optimizer, engine.loss_function
        data, target = engine.prepare_batch(batchdata, engine.state.device, engine.non_blocking)
        batch = {"data": data, "target": target, "keys": batchdata.get("keys", [])}
        for key in ("instances", "regions"):
            if key in batchdata:
                batch[key] = batchdata[key].to(engine.state.device)
        engine.network.train()
        engine.optimizer.zero_grad(set_to_none=True)
        with torch.autocast(torch.device(engine.state.device).type, enabled=bool(engine.amp)):
            result = self.train_step(batch)
        loss = result["loss"] if isinstance(result, dict) else result
        if isinstance(loss, torch.Tensor) and loss.requires_grad:
            scaler = engine.scaler if engine.amp else None
            (scaler.scale(loss) if scaler is not None else loss).backward()
            engine.fire_event(IterationEvents.BACKWARD_COMPLETED)
            if scaler is not None:
                scaler.step(engine.optimizer)
                scaler.update()
            else:
                engine.optimizer.step()
        return {"loss": loss.detach() if isinstance(loss, torch.Tensor) else torch.as_tensor(float(loss))}
