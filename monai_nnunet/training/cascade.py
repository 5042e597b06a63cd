"""The cascade in training: where a stage's predictions for the next stage go, the check that a cascade stage's
previous stage has predicted every case of its fold, and the writer the final validation of a ``3d_lowres`` fold uses
to fill ``predicted_next_stage``.

As nnU-Net: the ``3d_lowres`` fold's final validation writes its validation cases, resampled to the next stage's
preprocessed shape, to ``<results>/TRAINER__PLANS__3d_lowres/predicted_next_stage/3d_cascade_fullres/CASE.npz``.
A cascade fold trains on cases of the other folds' validation sets too, so every fold of ``3d_lowres`` (or the one
that holds the missing cases) must have been trained and validated first.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from monai_nnunet.data.previous_stage import PREDICTED_NEXT_STAGE, missing_previous_stage_cases, save_next_stage_seg
from monai_nnunet.dataset.dataset_json import DatasetDescription
from monai_nnunet.dataset.splits import load_splits
from monai_nnunet.inference.export import logits_to_probabilities, probabilities_to_segmentation
from monai_nnunet.planning.plans import ConfigurationManager, PlansManager
from monai_nnunet.preprocessing.cache import CacheError, load_case
from monai_nnunet.preprocessing.resampling import resample_data_or_seg_to_shape
from monai_nnunet.training.configs.registry import DEFAULT_TRAINER, trainer_output_folder_name
from monai_nnunet.training.handlers.training_log import log_line

__all__ = ["NextStageWriter", "check_previous_stage_predictions", "predicted_next_stage_folder",
           "previous_stage_predictions_folder"]


def predicted_next_stage_folder(output_dir: str | os.PathLike) -> str:
    """``<results folder>/predicted_next_stage`` of a fold folder (``.../TRAINER__PLANS__CONFIG/fold_N``)."""
    return str(Path(output_dir).resolve().parent / PREDICTED_NEXT_STAGE)


def previous_stage_predictions_folder(fold_folder: str | os.PathLike, trainer_name: str, plans_identifier: str,
                                      previous_stage: str, configuration: str) -> Path:
    """Where a cascade stage's fold finds its previous stage's predictions: the previous stage's results folder
    beside its own (same trainer and plans), ``predicted_next_stage/<configuration>``."""
    dataset_results = Path(fold_folder).resolve().parent.parent
    return (dataset_results / trainer_output_folder_name(trainer_name, plans_identifier, previous_stage)
            / PREDICTED_NEXT_STAGE / configuration)


def _dataset_argument(dataset_name: str) -> str:
    match = re.match(r"^Dataset(\d{3})_", dataset_name)
    return str(int(match.group(1))) if match else dataset_name


def check_previous_stage_predictions(folder: str | os.PathLike, case_ids: Sequence[str], *, dataset_name: str,
                                     previous_stage: str, configuration: str, fold: int | str,
                                     preprocessed_folder: str | os.PathLike, trainer_name: str = DEFAULT_TRAINER,
                                     plans_identifier: str = "nnUNetPlans") -> None:
    """Refuses a cascade fold whose cases lack a prediction of the previous stage, naming the command that makes them.

    Args:
        folder: the previous stage's ``predicted_next_stage/<configuration>`` folder.
        case_ids: every case the fold uses (training and validation).
        dataset_name, previous_stage, configuration, fold, trainer_name, plans_identifier: for the message.
        preprocessed_folder: the dataset's preprocessed folder (its ``splits_final.json`` tells which folds of the
            previous stage predict the missing cases).

    Raises:
        ValueError: one line: how many cases are missing and the ``nnUNetv2_train`` command(s) that predict them.
    """
    missing = missing_previous_stage_cases(folder, list(dict.fromkeys(case_ids)))
    if not missing:
        return
    split_file = Path(preprocessed_folder) / "splits_final.json"
    folds: list[int | str] = []
    if split_file.is_file():
        splits = load_splits(split_file)
        wanted = set(missing)
        folds = [i for i, s in enumerate(splits) if wanted & set(s["val"])]
    if not folds:
        folds = [fold]
    extra = ("" if trainer_name == DEFAULT_TRAINER else f" -tr {trainer_name}") + \
        ("" if plans_identifier == "nnUNetPlans" else f" -p {plans_identifier}")
    results = Path(folder).parent.parent
    commands = []
    for f in folds:
        trained = (results / f"fold_{f}" / "checkpoint_final.pth").is_file()
        commands.append(f"nnUNetv2_train {_dataset_argument(dataset_name)} {previous_stage} {f}{extra}"
                        + (" --val" if trained else ""))
    raise ValueError(
        f"cannot train {configuration} fold {fold}: {len(missing)} of its {len(set(case_ids))} case(s) have no "
        f"{previous_stage} prediction in {folder} (e.g. {', '.join(missing[:3])}); train and validate the previous "
        f"stage first: {'; '.join(commands)}")


class NextStageWriter:
    """Writes a stage's predictions for its next stages (nnU-Net's ``resample_and_save`` in the final validation).

    Called with each validation case's logits (preprocessed space of this stage): the logits are resampled to the
    case's shape in each next stage's cache (this stage's probability resampling), turned into a label map and
    written to ``<folder>/<next stage>/CASE.npz``.

    Args:
        plans: the plans.
        configuration: this stage's configuration (its ``next_stage`` names the stages).
        dataset: the dataset description (labels or regions).
        preprocessed_folder: the dataset's preprocessed folder (the next stages' caches).
        folder: ``<results folder>/predicted_next_stage``.
        log_file: where a case missing from a next stage's cache is reported.
    """

    def __init__(self, plans: PlansManager, configuration: ConfigurationManager, dataset: DatasetDescription,
                 preprocessed_folder: str | os.PathLike, folder: str | os.PathLike,
                 log_file: str | os.PathLike | None = None):
        self.configuration = configuration
        self.dataset = dataset
        self.folder = Path(folder)
        self.log_file = log_file
        self.caches = {name: Path(preprocessed_folder) / plans.get_configuration(name).data_identifier
                       for name in configuration.next_stage_names or []}
        self.written: list[Path] = []

    def __bool__(self) -> bool:
        return bool(self.caches)

    def __call__(self, case_id: str, logits: np.ndarray, properties: Mapping[str, Any]) -> None:
        for name, cache in self.caches.items():
            try:
                data, _, _ = load_case(cache, case_id)
            except CacheError:
                log_line(self.log_file, f"predicting next stage {name} failed for case {case_id}: it is not in {cache}; "
                                        f"preprocess {name} first, then rerun this validation with --val")
                continue
            spacing = self.configuration.spacing
            if len(spacing) != len(data.shape[1:]):
                spacing = [float(properties["spacing_transposed"][0]), *spacing]
            kwargs = dict(self.configuration.resampling_fn_probabilities_kwargs
                          or {"is_seg": False, "order": 1, "order_z": 0, "force_separate_z": None})
            kwargs["is_seg"] = False
            resampled = resample_data_or_seg_to_shape(np.asarray(logits, dtype=np.float32), list(data.shape[1:]),
                                                      spacing, spacing, **kwargs)
            seg = probabilities_to_segmentation(logits_to_probabilities(resampled, self.dataset), self.dataset)
            self.written.append(save_next_stage_seg(seg, self.folder / name, case_id))

