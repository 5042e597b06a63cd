"""The final validation of a trained fold: the validation cases from the cache predicted as ``nnUNetv2_predict``
would (sliding window, mirroring test-time augmentation), written in their original geometry to
``validation_raw/``, and evaluated against ``gt_segmentations/`` into ``validation_raw/summary.json``."""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from monai_nnunet.dataset.dataset_json import load_dataset_json
from monai_nnunet.evaluation import evaluate_folder
from monai_nnunet.inference import Predictor, iter_preprocessed_cases, predict_cases_to_folder
from monai_nnunet.networks.config import unwrap_network
from monai_nnunet.networks.fast_kernels import standard_kernels
from monai_nnunet.planning.plans import PlansManager, plans_with_patch_size
from monai_nnunet.training.cascade import NextStageWriter
from monai_nnunet.training.distributed import rank
from monai_nnunet.training.handlers.training_log import log_line
from monai_nnunet.utils.checkpoints import load_checkpoint
from monai_nnunet.utils.files import load_json
from monai_nnunet.utils.parallel import default_num_processes

__all__ = ["FinalValidation"]


class FinalValidation:
    """The run's last step (``run`` of the bundle), also ``nnUNetv2_train ... --val`` alone.

    Args:
        network: the trained network (DDP wrapper allowed).
        plans_file, configuration, dataset_json_file: the run's plans, configuration name and dataset.json.
        cache_dir: the configuration's cache.
        case_ids: the fold's validation cases.
        output_dir: ``validation_raw``.
        reference_dir: ``gt_segmentations`` of the preprocessed dataset.
        mirror_axes: test-time mirroring axes.
        save_probabilities: also ``CASE.npz`` (``--npz``).
        checkpoint: load these weights first (``--val``); ``None``: the network's current weights.
        log_file: ``training_log.txt``.
        previous_stage_predictions: a cascade stage: the previous stage's ``predicted_next_stage/<configuration>``
            folder; each case's segmentation there is given as one-hot input channels (``cascade_labels``).
        cascade_labels: the labels of those channels.
        next_stage_folder: ``<results folder>/predicted_next_stage``; a configuration with a ``next_stage``
            (``3d_lowres``) also writes each case there, resampled to the next stage's cache (nnU-Net's cascade).
        patch_size: the run's patch size, the sliding window's (``None``: the plans').
    """

    def __init__(self, network: nn.Module, plans_file: str | os.PathLike, configuration: str,
                 dataset_json_file: str | os.PathLike, cache_dir: str | os.PathLike, case_ids: Sequence[str],
                 output_dir: str | os.PathLike, reference_dir: str | os.PathLike, mirror_axes: Sequence[int] = (),
                 save_probabilities: bool = False, checkpoint: str | os.PathLike | None = None,
                 log_file: str | os.PathLike | None = None,
                 previous_stage_predictions: str | os.PathLike | None = None, cascade_labels: Sequence[int] = (),
                 next_stage_folder: str | os.PathLike | None = None, patch_size: Sequence[int] | None = None) -> None:
        self.network = network
        self.patch_size = None if patch_size is None else [int(p) for p in patch_size]
        self.plans_file = Path(plans_file)
        self.configuration = configuration
        self.dataset_json_file = Path(dataset_json_file)
        self.cache_dir = Path(cache_dir)
        self.case_ids = list(case_ids)
        self.output_dir = Path(output_dir)
        self.reference_dir = Path(reference_dir)
        self.mirror_axes = tuple(int(a) for a in mirror_axes)
        self.save_probabilities = bool(save_probabilities)
        self.checkpoint = checkpoint
        self.log_file = log_file
        self.previous_stage_predictions = previous_stage_predictions
        self.cascade_labels = [int(v) for v in cascade_labels]
        self.next_stage_folder = next_stage_folder

    def run(self) -> Path | None:
        """Predicts, writes and evaluates the validation cases (rank 0 only); returns ``summary.json``."""
        if rank() != 0:
            return None
        # the network nnUNetv2_predict would build: PyTorch's instance-norm kernels, contiguous weights (a copy, so
        # the training network keeps its speed options)
        network = standard_kernels(copy.deepcopy(unwrap_network(self.network)))
        if self.checkpoint is not None:
            state = load_checkpoint(self.checkpoint, map_location="cpu")
            network.load_state_dict(state["network_weights"])
            log_line(self.log_file, f"validating {Path(self.checkpoint).name} (epoch {state.get('epoch')})")
        dataset = load_dataset_json(self.dataset_json_file)
        workers = default_num_processes()
        was_training = network.training
        try:
            device = next(network.parameters()).device
            plans = PlansManager(plans_with_patch_size(load_json(self.plans_file), self.configuration,
                                                       self.patch_size))
            predictor = Predictor.from_networks(network, plans, self.configuration,
                                                dataset.raw, mirror_axes=self.mirror_axes, device=device,
                                                verbose=False)
            next_stage = None if self.next_stage_folder is None else NextStageWriter(
                plans, predictor.configuration, dataset, self.cache_dir.parent, self.next_stage_folder, self.log_file)
            cases = iter_preprocessed_cases(self.cache_dir, self.case_ids, self.previous_stage_predictions,
                                            self.cascade_labels)
            predict_cases_to_folder(predictor, cases, self.output_dir, save_probabilities=self.save_probabilities,
                                    num_processes_export=0 if workers <= 1 else min(2, workers),
                                    on_logits=next_stage or None)
        finally:
            network.train(was_training)
        summary_file = self.output_dir / "summary.json"
        summary = evaluate_folder(self.reference_dir, self.output_dir, dataset, output_file=summary_file,
                                  num_processes=workers, chill=True)
        per_class = " ".join(f"{k}={v['Dice']:.4f}" for k, v in summary["mean"].items())
        log_line(self.log_file, f"final validation of {len(self.case_ids)} case(s): mean Dice "
                                f"{summary['foreground_mean']['Dice']:.4f} ({per_class}); {summary_file}")
        if next_stage:
            log_line(self.log_file, f"{len(next_stage.written)} prediction(s) for the next stage(s) "
                                    f"{', '.join(next_stage.caches)} written to {self.next_stage_folder}")
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        return summary_file
