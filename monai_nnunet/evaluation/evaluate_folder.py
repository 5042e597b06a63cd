"""Evaluate a folder of predictions against reference label maps: nnU-Net v2's ``summary.json``.

The summary has nnU-Net's layout and key names, so nnU-Net's tooling reads it and ours reads nnU-Net's::

    {"foreground_mean": {"Dice": ..., "IoU": ..., "FP": ..., ...},
     "mean": {"1": {"Dice": ..., ...}, "2": {...}},            # regions as "(1, 2)"
     "metric_per_case": [{"metrics": {"1": {"Dice", "IoU", "FP", "TP", "FN", "TN", "n_pred", "n_ref"}, ...},
                          "prediction_file": "...", "reference_file": "..."}, ...]}

``mean`` is the NaN-ignoring mean over cases per label or region; ``foreground_mean`` the mean of those over the
labels or regions (background is never evaluated). Labels are the dataset's foreground labels, or its regions when
it declares regions; reference voxels carrying the ignore label are left out. The trainer's final validation writes
its ``summary.json`` with :func:`evaluate_folder` too.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from copy import deepcopy
from pathlib import Path
from typing import Any

import numpy as np

from monai_nnunet.dataset.dataset_json import DatasetDescription, load_dataset_json
from monai_nnunet.dataset.io import read_segmentation
from monai_nnunet.evaluation.metrics import LabelOrRegion, case_metrics
from monai_nnunet.utils.files import load_json, save_json
from monai_nnunet.utils.parallel import WorkerPool, default_num_processes

__all__ = [
    "compute_metrics_on_folder",
    "evaluate_case_files",
    "evaluate_folder",
    "key_to_label_or_region",
    "label_or_region_to_key",
    "labels_or_regions_to_evaluate",
    "load_summary_json",
    "save_summary_json",
]


def label_or_region_to_key(label_or_region: LabelOrRegion) -> str:
    """nnU-Net's JSON key: ``1`` -> ``"1"``, ``(1, 2)`` -> ``"(1, 2)"``."""
    return str(tuple(label_or_region)) if isinstance(label_or_region, (tuple, list)) else str(int(label_or_region))


def key_to_label_or_region(key: str) -> LabelOrRegion:
    """Inverse of :func:`label_or_region_to_key`."""
    try:
        return int(key)
    except ValueError:
        return tuple(int(i) for i in key.replace("(", "").replace(")", "").split(",") if i.strip())


def labels_or_regions_to_evaluate(dataset: DatasetDescription) -> list[LabelOrRegion]:
    """The dataset's regions when it declares regions, else its foreground labels (nnU-Net's choice).

    As nnU-Net's label manager gives them: a region declared as one label (``"b": 2``) stays an int (key ``"2"``),
    one declared as a list is a tuple (key ``"(1, 2)"``).
    """
    if not dataset.has_regions:
        return list(dataset.foreground_labels)
    return [v if isinstance(v, tuple) else int(v) for name, v in dataset.labels.items()
            if name not in ("ignore", "background")]


def save_summary_json(results: Mapping[str, Any], output_file: str | os.PathLike) -> None:
    """Writes a summary with string keys (tuples as ``"(1, 2)"``), sorted as nnU-Net sorts them."""
    converted = deepcopy(dict(results))
    converted["mean"] = {label_or_region_to_key(k): v for k, v in results["mean"].items()}
    for case in converted["metric_per_case"]:
        case["metrics"] = {label_or_region_to_key(k): v for k, v in case["metrics"].items()}
    save_json(converted, output_file, sort_keys=True)


def load_summary_json(file: str | os.PathLike) -> dict:
    """Reads a summary (ours or nnU-Net's), turning keys back into labels (ints) and regions (tuples)."""
    results = load_json(file)
    results["mean"] = {key_to_label_or_region(k): v for k, v in results["mean"].items()}
    for case in results["metric_per_case"]:
        case["metrics"] = {key_to_label_or_region(k): v for k, v in case["metrics"].items()}
    return results


def evaluate_case_files(reference_file: str | os.PathLike, prediction_file: str | os.PathLike,
                        labels_or_regions: Sequence[LabelOrRegion], ignore_label: int | None = None) -> dict:
    """One case's entry of ``metric_per_case``.

    Raises:
        ValueError: when the two label maps differ in shape (the message names both files).
        ImageReadError: when a file cannot be read.
    """
    reference, _ = read_segmentation(reference_file)
    prediction, _ = read_segmentation(prediction_file)
    if reference.shape != prediction.shape:
        raise ValueError(f"{prediction_file} has shape {prediction.shape[1:]} but its reference {reference_file} has "
                         f"{reference.shape[1:]}")
    return {"reference_file": str(reference_file), "prediction_file": str(prediction_file),
            "metrics": case_metrics(reference, prediction, labels_or_regions, ignore_label)}


def _evaluate_pair(pair: tuple[str, str], labels_or_regions: list, ignore_label: int | None) -> dict:
    return evaluate_case_files(pair[0], pair[1], labels_or_regions, ignore_label)


def _nanmean(values: Sequence[float]) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(np.nanmean(np.asarray(values, dtype=np.float64))) if len(values) else float("nan")


def compute_metrics_on_folder(
    reference_folder: str | os.PathLike,
    prediction_folder: str | os.PathLike,
    labels_or_regions: Sequence[LabelOrRegion],
    file_ending: str,
    ignore_label: int | None = None,
    output_file: str | os.PathLike | None = None,
    num_processes: int | None = None,
    chill: bool = True,
) -> dict:
    """Evaluates every prediction of a folder against the reference of the same name.

    Args:
        reference_folder: reference label maps (``CASE<file_ending>``).
        prediction_folder: predictions; every file with ``file_ending`` is evaluated.
        labels_or_regions: labels (ints) and/or regions (tuples).
        file_ending: e.g. ``".nii.gz"``.
        ignore_label: reference value to leave out.
        output_file: where to write the summary (``.json``), or None.
        num_processes: worker processes (default: ``nnUNet_def_n_proc`` or the CPU count, at most 8).
        chill: ``False`` requires a prediction for every reference file.

    Returns:
        The summary dict (labels as ints, regions as tuples; see the module docstring).

    Raises:
        FileNotFoundError: a folder is missing, the prediction folder is empty, a prediction has no reference, or
            (``chill=False``) a reference has no prediction; the message names the files.
        ValueError: an output file not ending with ``.json``, or a shape mismatch.
    """
    reference_folder, prediction_folder = Path(reference_folder), Path(prediction_folder)
    if output_file is not None and not str(output_file).endswith(".json"):
        raise ValueError(f"the summary file must end with .json, got {output_file}")
    for folder, what in ((reference_folder, "reference"), (prediction_folder, "prediction")):
        if not folder.is_dir():
            raise FileNotFoundError(f"{what} folder {folder} does not exist")
    labels_or_regions = [tuple(int(v) for v in r) if isinstance(r, (tuple, list)) else int(r)
                         for r in labels_or_regions]
    if not labels_or_regions:
        raise ValueError("no labels or regions to evaluate")
    predictions = sorted(p.name for p in prediction_folder.iterdir() if p.name.endswith(file_ending)
                         and not p.name.startswith("."))
    if not predictions:
        raise FileNotFoundError(f"{prediction_folder} holds no prediction ending with {file_ending}")
    references = sorted(p.name for p in reference_folder.iterdir() if p.name.endswith(file_ending)
                        and not p.name.startswith("."))
    no_reference = sorted(set(predictions) - set(references))
    if no_reference:
        raise FileNotFoundError(f"no reference in {reference_folder} for prediction(s) {no_reference[:10]}")
    if not chill:
        missing = sorted(set(references) - set(predictions))
        if missing:
            raise FileNotFoundError(
                f"{prediction_folder} lacks predictions for {len(missing)} reference case(s), e.g. {missing[:10]} "
                "(--chill evaluates the predictions that exist)"
            )
    pairs = [(str(reference_folder / n), str(prediction_folder / n)) for n in predictions]
    by_name = {}
    with WorkerPool(min(num_processes or default_num_processes(), len(pairs))) as pool:
        for name, result in pool.map(_evaluate_pair, pairs, predictions, desc="Evaluating",
                                     extra_args=(labels_or_regions, ignore_label), show_progress=False):
            by_name[name] = result
    per_case = [by_name[n] for n in predictions]
    metric_names = list(per_case[0]["metrics"][labels_or_regions[0]])
    means = {r: {m: _nanmean([c["metrics"][r][m] for c in per_case]) for m in metric_names}
             for r in labels_or_regions}
    foreground = [r for r in labels_or_regions if r != 0]
    foreground_mean = {m: float(np.mean([means[r][m] for r in foreground])) if foreground else float("nan")
                       for m in metric_names}
    result = {"metric_per_case": per_case, "mean": means, "foreground_mean": foreground_mean}
    if output_file is not None:
        save_summary_json(result, output_file)
    return result


def evaluate_folder(
    reference_folder: str | os.PathLike,
    prediction_folder: str | os.PathLike,
    dataset_json: str | os.PathLike | Mapping[str, Any] | DatasetDescription,
    output_file: str | os.PathLike | None = None,
    num_processes: int | None = None,
    chill: bool = False,
) -> dict:
    """``nnUNetv2_evaluate_folder``: labels, regions, ignore label and file ending from a dataset.json.

    Args:
        reference_folder: reference label maps.
        prediction_folder: predictions (``CASE<file_ending>``).
        dataset_json: path, dict or description.
        output_file: default ``prediction_folder/summary.json``.
        num_processes: worker processes.
        chill: evaluate the predictions that exist even if some reference cases were not predicted (the final
            validation of one fold uses ``True``).

    Returns:
        The summary dict (see :func:`compute_metrics_on_folder`).
    """
    if isinstance(dataset_json, DatasetDescription):
        dataset = dataset_json
    elif isinstance(dataset_json, Mapping):
        dataset = DatasetDescription(dict(dataset_json))
    else:
        dataset = load_dataset_json(dataset_json)
    output_file = Path(prediction_folder) / "summary.json" if output_file is None else output_file
    return compute_metrics_on_folder(reference_folder, prediction_folder, labels_or_regions_to_evaluate(dataset),
                                     dataset.file_ending, dataset.ignore_label, output_file, num_processes, chill)
