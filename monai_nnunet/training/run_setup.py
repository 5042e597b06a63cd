"""What a training run is before anything trains: its dataset, plans, configuration, cache, fold and split, checked.

:func:`prepare_run` validates everything a run needs and writes nothing, so a command that fails here leaves no
file behind. :func:`fold_split` is what the run's bundle calls for the fold's training and validation case ids.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from monai_nnunet import paths
from monai_nnunet.dataset.dataset_json import DatasetDescription, load_dataset_json
from monai_nnunet.dataset.naming import resolve_dataset_name
from monai_nnunet.dataset.splits import generate_crossval_split, load_splits
from monai_nnunet.planning.plans import ConfigurationManager, PlansManager
from monai_nnunet.preprocessing.cache import cache_mismatch, case_ids_in_cache
from monai_nnunet.training.configs.registry import DEFAULT_TRAINER, trainer_output_folder_name
from monai_nnunet.utils.devices import resolve_device
from monai_nnunet.training.distributed import rank
from monai_nnunet.utils.files import save_json

__all__ = ["RunSetup", "TrainingSetupError", "check_flags", "fold_split", "parse_fold", "prepare_run",
           "resolve_device"]


class TrainingSetupError(ValueError):
    """A training run cannot start: missing preprocessed data, a bad fold, an unavailable device, ..."""


def parse_fold(fold: int | str) -> int | str:
    """``0``... or ``"all"``.

    Raises:
        TrainingSetupError: for anything else.
    """
    if isinstance(fold, str) and fold == "all":
        return "all"
    try:
        value = int(fold)
    except (TypeError, ValueError):
        raise TrainingSetupError(f"fold must be an integer (0-4 for the 5-fold split) or 'all', got {fold!r}") from None
    if value < 0:
        raise TrainingSetupError(f"fold must be >= 0 or 'all', got {value}")
    return value


def check_flags(**flags: object) -> None:
    """Refuses run parameters that must be booleans but are not (``--deep_supervision false`` on the
    ``monai.bundle run`` command line arrives as the string ``"false"``, which Python takes as true).

    Raises:
        TrainingSetupError: naming the parameter and how to write it.
    """
    for name, value in flags.items():
        if not isinstance(value, bool):
            raise TrainingSetupError(f"run parameter {name} must be true or false, got {value!r}; on the "
                                     f"monai.bundle run command line write --{name} True (or False)")


def fold_split(dataset_dir: str | os.PathLike, cache_dir: str | os.PathLike, fold: int | str) -> dict[str, list[str]]:
    """The fold's ``{"train": [...], "val": [...]}`` case ids (``splits_final.json``; fold ``all``: every case in
    both). A missing ``splits_final.json`` is written with nnU-Net's 5-fold split of the cached cases.

    Raises:
        TrainingSetupError: when the fold is not in the split file.
    """
    fold = parse_fold(fold)
    all_ids = case_ids_in_cache(Path(cache_dir))
    if fold == "all":
        return {"train": list(all_ids), "val": list(all_ids)}
    split_file = Path(dataset_dir) / "splits_final.json"
    if split_file.is_file():
        splits = load_splits(split_file, all_ids)
    else:
        splits = generate_crossval_split(all_ids)  # the same on every rank; global rank 0 writes it
        if rank() == 0:
            save_json(splits, split_file)
    if fold >= len(splits):
        raise TrainingSetupError(f"fold {fold} does not exist: {split_file} has {len(splits)} folds")
    return {"train": list(splits[fold]["train"]), "val": list(splits[fold]["val"])}


@dataclass
class RunSetup:
    """A checked training run: where its inputs are and where its outputs go.

    Attributes:
        dataset_name: ``DatasetXXX_Name``.
        preprocessed_folder: the dataset's preprocessed folder (plans, dataset.json, caches).
        plans_identifier: e.g. ``nnUNetPlans``.
        plans: the plans.
        configuration_name: e.g. ``3d_fullres``.
        configuration: the plans configuration (``inherits_from`` resolved).
        dataset: dataset.json.
        cache_folder: the configuration's preprocessed cache.
        fold: ``0``... or ``"all"``.
        output_folder: the fold folder.
    """

    dataset_name: str
    preprocessed_folder: Path
    plans_identifier: str
    plans: PlansManager
    configuration_name: str
    configuration: ConfigurationManager
    dataset: DatasetDescription
    cache_folder: Path
    fold: int | str
    output_folder: Path

    def split(self) -> dict[str, list[str]]:
        return fold_split(self.preprocessed_folder, self.cache_folder, self.fold)


def prepare_run(dataset: int | str, configuration: str, fold: int | str, plans_identifier: str = "nnUNetPlans",
                output_folder_name: str | None = None, preprocessed_folder: str | os.PathLike | None = None,
                output_folder: str | os.PathLike | None = None) -> RunSetup:
    """Checks that a run can start and says where everything is; writes nothing (but a missing
    ``splits_final.json``, as nnU-Net does).

    Args:
        dataset: id or name (``4``, ``"004"``, ``"Dataset004_Hippocampus"``).
        configuration: plans configuration.
        fold: 0-4 or ``"all"``.
        plans_identifier: plans name.
        output_folder_name: ``TRAINER__PLANS__CONFIG`` (used when ``output_folder`` is not given).
        preprocessed_folder: the dataset's preprocessed folder (default ``$nnUNet_preprocessed/DatasetXXX_Name``).
        output_folder: the fold folder (default ``$nnUNet_results/DatasetXXX_Name/<output_folder_name>/fold_N``).

    Raises:
        TrainingSetupError: missing plans or cache, unknown configuration, a fold the split does not have.
        DatasetNotFoundError: no dataset with that id.
    """
    fold = parse_fold(fold)
    if preprocessed_folder is None:
        preprocessed_folder = paths.nnunet_preprocessed() / resolve_dataset_name(dataset)
    preprocessed_folder = Path(preprocessed_folder)
    plans_file = preprocessed_folder / f"{plans_identifier}.json"
    if not plans_file.is_file():
        raise TrainingSetupError(f"{plans_file} does not exist: run nnUNetv2_plan_and_preprocess -d {dataset} "
                                 f"(or -overwrite_plans_name {plans_identifier}) first")
    plans = PlansManager(plans_file)
    try:
        configuration_manager = plans.get_configuration(configuration)
    except ValueError as e:
        raise TrainingSetupError(str(e)) from e
    dataset_json = preprocessed_folder / "dataset.json"
    if not dataset_json.is_file():
        raise TrainingSetupError(f"{dataset_json} does not exist: the fingerprint and the cache of "
                                 f"{preprocessed_folder.name} are missing; run nnUNetv2_extract_fingerprint -d {dataset} "
                                 f"and nnUNetv2_preprocess -d {dataset} -plans_name {plans_identifier} -c "
                                 f"{configuration} first")
    cache = preprocessed_folder / configuration_manager.data_identifier
    if not cache.is_dir():
        raise TrainingSetupError(f"{cache} does not exist: preprocess configuration {configuration} first "
                                 f"(nnUNetv2_preprocess -d {dataset} -c {configuration} -plans_name {plans_identifier})")
    if next(cache.glob("*.b2nd"), None) is not None and next(cache.glob("*.npy"), None) is None \
            and next(cache.glob("*.npz"), None) is None:
        raise TrainingSetupError(f"{cache} was preprocessed by nnU-Net itself (blosc2 .b2nd files); run this "
                                 f"package's nnUNetv2_preprocess -d {dataset} -c {configuration} -plans_name "
                                 f"{plans_identifier} first (plans written by nnU-Net are used as they are)")
    if next(cache.glob("*.pkl"), None) is not None and next(cache.glob("*.json"), None) is None:
        raise TrainingSetupError(f"{cache} was preprocessed by an earlier version of this package (per-case .pkl "
                                 f"pickles, which could run code when loaded); re-run nnUNetv2_preprocess -d {dataset} "
                                 f"-c {configuration} -plans_name {plans_identifier}")
    mismatch = cache_mismatch(cache, plans, configuration)
    if mismatch is not None:
        raise TrainingSetupError(f"{cache} was not made by {plans_file.name}: {mismatch}; re-run nnUNetv2_preprocess "
                                 f"-d {dataset} -c {configuration} -plans_name {plans_identifier}")
    setup = RunSetup(
        dataset_name=preprocessed_folder.name, preprocessed_folder=preprocessed_folder,
        plans_identifier=plans_identifier, plans=plans, configuration_name=configuration,
        configuration=configuration_manager, dataset=load_dataset_json(dataset_json), cache_folder=cache, fold=fold,
        output_folder=Path(output_folder) if output_folder is not None else
        paths.nnunet_results() / preprocessed_folder.name / (
            output_folder_name or trainer_output_folder_name(DEFAULT_TRAINER, plans_identifier, configuration)) /
        f"fold_{fold}",
    )
    setup.split()  # fails now, with a clear message, for a fold the split does not have
    return setup
