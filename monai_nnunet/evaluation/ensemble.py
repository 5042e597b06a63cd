"""Ensembles: the mean of saved probabilities (``CASE.npz``) of several models, as nnU-Net v2's ``nnUNetv2_ensemble``.

Each input folder holds ``CASE.npz`` (``probabilities``, ``(K, Z, Y, X)`` in the input's array order) and
``CASE.json`` (properties with the geometry), written by ``nnUNetv2_predict --save_probabilities`` or by validation
with ``--npz``. The mean probabilities give the label map (argmax, or regions painted in ``regions_class_order``),
written in the geometry of the first folder's ``CASE.json``. nnU-Net's ``CASE.pkl`` pickles are never loaded (a
pickle runs code): a folder that has only those is refused with the command that rewrites it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from monai_nnunet.dataset.dataset_json import DatasetDescription
from monai_nnunet.dataset.io import write_segmentation
from monai_nnunet.inference.export import probabilities_to_segmentation
from monai_nnunet.utils.files import atomic_path, load_json, save_json
from monai_nnunet.utils.parallel import WorkerPool, default_num_processes
from monai_nnunet.utils.properties import PropertiesError, load_properties

__all__ = [
    "VALIDATION_FOLDER_NAMES",
    "average_probabilities",
    "ensemble_crossvalidations",
    "ensemble_folders",
    "merge_probability_files",
    "validation_folder",
]

#: Where a fold's validation predictions are looked for: the trainer's ``validation_raw`` (our contract), then
#: nnU-Net v2's ``validation``.
VALIDATION_FOLDER_NAMES = ("validation_raw", "validation")


def validation_folder(model_folder: str | os.PathLike, fold: int | str) -> Path:
    """The validation predictions of one fold of a trained model.

    Raises:
        FileNotFoundError: when the fold or its validation folder is missing (the message says which).
    """
    fold_folder = Path(model_folder) / f"fold_{fold}"
    if not fold_folder.is_dir():
        existing = sorted(p.name for p in Path(model_folder).glob("fold_*")) if Path(model_folder).is_dir() else []
        raise FileNotFoundError(f"fold {fold} of {Path(model_folder).name} has not been trained: {fold_folder} does "
                                f"not exist (present: {', '.join(existing) if existing else 'none'})")
    for name in VALIDATION_FOLDER_NAMES:
        if (fold_folder / name).is_dir():
            return fold_folder / name
    raise FileNotFoundError(f"{fold_folder} has no validation predictions ({' or '.join(VALIDATION_FOLDER_NAMES)}/); "
                            "has the training of this fold finished?")


def average_probabilities(files: Sequence[str | os.PathLike]) -> np.ndarray:
    """Mean of the ``probabilities`` arrays of several ``.npz`` files (float32).

    Raises:
        ValueError: when no file is given or the arrays differ in shape (the message names the files).
    """
    if not files:
        raise ValueError("no probability files to average")
    total = None
    for f in files:
        with np.load(f) as npz:
            if "probabilities" not in npz:
                raise ValueError(f"{f} holds no 'probabilities' array (written by --save_probabilities?)")
            probabilities = npz["probabilities"].astype(np.float32)
        if total is None:
            total, first = probabilities, f
        elif probabilities.shape != total.shape:
            raise ValueError(f"{f} has probabilities of shape {probabilities.shape}, {first} of {total.shape}")
        else:
            total += probabilities
    total /= len(files)
    return total


def merge_probability_files(files: Sequence[str | os.PathLike], output_file_truncated: str | os.PathLike,
                            dataset: DatasetDescription, save_probabilities: bool = False) -> Path:
    """Averages one case's probabilities over models and writes the label map (and optionally the mean).

    Args:
        files: the case's ``.npz`` in each folder; the ``.json`` beside the first gives the geometry.
        output_file_truncated: output path without ending.
        dataset: labels / regions and file ending.
        save_probabilities: also write the mean as ``.npz`` with the ``.json``.

    Returns:
        The written segmentation file.
    """
    properties_file = Path(str(files[0])[: -len(".npz")] + ".json")
    try:
        properties = load_properties(properties_file, rerun="nnUNetv2_predict --save_probabilities (or the "
                                                            "training's final validation with --npz) with this package")
    except PropertiesError as e:
        raise FileNotFoundError(f"{e}; it holds the geometry the ensemble is written in") from None
    probabilities = average_probabilities(files)
    segmentation = probabilities_to_segmentation(probabilities, dataset)
    output = Path(str(output_file_truncated) + dataset.file_ending)
    write_segmentation(segmentation, output, properties)
    if save_probabilities:
        with atomic_path(str(output_file_truncated) + ".npz") as tmp:
            np.savez_compressed(tmp, probabilities=probabilities)
        shutil.copyfile(properties_file, str(output_file_truncated) + ".json")
    return output


def _merge(item: tuple[list[str], str], dataset: DatasetDescription, save_probabilities: bool) -> str:
    return str(merge_probability_files(item[0], item[1], dataset, save_probabilities))


def _dataset(dataset_json: str | os.PathLike | Mapping[str, Any] | DatasetDescription) -> DatasetDescription:
    if isinstance(dataset_json, DatasetDescription):
        return dataset_json
    if isinstance(dataset_json, Mapping):
        return DatasetDescription(dict(dataset_json))
    return DatasetDescription(load_json(dataset_json), source=str(dataset_json))


def _run_merges(jobs: list[tuple[list[str], str]], dataset: DatasetDescription, save_probabilities: bool,
                num_processes: int | None) -> list[Path]:
    if not jobs:
        return []
    names = [Path(out).name for _, out in jobs]
    written = []
    with WorkerPool(min(num_processes or default_num_processes(), len(jobs))) as pool:
        for _, out in pool.map(_merge, jobs, names, desc="Ensembling", extra_args=(dataset, save_probabilities),
                               show_progress=False):
            written.append(Path(out))
    return sorted(written)


def ensemble_folders(
    input_folders: Sequence[str | os.PathLike],
    output_folder: str | os.PathLike,
    save_merged_probabilities: bool = False,
    num_processes: int | None = None,
    dataset_json: str | os.PathLike | Mapping[str, Any] | DatasetDescription | None = None,
    plans: str | os.PathLike | Mapping[str, Any] | None = None,
) -> list[Path]:
    """``nnUNetv2_ensemble -i A B ... -o OUT``: averages the probabilities of the cases all folders share.

    Args:
        input_folders: prediction folders written with ``--save_probabilities``.
        output_folder: created if missing; gets the label maps and ``dataset.json`` (and ``plans.json``).
        save_merged_probabilities: also write the mean probabilities.
        num_processes: worker processes.
        dataset_json: default: the first folder's ``dataset.json`` (written there by ``nnUNetv2_predict``).
        plans: default: the first folder's ``plans.json`` when present (copied to the output for later tools).

    Returns:
        The segmentation files written.

    Raises:
        FileNotFoundError: a folder or its ``dataset.json`` is missing, or no ``.npz`` is found.
        ValueError: the folders do not hold the same cases (the message lists the differences).
    """
    folders = [Path(f) for f in input_folders]
    if len(folders) < 2:
        raise ValueError("an ensemble needs at least two input folders")
    for f in folders:
        if not f.is_dir():
            raise FileNotFoundError(f"input folder {f} does not exist")
    if dataset_json is None:
        if not (folders[0] / "dataset.json").is_file():
            raise FileNotFoundError(f"{folders[0] / 'dataset.json'} is missing; pass the dataset.json explicitly")
        dataset_json = folders[0] / "dataset.json"
    dataset = _dataset(dataset_json)
    plans_dict = None
    if plans is not None:
        plans_dict = dict(plans) if isinstance(plans, Mapping) else load_json(plans)
    elif (folders[0] / "plans.json").is_file():
        plans_dict = load_json(folders[0] / "plans.json")
    per_folder = [{p.name for p in f.glob("*.npz")} for f in folders]
    everything = set().union(*per_folder)
    if not everything:
        raise FileNotFoundError(f"no .npz probabilities in {', '.join(map(str, folders))}; predict with "
                                "--save_probabilities")
    for f, names in zip(folders, per_folder):
        if names != everything:
            raise ValueError(f"{f} lacks the probabilities of {sorted(everything - names)[:10]}; every folder must "
                             "hold the same cases")
    output_folder = Path(output_folder)
    output_folder.mkdir(parents=True, exist_ok=True)
    save_json(dataset.raw, output_folder / "dataset.json")
    if plans_dict is not None:
        save_json(plans_dict, output_folder / "plans.json")
    jobs = [([str(f / n) for f in folders], str(output_folder / n[: -len(".npz")])) for n in sorted(everything)]
    return _run_merges(jobs, dataset, save_merged_probabilities, num_processes)


def ensemble_crossvalidations(
    model_folders: Sequence[str | os.PathLike],
    output_folder: str | os.PathLike,
    folds: Sequence[int | str] = (0, 1, 2, 3, 4),
    num_processes: int | None = None,
    overwrite: bool = True,
) -> list[Path]:
    """Ensembles the cross-validation predictions of several trained models (``find_best_configuration``).

    Each model's validation probabilities are gathered over the folds (a case may sit in a different fold in each
    model); every model must have predicted every case.

    Raises:
        FileNotFoundError: a fold or its validation folder is missing, or it holds no ``.npz`` (validation was run
            without ``--npz``).
        ValueError: a case is missing from a model, or appears in two folds of one model.
    """
    model_folders = [Path(m) for m in model_folders]
    dataset = _dataset(model_folders[0] / "dataset.json")
    mapping: list[dict[str, str]] = []
    for model in model_folders:
        files: dict[str, str] = {}
        for fold in folds:
            folder = validation_folder(model, fold)
            found = sorted(folder.glob("*.npz"))
            if not found:
                raise FileNotFoundError(f"{folder} holds no .npz probabilities: run that fold's validation with "
                                        f"--npz to ensemble {model.name}")
            for p in found:
                if p.name in files:
                    raise ValueError(f"case {p.name[:-4]} is in more than one fold of {model.name}")
                files[p.name] = str(p)
        mapping.append(files)
    everything = set().union(*mapping)
    for model, files in zip(model_folders, mapping):
        missing = sorted(everything - set(files))
        if missing:
            raise ValueError(f"{model.name} has no validation prediction of {missing[:10]}")
    output_folder = Path(output_folder)
    output_folder.mkdir(parents=True, exist_ok=True)
    jobs = []
    for name in sorted(everything):
        target = output_folder / name[: -len(".npz")]
        if not overwrite and Path(str(target) + dataset.file_ending).is_file():
            continue
        jobs.append(([m[name] for m in mapping], str(target)))
    written = _run_merges(jobs, dataset, False, num_processes)
    shutil.copyfile(model_folders[0] / "plans.json", output_folder / "plans.json")
    shutil.copyfile(model_folders[0] / "dataset.json", output_folder / "dataset.json")
    return written
