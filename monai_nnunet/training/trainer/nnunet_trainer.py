"""``nnUNetTrainer``: nnU-Net's training recipe on MONAI's Ignite engines.

The trainer is a set of overridable building blocks, composed by the run's MONAI bundle config
(``configs/train.yaml``): the config calls ``build_network_architecture``, ``configure_optimizers``, ``build_loss``
and the data-stream builders, and runs a MONAI ``SupervisedTrainer`` whose iteration calls ``train_step`` and a
``SupervisedEvaluator`` whose iteration calls ``validation_step``. Handlers (LR schedule, per-epoch patch
validation, case-level validation, epoch-end logging and checkpoints) are attached to the engines. The Python front
(``initialize()`` / ``run_training()``) writes that bundle into the fold folder and runs it with MONAI's
``ConfigWorkflow``, handing itself in as the ``nnunet_trainer`` component, so ``nnUNetv2_train``,
``trainer.run_training()`` and ``python -m monai.bundle run --config_file <fold>/configs/train.yaml`` all run the
same configuration and the same loop.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from monai_nnunet import paths
from monai_nnunet.dataset.dataset_json import load_dataset_json
from monai_nnunet.dataset.naming import resolve_dataset_name
from monai_nnunet.dataset.splits import generate_crossval_split, load_splits
from monai_nnunet.planning.plans import PlansManager
from monai_nnunet.training.checkpoints import CheckpointError, find_resume_checkpoint, load_checkpoint, save_checkpoint
from monai_nnunet.training.configs import TrainerConfig, resolve_trainer, trainer_output_folder_name
from monai_nnunet.training.logging import TrainingLog, plot_progress
from monai_nnunet.training.logging.training_log import append_line
from monai_nnunet.training.lr_scheduler import PolyLRScheduler
from monai_nnunet.training.runtime_utils import memory_in_use_mb, reset_peak_memory
from monai_nnunet.training.trainer.settings import TrainingSettings, resolve_settings
from monai_nnunet.utils.files import save_json

__all__ = ["TrainingSetupError", "nnUNetTrainer"]


class TrainingSetupError(ValueError):
    """A training run cannot start: missing preprocessed data, a bad fold, an unavailable device, ..."""


def _as_device(device: str | torch.device) -> torch.device:
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise TrainingSetupError("device 'cuda' was requested but no CUDA GPU is available; use -device cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise TrainingSetupError("device 'mps' was requested but MPS is not available; use -device cpu")
    return device


def _parse_fold(fold: int | str) -> int | str:
    if isinstance(fold, str) and fold == "all":
        return "all"
    try:
        value = int(fold)
    except (TypeError, ValueError):
        raise TrainingSetupError(f"fold must be an integer (0-4 for the 5-fold split) or 'all', got {fold!r}") from None
    if value < 0:
        raise TrainingSetupError(f"fold must be >= 0 or 'all', got {value}")
    return value


class nnUNetTrainer:
    """nnU-Net's trainer (``from monai_nnunet.training import nnUNetTrainer``).

    Example::

        trainer = nnUNetTrainer(dataset_id=4, configuration="3d_fullres", fold=0, device="cuda")
        trainer.run_training()

    Subclass it and override any of ``build_network_architecture``, ``configure_optimizers``, ``build_loss``,
    ``train_step``, ``validation_step``, ``on_epoch_end`` (``nnUNetv2_train ... -tr my_module:MyTrainer``).

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
        **settings: overrides of ``TrainingSettings`` (``num_epochs``, ``iterations_per_epoch``, ``val_every``,
            ``initial_lr``, ``lr_schedule``, ``num_workers``, ``augmentation_device``, ``seed``, ...).

    Raises:
        TrainingSetupError: for a missing preprocessed folder or plans, a bad fold, an unavailable device.
        UnknownTrainerError: for an unknown trainer config name.
    """

    #: A subclass may set its own config (used when no ``trainer_config`` is passed).
    default_trainer_config: TrainerConfig | str | None = None

    def __init__(
        self,
        dataset_id: int | str,
        configuration: str,
        fold: int | str,
        plans_identifier: str = "nnUNetPlans",
        device: str | torch.device = "cuda",
        trainer_config: TrainerConfig | str | None = None,
        *,
        trainer_name: str | None = None,
        preprocessed_folder: str | os.PathLike | None = None,
        output_folder: str | os.PathLike | None = None,
        continue_training: bool = False,
        pretrained_weights: str | os.PathLike | None = None,
        save_checkpoints: bool = True,
        export_npz: bool = False,
        **settings: Any,
    ):
        self.init_args = {
            "dataset_id": str(dataset_id), "configuration": configuration, "fold": str(fold),
            "plans_identifier": plans_identifier, "device": str(device),
            "trainer_name": trainer_name, "continue_training": bool(continue_training),
            "pretrained_weights": None if pretrained_weights is None else str(pretrained_weights),
        }
        self.fold = _parse_fold(fold)
        self.device = _as_device(device)
        if preprocessed_folder is None:
            self.dataset_name = resolve_dataset_name(dataset_id)
            preprocessed_folder = paths.nnunet_preprocessed() / self.dataset_name
        self.preprocessed_folder = Path(preprocessed_folder)
        self.dataset_name = self.preprocessed_folder.name
        plans_file = self.preprocessed_folder / f"{plans_identifier}.json"
        if not plans_file.is_file():
            raise TrainingSetupError(
                f"{plans_file} does not exist: run nnUNetv2_plan_and_preprocess -d {dataset_id} "
                f"(or -overwrite_plans_name {plans_identifier}) first"
            )
        self.plans_identifier = plans_identifier
        self.plans_manager = PlansManager(plans_file)
        self.configuration_name = configuration
        try:
            self.configuration_manager = self.plans_manager.get_configuration(configuration)
        except ValueError as e:
            raise TrainingSetupError(str(e)) from e
        self.dataset = load_dataset_json(self.preprocessed_folder / "dataset.json")
        self.cache_folder = self.preprocessed_folder / self.configuration_manager.data_identifier
        if not self.cache_folder.is_dir():
            raise TrainingSetupError(
                f"{self.cache_folder} does not exist: preprocess configuration {configuration} first "
                f"(nnUNetv2_preprocess -d {dataset_id} -c {configuration} -plans_name {plans_identifier})"
            )
        if next(self.cache_folder.glob("*.b2nd"), None) is not None and next(self.cache_folder.glob("*.npy"), None) \
                is None and next(self.cache_folder.glob("*.npz"), None) is None:
            raise TrainingSetupError(
                f"{self.cache_folder} was preprocessed by nnU-Net itself (blosc2 .b2nd files); run this package's "
                f"nnUNetv2_preprocess -d {dataset_id} -c {configuration} -plans_name {plans_identifier} first "
                f"(plans written by nnU-Net are used as they are)"
            )
        if trainer_config is None:
            trainer_config = self.default_trainer_config
        if isinstance(trainer_config, str):
            trainer_name = trainer_name or trainer_config
            resolved = resolve_trainer(trainer_config)
            trainer_config = resolved if isinstance(resolved, TrainerConfig) else None
        self.trainer_config: TrainerConfig = trainer_config if trainer_config is not None else resolve_trainer(None)
        self.trainer_name = trainer_name or (type(self).__name__)
        self.init_args["trainer_name"] = self.trainer_name
        self.settings: TrainingSettings = resolve_settings(self.configuration_manager, self.trainer_config, **settings)
        self.get_tr_and_val_case_ids()  # fails now, with a clear message, for a fold the split does not have
        self.init_args["settings"] = self.settings.to_dict()
        if output_folder is None:
            output_folder = (paths.nnunet_results() / self.dataset_name /
                             trainer_output_folder_name(self.trainer_name, plans_identifier, configuration) /
                             f"fold_{self.fold}")
        self.output_folder = Path(output_folder)
        self.continue_training = bool(continue_training)
        self.pretrained_weights = pretrained_weights
        self.save_checkpoints = bool(save_checkpoints)
        self.export_npz = bool(export_npz)
        self.use_amp = self.device.type == "cuda"
        from monai_nnunet.training.execution.ddp import distributed_context

        self.is_ddp, self.local_rank, self.world_size = distributed_context()
        self.log = TrainingLog()
        self.network: nn.Module | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.lr_scheduler: Any = None
        self.grad_scaler = torch.amp.GradScaler("cuda") if self.use_amp else None
        self.loss: nn.Module | None = None
        self.train_engine = None
        self.evaluator = None
        self.workflow = None
        self._device_augmentation = None
        self._epoch_train_losses: list[float] = []
        self._epoch_val_losses: list[float] = []
        self._epoch_start_time = 0.0
        self._epoch_first_lr: float | None = None

    # ------------------------------------------------------------------------------------------------- data
    @property
    def log_file(self) -> Path:
        return self.output_folder / "training_log.txt"

    @property
    def is_main_process(self) -> bool:
        return self.local_rank == 0

    def print_to_log_file(self, *parts: Any) -> None:
        """Appends a line to training_log.txt and prints it (rank 0 only under DDP)."""
        if not self.is_main_process:
            return
        line = " ".join(str(p) for p in parts)
        append_line(self.log_file, line)
        print(line, flush=True)

    def get_tr_and_val_case_ids(self) -> tuple[list[str], list[str]]:
        """The fold's training and validation case ids (``splits_final.json``; fold ``all``: every case twice).

        Raises:
            TrainingSetupError: when the fold does not exist in the split file.
        """
        from monai_nnunet.preprocessing.cache import case_ids_in_cache

        all_ids = case_ids_in_cache(self.cache_folder)
        if self.fold == "all":
            return all_ids, all_ids
        split_file = self.preprocessed_folder / "splits_final.json"
        if split_file.is_file():
            splits = load_splits(split_file, all_ids)
        else:
            splits = generate_crossval_split(all_ids)
            save_json(splits, split_file)
        if self.fold >= len(splits):
            raise TrainingSetupError(f"fold {self.fold} does not exist: {split_file} has {len(splits)} folds")
        return list(splits[self.fold]["train"]), list(splits[self.fold]["val"])

    def _augmentation_settings(self):
        from monai_nnunet.transforms.pipeline import augmentation_settings

        return augmentation_settings(self.settings.patch_size, self.settings.mirror_axes)

    @property
    def inference_allowed_mirroring_axes(self) -> list[int]:
        return list(self._augmentation_settings().mirror_axes)

    def _extra_target_transforms(self) -> tuple[list, list[str]]:
        """Blob or region maps the loss takes precomputed (computed in the loader, not in the training step)."""
        from monai_nnunet.losses import BlobDiceLoss, RegionDiceLoss
        from monai_nnunet.transforms import LabelToBlobsd, LabelToRegionsd

        transforms, keys = [], []
        loss = self.loss if self.loss is not None else self.build_loss()
        for module in loss.modules():
            if isinstance(module, BlobDiceLoss) and "instances" not in keys:
                transforms.append(LabelToBlobsd("label", instance_keys="instances", connectivity=module.connectivity,
                                                ignore_label=self.dataset.ignore_label))
                keys.append("instances")
            if isinstance(module, RegionDiceLoss) and module.regions == "boundary" and "regions" not in keys:
                transforms.append(LabelToRegionsd("label", num_classes=self.dataset.num_segmentation_heads,
                                                  region_keys="regions", boundary_width=module.boundary_width,
                                                  connectivity=module.connectivity,
                                                  ignore_label=self.dataset.ignore_label))
                keys.append("regions")
        return transforms, keys

    def _target_kwargs(self, extra_transforms: list, extra_keys: list[str]) -> dict:
        from monai_nnunet.transforms.labels import deep_supervision_scales

        strides = self.configuration_manager.pool_op_kernel_sizes
        return {
            "use_mask_for_norm": self.configuration_manager.use_mask_for_norm,
            "ignore_label": self.dataset.ignore_label,
            "regions": self.dataset.foreground_regions if self.dataset.has_regions else None,
            "deep_supervision_scales": deep_supervision_scales(strides) if self.settings.enable_deep_supervision else None,
            "extra_target_transforms": extra_transforms,
            "extra_target_keys": extra_keys,
        }

    def training_stream(self):
        """The training batch stream (nnU-Net sampling and augmentation) over the fold's training cases."""
        from monai.transforms import Compose

        from monai_nnunet.data import PatchBatchStream, PreprocessedCases
        from monai_nnunet.transforms.pipeline import augmentation_transforms, sampling_transforms, target_transforms

        train_ids, _ = self.get_tr_and_val_case_ids()
        aug = self._augmentation_settings()
        extra, extra_keys = self._extra_target_transforms()
        sampling = sampling_transforms(aug, self.dataset.has_ignore_label, self.dataset.all_labels, for_training=True)
        rest = augmentation_transforms(aug) + target_transforms(**self._target_kwargs(extra, extra_keys))
        if self.settings.augmentation_device == "device":
            chain, keys = Compose(sampling, map_items=False), ("image", "label")
            self._device_augmentation = (Compose(rest, map_items=False), ("label", *extra_keys))
        else:
            chain, keys = Compose(sampling + rest, map_items=False), ("image", "label", *extra_keys)
            self._device_augmentation = None
        batch_size, oversample = self._rank_batch_share()
        return PatchBatchStream(PreprocessedCases(self.cache_folder, train_ids), batch_size, chain, oversample,
                                seed=self.settings.seed + 100003 * self.local_rank, output_keys=keys)

    def _rank_batch_share(self) -> tuple[int, float]:
        """This process's batch size and foreground-oversampling share (the whole batch without DDP)."""
        from monai_nnunet.training.execution.ddp import rank_batch_share

        if not self.is_ddp:
            return self.settings.batch_size, self.settings.oversample_foreground_percent
        return rank_batch_share(self.settings.batch_size, self.settings.oversample_foreground_percent,
                                self.local_rank, self.world_size)

    def validation_stream(self):
        """Validation patches (same sampling, no augmentation) for the cheap per-epoch validation loss."""
        from monai_nnunet.data import PatchBatchStream, PreprocessedCases
        from monai_nnunet.transforms.pipeline import validation_transforms

        _, val_ids = self.get_tr_and_val_case_ids()
        extra, extra_keys = self._extra_target_transforms()
        chain = validation_transforms(self._augmentation_settings(), self.dataset.has_ignore_label,
                                      self.dataset.all_labels, **self._target_kwargs(extra, extra_keys))
        batch_size, oversample = self._rank_batch_share()
        return PatchBatchStream(PreprocessedCases(self.cache_folder, val_ids), batch_size, chain, oversample,
                                seed=self.settings.seed + 1 + 100003 * self.local_rank,
                                output_keys=("image", "label", *extra_keys))

    def make_loader(self, stream, num_workers: int | None = None):
        """A DataLoader running ``stream`` in ``nnUNet_n_proc_DA`` workers (pinned memory on CUDA)."""
        from monai_nnunet.data import make_patch_loader

        workers = self.settings.num_workers if num_workers is None else num_workers
        return make_patch_loader(stream, num_workers=workers, pin_memory=self.device.type == "cuda")

    @property
    def validation_iterations(self) -> int:
        return int(self.settings.val_iterations_per_epoch)

    # ---------------------------------------------------------------------------------------------- network
    @property
    def num_input_channels(self) -> int:
        return self.dataset.num_channels

    def build_network_architecture(self) -> nn.Module:
        """The network for this configuration (the trainer config's architecture, else the plans' U-Net)."""
        return self.trainer_config.build_network(
            self.configuration_manager, self.num_input_channels, self.dataset.num_segmentation_heads,
            deep_supervision=self.settings.enable_deep_supervision,
        )

    @classmethod
    def build_network_for_inference(cls, configuration_manager, num_input_channels: int, num_outputs: int,
                                    trainer_config: TrainerConfig | None = None) -> nn.Module:
        """The same architecture without deep supervision, for prediction from a checkpoint."""
        config = trainer_config or (resolve_trainer(cls.default_trainer_config)
                                    if isinstance(cls.default_trainer_config, str)
                                    else cls.default_trainer_config) or resolve_trainer(None)
        return config.build_network(configuration_manager, num_input_channels, num_outputs, deep_supervision=False)

    def prepare_network(self, network: nn.Module) -> nn.Module:
        """Moves the network to the device and loads pretrained weights (all but the segmentation heads)."""
        network = network.to(self.device)
        if self.pretrained_weights is not None and not self.continue_training:
            from monai_nnunet.networks.pretrained import load_pretrained_weights

            load_pretrained_weights(network, self.pretrained_weights)
        if self.is_ddp:
            from torch.nn.parallel import DistributedDataParallel

            # static graph: the lowest deep-supervision head has loss weight 0 and is never used, every iteration alike
            network = DistributedDataParallel(network, device_ids=[self.device.index] if self.device.type == "cuda"
                                              else None, static_graph=True)
        self.network = network
        return network

    # ----------------------------------------------------------------------------------- optimisation, loss
    def configure_optimizers(self):
        """SGD (Nesterov, momentum 0.99, weight decay 3e-5) and the polynomial LR schedule, or the trainer config's.

        Returns:
            ``(optimizer, lr_scheduler)``. An override may instead set ``self.optimizer`` (and optionally
            ``self.lr_scheduler``) and return None.
        """
        s = self.settings
        optimizer = self.trainer_config.build_optimizer(
            self.network.parameters(), default=torch.optim.SGD, lr=s.initial_lr, weight_decay=s.weight_decay,
            momentum=s.momentum, nesterov=True,
        )
        scheduler = self._default_scheduler(optimizer) if self.trainer_config.lr_scheduler is None else \
            self.trainer_config.build_lr_scheduler(optimizer, initial_lr=s.initial_lr, max_steps=s.total_lr_steps,
                                                   exponent=s.lr_exponent)
        return optimizer, scheduler

    def _default_scheduler(self, optimizer: torch.optim.Optimizer) -> PolyLRScheduler:
        lr = optimizer.param_groups[0].get("initial_lr", optimizer.param_groups[0]["lr"])
        return PolyLRScheduler(optimizer, lr, self.settings.total_lr_steps, self.settings.lr_exponent)

    def setup_optimization(self, network: nn.Module):
        """Runs ``configure_optimizers`` and returns ``(optimizer, lr_scheduler)`` (a default schedule is added when
        an override sets only an optimizer)."""
        self.network = network
        result = self.configure_optimizers()
        if isinstance(result, tuple):
            self.optimizer, self.lr_scheduler = result
        elif isinstance(result, torch.optim.Optimizer):
            self.optimizer = result
        if self.optimizer is None:
            raise TrainingSetupError("configure_optimizers() must return (optimizer, scheduler) or set self.optimizer")
        if self.lr_scheduler is None or getattr(self.lr_scheduler, "optimizer", None) is not self.optimizer:
            self.lr_scheduler = self._default_scheduler(self.optimizer)
        return self.optimizer, self.lr_scheduler

    def build_loss(self) -> nn.Module:
        """Dice + CE (Dice + BCE for regions) with the plans' batch_dice and the dataset's ignore label, or the
        trainer config's loss; wrapped for deep supervision (weights 1/2^i, lowest 0, normalised)."""
        from monai_nnunet.losses import DC_and_BCE_loss, DC_and_CE_loss, DeepSupervisionWrapper

        batch_dice = self.configuration_manager.batch_dice
        if self.dataset.has_regions:
            loss = self.trainer_config.build_loss(
                default=DC_and_BCE_loss, bce_kwargs={},
                soft_dice_kwargs={"batch_dice": batch_dice, "do_bg": True, "smooth": 1e-5, "ddp": self.is_ddp},
                use_ignore_label=self.dataset.has_ignore_label,
            )
        else:
            loss = self.trainer_config.build_loss(
                default=DC_and_CE_loss,
                soft_dice_kwargs={"batch_dice": batch_dice, "smooth": 1e-5, "do_bg": False, "ddp": self.is_ddp},
                ce_kwargs={}, weight_ce=1, weight_dice=1, ignore_label=self.dataset.ignore_label,
            )
        if self.settings.enable_deep_supervision and not isinstance(loss, DeepSupervisionWrapper):
            loss = DeepSupervisionWrapper(loss)
        self.loss = loss
        return loss

    # ------------------------------------------------------------------------------------------- iterations
    def _loss_inputs(self, batch: dict) -> dict:
        return {k: batch[k] for k in ("instances", "regions") if k in batch}

    def _batch_to_device(self, batchdata: dict) -> dict:
        non_blocking = self.device.type == "cuda"
        move = lambda v: [t.to(self.device, non_blocking=non_blocking) for t in v] if isinstance(v, list) \
            else v.to(self.device, non_blocking=non_blocking)  # noqa: E731
        batch = {"data": move(batchdata["image"]), "target": move(batchdata["label"]),
                 "keys": batchdata.get("keys", [])}
        for key in ("instances", "regions"):
            if key in batchdata:
                batch[key] = move(batchdata[key])
        return batch

    def _augment_on_device(self, batchdata: dict) -> dict:
        from monai_nnunet.data import apply_per_sample

        chain, keys = self._device_augmentation
        return apply_per_sample(chain, batchdata, ["image", "label"], ["image", *keys], self.device)

    def train_step(self, batch: dict) -> torch.Tensor:
        """Forward pass and loss for one batch (``batch["data"]``, ``batch["target"]``); returns the loss.

        The engine's iteration runs it under autocast on CUDA and does the backward pass, gradient clipping (norm
        12) and the optimiser step. An override may return a loss tensor (the same happens) or do its own update
        and return a detached value.
        """
        output = self.network(batch["data"])
        return self.loss(output, batch["target"], **self._loss_inputs(batch))

    def validation_step(self, batch: dict) -> dict:
        """Validation loss for one batch of patches (network in eval mode, no gradients)."""
        output = self.network(batch["data"])
        target = batch["target"]
        extras = self._loss_inputs(batch)
        if isinstance(output, torch.Tensor) and isinstance(target, list):  # eval mode: full resolution only
            target = target[0]
            extras = {k: v[0] if isinstance(v, list) else v for k, v in extras.items()}
        return {"loss": self.loss(output, target, **extras)}

    def training_iteration(self, engine, batchdata: dict) -> dict:
        """The training engine's iteration: ``train_step`` then backward, clipping and the optimiser step."""
        if self._device_augmentation is not None:
            batchdata = self._augment_on_device(batchdata)
        batch = self._batch_to_device(batchdata)
        self.network.train()
        if self._epoch_first_lr is None:
            self._epoch_first_lr = float(self.optimizer.param_groups[0]["lr"])
        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast(self.device.type, enabled=self.use_amp):
            result = self.train_step(batch)
        loss = result["loss"] if isinstance(result, dict) else result
        if isinstance(loss, torch.Tensor) and loss.requires_grad:
            if self.grad_scaler is not None:
                self.grad_scaler.scale(loss).backward()
                self.grad_scaler.unscale_(self.optimizer)
                torch.nn.utils.clip_grad_norm_(self.network.parameters(), self.settings.grad_clip_norm)
                self.grad_scaler.step(self.optimizer)
                self.grad_scaler.update()
            else:
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.network.parameters(), self.settings.grad_clip_norm)
                self.optimizer.step()
        value = float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)
        self._epoch_train_losses.append(value)
        return {"loss": value}

    def validation_iteration(self, engine, batchdata: dict) -> dict:
        """The evaluator's iteration: ``validation_step`` in eval mode without gradients."""
        batch = self._batch_to_device(batchdata)
        self.network.eval()
        with torch.no_grad(), torch.autocast(self.device.type, enabled=self.use_amp):
            result = self.validation_step(batch)
        loss = result["loss"] if isinstance(result, dict) else result
        value = float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)
        self._epoch_val_losses.append(value)
        return {"loss": value}

    # ------------------------------------------------------------------------------------------ run control
    def start(self, train_engine, evaluator=None) -> None:
        """Binds the engines (called by the bundle's ``run`` section before training starts): prepares the output
        folder, writes debug.json, resumes from a checkpoint with ``continue_training``."""
        self.train_engine, self.evaluator = train_engine, evaluator
        self.output_folder.mkdir(parents=True, exist_ok=True)
        if self.is_main_process:
            for name in ("plans.json", "dataset.json"):
                target = self.output_folder.parent / name
                source = self.plans_manager.plans if name == "plans.json" else self.dataset.raw
                save_json(source, target)
        if self.continue_training:
            checkpoint = find_resume_checkpoint(self.output_folder)
            if checkpoint is None:
                self.print_to_log_file(f"-c: no checkpoint in {self.output_folder}, starting a new training")
            else:
                self.load_checkpoint(checkpoint)
                done = int(self.log.epochs_done)
                train_engine.state.epoch = done
                train_engine.state.iteration = done * self.settings.iterations_per_epoch
                self.print_to_log_file(f"resuming from {checkpoint.name} after epoch {done}")
        else:
            self.print_to_log_file(
                f"training {self.trainer_name} on {self.dataset_name} {self.configuration_name} fold {self.fold}: "
                f"{self.settings.num_epochs} epochs x {self.settings.iterations_per_epoch} iterations, "
                f"batch {self.settings.batch_size}, patch {self.settings.patch_size}, device {self.device}"
                + (f", DDP over {self.world_size} processes" if self.is_ddp else "")
            )
        if self.is_main_process:
            self._write_debug_json()

    def on_epoch_start(self) -> None:
        self._epoch_start_time = time.perf_counter()
        self._epoch_train_losses, self._epoch_val_losses = [], []
        self._epoch_first_lr = None
        reset_peak_memory(self.device)

    def on_epoch_end(self) -> None:
        """Records the epoch (losses, LR, seconds, memory), writes its log line, checkpoint_latest and progress.png."""
        mean = lambda v: float(np.mean(v)) if v else float("nan")  # noqa: E731
        lr_end = float(self.optimizer.param_groups[0]["lr"])
        self.log.record_epoch(mean(self._epoch_train_losses), mean(self._epoch_val_losses),
                              self._epoch_first_lr if self._epoch_first_lr is not None else lr_end,
                              self._last_lr_used(), time.perf_counter() - self._epoch_start_time,
                              memory_in_use_mb(self.device))
        epoch = self.log.epochs_done - 1
        self.print_to_log_file(self.log.epoch_line(epoch))
        if self.is_main_process:
            if self.save_checkpoints:
                self.save_checkpoint("checkpoint_latest.pth")
            plot_progress(self.log, self.output_folder / "progress.png")

    def _last_lr_used(self) -> float:
        """The rate of the epoch's last iteration (the scheduler has already stepped past it)."""
        scheduler = self.lr_scheduler
        if isinstance(scheduler, PolyLRScheduler):
            return scheduler.lr_at(max(scheduler.last_epoch - 1, 0)) if self.settings.lr_schedule == "per_iteration" \
                else float(self.optimizer.param_groups[0]["lr"])
        return float(self.optimizer.param_groups[0]["lr"])

    def on_train_end(self) -> None:
        """Runs the case-level validation after the last epoch (unless it just ran) and writes checkpoint_final.pth."""
        if self.evaluator is not None and self.log.epochs_done % self.settings.val_every != 0:
            self.evaluator.run()
        if self.save_checkpoints and self.is_main_process:
            self.save_checkpoint("checkpoint_final.pth")
        self.print_to_log_file(f"training finished after {self.log.epochs_done} epochs; best epoch "
                               f"{self.log.best_epoch} (mean Dice {self.log.best_metric})")

    # ----------------------------------------------------------------------------------- case validation
    def _foreground_classes(self) -> list:
        return list(self.dataset.foreground_regions)

    def class_names(self) -> list[str]:
        """Names of the foreground classes (or regions) in validation order, from dataset.json."""
        names = {}
        for name, value in self.dataset.labels.items():
            if name in ("ignore", "background"):
                continue
            key = (value if isinstance(value, tuple) else (value,)) if self.dataset.has_regions else value
            names[key] = name
        return [names.get(c, str(c)) for c in self._foreground_classes()]

    def validation_cases(self):
        """The fold's validation cases, whole, from the cache: a MONAI ``Dataset`` of ``{"image", "label",
        "case_id"}`` (``image`` ``(C, Z, Y, X)``, ``label`` ``(1, Z, Y, X)``)."""
        from monai.data import Dataset

        from monai_nnunet.preprocessing.cache import load_case

        def load(item: dict) -> dict:
            data, seg, _ = load_case(self.cache_folder, item["case_id"])
            return {"image": torch.from_numpy(np.array(data, dtype=np.float32)),
                    "label": torch.from_numpy(np.array(seg, dtype=np.int16)), "case_id": item["case_id"]}

        _, val_ids = self.get_tr_and_val_case_ids()
        return Dataset([{"case_id": c} for c in val_ids], transform=load)

    def case_inferer(self):
        """The predictor's sliding window (half-patch steps, Gaussian weighting sigma = patch / 8) on whole cases,
        without test-time mirroring; a 2d configuration predicts the slices of the first axis."""
        from monai_nnunet.training.validation import WholeCaseInferer

        return WholeCaseInferer(self.settings.patch_size, device=self.device)

    def begin_case_validation(self) -> None:
        from monai_nnunet.networks import set_deep_supervision

        self._case_counts: list[np.ndarray] = []
        self._case_network_state = self.network.training
        self.network.eval()
        set_deep_supervision(self.network, False)

    def case_validation_iteration(self, engine, batchdata: dict) -> dict:
        """Predicts one whole validation case and counts true/false positives and false negatives per class."""
        from monai_nnunet.training.validation import segmentation_counts

        network = self.network.module if hasattr(self.network, "module") else self.network  # no DDP sync here
        with torch.no_grad():
            logits = engine.inferer(batchdata["image"], network)[0].float()
        if self.dataset.has_regions:
            prediction = (torch.sigmoid(logits) > 0.5).cpu().numpy()
        else:
            prediction = logits.argmax(0).cpu().numpy()
        target = batchdata["label"][0, 0].numpy()
        target = np.where(target < 0, 0, target)
        counts = segmentation_counts(prediction, target, self._foreground_classes(), self.dataset.ignore_label)
        self._case_counts.append(counts)
        return {"case_id": batchdata["case_id"]}

    def end_case_validation(self) -> bool:
        """Dice per foreground class and case (NaN where the class is absent from both), averaged over cases, then
        over classes; logs it and saves checkpoint_best.pth when the mean improves. Returns whether it improved."""
        from monai_nnunet.networks import set_deep_supervision
        from monai_nnunet.training.validation import dice_from_counts

        set_deep_supervision(self.network, self.settings.enable_deep_supervision)
        self.network.train(self._case_network_state)
        classes = self._foreground_classes()
        with np.errstate(all="ignore"):
            per_case = np.stack([dice_from_counts(c) for c in self._case_counts]) if self._case_counts else \
                np.full((1, len(classes)), np.nan)
            per_class = np.nanmean(per_case, axis=0)
        epoch = self.train_engine.state.epoch - 1 if self.train_engine is not None else max(self.log.epochs_done - 1, 0)
        improved = self.log.record_validation(epoch, [float(v) for v in per_class])
        self.print_to_log_file(self.log.validation_line(self.class_names()))
        if improved and self.save_checkpoints and self.is_main_process:
            self.save_checkpoint("checkpoint_best.pth")
            self.print_to_log_file(f"new best mean Dice {self.log.best_metric:.4f} at epoch {epoch}: checkpoint_best.pth")
        return improved

    # -------------------------------------------------------------------------------------- checkpoints
    def checkpoint_state(self) -> dict:
        """The checkpoint dict: the documented keys plus what resuming and prediction need."""
        network = self.network.module if hasattr(self.network, "module") else self.network
        epochs = int(self.log.epochs_done)
        return {
            "network_weights": network.state_dict(),
            "optimizer_state": self.optimizer.state_dict() if self.optimizer is not None else None,
            "grad_scaler_state": self.grad_scaler.state_dict() if self.grad_scaler is not None else None,
            "epoch": epochs,
            "current_epoch": epochs,
            "init": json.loads(json.dumps(self.init_args)),
            "trainer_name": self.trainer_name,
            "trainer_config": json.loads(json.dumps(self.trainer_config.to_dict(), default=str)),
            "plans": self.plans_manager.plans,
            "configuration": self.configuration_name,
            "dataset_json": self.dataset.raw,
            "lr_scheduler_state": self.lr_scheduler.state_dict() if self.lr_scheduler is not None else None,
            "logging": self.log.to_dict(),
            "best_metric": self.log.best_metric,
            "inference_allowed_mirroring_axes": self.inference_allowed_mirroring_axes,
        }

    def save_checkpoint(self, name: str) -> Path:
        """Writes ``checkpoint_state()`` to the fold folder atomically (callers run it on rank 0 only)."""
        path = self.output_folder / name
        save_checkpoint(self.checkpoint_state(), path)
        return path

    def load_checkpoint(self, path: str | os.PathLike) -> None:
        """Restores network, optimizer, grad scaler, LR schedule position, log and best metric.

        Raises:
            CheckpointError: when the checkpoint does not fit this run.
        """
        state = load_checkpoint(path, map_location=self.device)
        network = self.network.module if hasattr(self.network, "module") else self.network
        try:
            network.load_state_dict(state["network_weights"])
        except RuntimeError as e:
            raise CheckpointError(f"{path}: the network weights do not fit this configuration: {e}") from e
        if state.get("optimizer_state") is not None and self.optimizer is not None:
            self.optimizer.load_state_dict(state["optimizer_state"])
        if state.get("grad_scaler_state") is not None and self.grad_scaler is not None:
            self.grad_scaler.load_state_dict(state["grad_scaler_state"])
        if state.get("lr_scheduler_state") is not None and self.lr_scheduler is not None:
            self.lr_scheduler.load_state_dict(state["lr_scheduler_state"])
        if state.get("logging"):
            self.log = TrainingLog.from_dict(state["logging"])

    def _write_debug_json(self) -> None:
        network = self.network.module if hasattr(self.network, "module") else self.network
        info = {
            "trainer_name": self.trainer_name,
            "trainer_class": f"{type(self).__module__}.{type(self).__qualname__}",
            "network_class": f"{type(network).__module__}.{type(network).__qualname__}",
            "parameter_count": int(sum(p.numel() for p in network.parameters())),
            "architecture": self.configuration_manager.architecture,
            "plans_configuration": self.configuration_manager.configuration,
            "trainer_config": self.trainer_config.to_dict(),
            "settings": self.settings.to_dict(),
            "loss": type(self.loss).__name__ if self.loss is not None else None,
            "device": str(self.device),
            "versions": _library_versions(),
        }
        save_json(json.loads(json.dumps(info, default=str)), self.output_folder / "debug.json")

    # ------------------------------------------------------------------------------------- Python front
    def initialize(self) -> None:
        """Writes the run's bundle into the fold folder and instantiates it (network, optimizer, loss, loaders,
        engines) with this object as the ``nnunet_trainer`` component."""
        if self.workflow is not None:
            return
        from monai.bundle import ConfigWorkflow

        from monai_nnunet.bundle.run_bundle import write_training_bundle

        config_file = write_training_bundle(self)
        self.workflow = ConfigWorkflow(config_file=str(config_file), workflow_type="train", nnunet_trainer=self)
        self.workflow.initialize()

    def run_training(self) -> None:
        """Trains (through the run's bundle), then runs the final validation."""
        self.initialize()
        self.workflow.run()
        self.workflow.finalize()

    def validate_only(self, use_best: bool = False) -> Path:
        """``--val``: builds the run's components, loads checkpoint_final.pth (``use_best``: checkpoint_best.pth)
        and runs the final validation.

        Raises:
            CheckpointError: when that checkpoint does not exist.
        """
        name = "checkpoint_best.pth" if use_best else "checkpoint_final.pth"
        path = self.output_folder / name
        if not path.is_file():
            raise CheckpointError(f"{path} does not exist: --val needs a trained fold"
                                  + (" with a case-level validation (checkpoint_best)" if use_best else ""))
        self.initialize()
        self.workflow.parser.get_parsed_content("optimizer")
        self.load_checkpoint(path)
        self.print_to_log_file(f"validating {name} (epoch {self.log.epochs_done})")
        return self.perform_actual_validation()

    def perform_actual_validation(self) -> Path:
        """Final validation with the current weights: predicts the fold's validation cases (sliding window,
        mirroring TTA), writes them in their original geometry to ``validation_raw/`` and
        ``validation_raw/summary.json`` (per case and mean Dice per class); returns the summary file."""
        from monai_nnunet.training.final_validation import run_final_validation

        return run_final_validation(self)


def _library_versions() -> dict:
    import monai

    import monai_nnunet

    versions = {"python": platform.python_version(), "torch": torch.__version__, "monai": monai.__version__,
                "numpy": np.__version__, "monai_nnunet": monai_nnunet.__version__}
    try:
        import ignite

        versions["pytorch-ignite"] = ignite.__version__
    except ImportError:  # pragma: no cover
        pass
    if torch.cuda.is_available():
        versions["cuda"] = torch.version.cuda
        versions["gpu"] = torch.cuda.get_device_name(0)
    return versions
