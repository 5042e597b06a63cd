"""nnU-Net v2's connected-component post-processing: choosing it on cross-validation results and applying it.

:func:`determine_postprocessing` follows ``nnunetv2.postprocessing.remove_connected_components`` (2.8.1) step by step:

1. Evaluate the predictions (``summary.json``, reused when it exists).
2. Keep only the largest connected component of the whole foreground (all foreground labels together). Accept it
   when the foreground mean Dice rises strictly and no label's or region's mean Dice falls.
3. With more than one label or region: for each, in dataset.json order, keep only its largest component, starting
   from the best result so far; accept it when that label's (region's) mean Dice rises strictly.

Mean Dice is the NaN-ignoring mean over cases (a case without the label in reference and prediction does not count);
a NaN mean never compares greater, so it never accepts a step. Components use full connectivity; ties keep every
largest component. The accepted steps go to ``postprocessing.json`` and nnU-Net's ``postprocessing.pkl`` in the
predictions folder, the post-processed cases and their ``summary.json`` to ``postprocessed/``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from monai_nnunet.dataset.dataset_json import DatasetDescription, load_dataset_json
from monai_nnunet.dataset.io import read_segmentation, write_segmentation
from monai_nnunet.evaluation.evaluate_folder import (
    compute_metrics_on_folder,
    label_or_region_to_key,
    labels_or_regions_to_evaluate,
    load_summary_json,
    save_summary_json,
)
from monai_nnunet.planning.plans import PlansManager
from monai_nnunet.postprocessing.connected_components import (
    apply_postprocessing,
    remove_all_but_largest_component_from_segmentation,
)
from monai_nnunet.postprocessing.postprocessing_file import save_postprocessing
from monai_nnunet.utils.parallel import WorkerPool, default_num_processes

__all__ = ["apply_postprocessing_to_folder", "determine_postprocessing", "load_postprocess_save"]


def load_postprocess_save(segmentation_file: str | os.PathLike, output_file: str | os.PathLike,
                          pp_fns: Sequence[Callable[..., Any]], pp_fn_kwargs: Sequence[Mapping[str, Any]]) -> None:
    """Reads a label map, post-processes it and writes it (same geometry, atomically).

    Raises:
        ImageReadError: the file cannot be read.
    """
    seg, properties = read_segmentation(segmentation_file)
    write_segmentation(apply_postprocessing(seg[0], pp_fns, pp_fn_kwargs), output_file, properties)


def _process(job: tuple[str, str], pp_fns: list, pp_fn_kwargs: list) -> None:
    load_postprocess_save(job[0], job[1], pp_fns, pp_fn_kwargs)


def _files(folder: Path, file_ending: str) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_file() and p.name.endswith(file_ending)
                  and not p.name.startswith("."))


def _inputs(folder: Path, plans: str | os.PathLike | Mapping[str, Any] | None,
            dataset_json: str | os.PathLike | Mapping[str, Any] | DatasetDescription | None,
            ) -> DatasetDescription:
    """Checks the plans and reads the dataset description (both default to the copies in ``folder``)."""
    if plans is None:
        plans = folder / "plans.json"
        if not plans.is_file():
            raise FileNotFoundError(f"{plans} is missing (nnUNetv2_predict and accumulate_crossval_results write "
                                    f"it); give the plans with -plans_json")
    PlansManager(dict(plans) if isinstance(plans, Mapping) else plans)
    if isinstance(dataset_json, DatasetDescription):
        return dataset_json
    if dataset_json is None:
        dataset_json = folder / "dataset.json"
        if not dataset_json.is_file():
            raise FileNotFoundError(f"{dataset_json} is missing (nnUNetv2_predict and accumulate_crossval_results "
                                    f"write it); give the dataset.json with -dataset_json")
    if isinstance(dataset_json, Mapping):
        return DatasetDescription(dict(dataset_json))
    return load_dataset_json(dataset_json)


def _mean_dice(summary: Mapping[str, Any], key: Any, source: Path) -> float:
    if key not in summary["mean"]:
        raise ValueError(f"{source}/summary.json has no result for {label_or_region_to_key(key)}: it was written for "
                         f"other labels; delete it to evaluate the predictions again")
    return summary["mean"][key]["Dice"]


def determine_postprocessing(
    folder_predictions: str | os.PathLike,
    folder_ref: str | os.PathLike,
    plans_file_or_dict: str | os.PathLike | Mapping[str, Any] | None = None,
    dataset_json_file_or_dict: str | os.PathLike | Mapping[str, Any] | DatasetDescription | None = None,
    num_processes: int | None = None,
    keep_postprocessed_files: bool = True,
) -> tuple[list[Callable[..., Any]], list[dict[str, Any]]]:
    """Chooses nnU-Net's connected-component post-processing on cross-validation predictions.

    Args:
        folder_predictions: predictions of every training case (e.g. ``crossval_results_folds_0_1_2_3_4``).
        folder_ref: the reference label maps.
        plans_file_or_dict: plans (checked; default ``folder_predictions/plans.json``).
        dataset_json_file_or_dict: labels, regions, ignore label, file ending (default
            ``folder_predictions/dataset.json``).
        num_processes: worker processes (default ``nnUNet_def_n_proc`` or the CPU count, at most 8).
        keep_postprocessed_files: keep ``folder_predictions/postprocessed`` (its cases and ``summary.json``; the
            folder is emptied first, so no earlier run's files stay in it).

    Returns:
        ``(pp_fns, pp_fn_kwargs)``, the accepted steps (also in ``postprocessing.json`` and ``postprocessing.pkl``
        in ``folder_predictions``).

    Raises:
        FileNotFoundError: a folder, the plans or the dataset.json is missing, or there are no predictions.
        ValueError: a prediction has no reference, shapes differ, or an existing summary.json is for other labels.
    """
    folder_predictions, folder_ref = Path(folder_predictions), Path(folder_ref)
    for folder, what in ((folder_predictions, "predictions"), (folder_ref, "reference")):
        if not folder.is_dir():
            raise FileNotFoundError(f"{what} folder {folder} does not exist")
    dataset = _inputs(folder_predictions, plans_file_or_dict, dataset_json_file_or_dict)
    labels_or_regions = labels_or_regions_to_evaluate(dataset)
    ending, ignore = dataset.file_ending, dataset.ignore_label
    num_processes = num_processes or default_num_processes()
    output_folder = folder_predictions / "postprocessed"
    temp = output_folder / "temp"
    if output_folder.is_dir():  # a previous run's files must not mix into this one's
        shutil.rmtree(output_folder)

    predicted = _files(folder_predictions, ending)
    if not predicted:
        raise FileNotFoundError(f"{folder_predictions} holds no prediction ending with {ending}")
    if not set(_files(folder_ref, ending)) <= set(predicted):
        print("WARNING: Not all files in folder_ref were found in folder_predictions. Determining postprocessing "
              "should always be done on the entire dataset!")

    def evaluate(folder: Path) -> dict:
        return compute_metrics_on_folder(folder_ref, folder, labels_or_regions, ending, ignore,
                                         folder / "summary.json", num_processes)

    if not (folder_predictions / "summary.json").is_file():
        evaluate(folder_predictions)
    baseline = load_summary_json(folder_predictions / "summary.json")

    pp_fns: list[Callable[..., Any]] = []
    pp_fn_kwargs: list[dict[str, Any]] = []
    step = remove_all_but_largest_component_from_segmentation
    with WorkerPool(min(num_processes, len(predicted))) as pool:

        def postprocess(source: Path, target: Path, kwargs: dict) -> dict:
            target.mkdir(parents=True, exist_ok=True)
            jobs = [(str(source / n), str(target / n)) for n in predicted]
            for _ in pool.map(_process, jobs, predicted, desc="Post-processing", extra_args=([step], [kwargs]),
                              show_progress=False):
                pass
            evaluate(target)
            return load_summary_json(target / "summary.json")

        # 1. the largest component of the whole foreground
        here = temp / "keep_largest_fg"
        kwargs = {"labels_or_regions": list(dataset.foreground_labels)}
        result = postprocess(folder_predictions, here, kwargs)
        before, after = baseline["foreground_mean"]["Dice"], result["foreground_mean"]["Dice"]
        accept = after > before and not any(result["mean"][k]["Dice"] < _mean_dice(baseline, k, folder_predictions)
                                            for k in result["mean"])
        if accept:
            print(f"Results were improved by removing all but the largest foreground region. "
                  f"Mean dice before: {round(before, 5)} after: {round(after, 5)}")
            source, source_summary = here, result
            pp_fns.append(step)
            pp_fn_kwargs.append(kwargs)
        else:
            print("Removing all but the largest foreground region did not improve results!")
            source, source_summary = folder_predictions, baseline

        # 2. the largest component of each label or region, in dataset.json order
        if len(labels_or_regions) > 1:
            best = temp / "keep_largest_perClassOrRegion_currentBest"
            for label_or_region in labels_or_regions:
                kwargs = {"labels_or_regions": label_or_region}
                here = temp / "keep_largest_perClassOrRegion"
                result = postprocess(source, here, kwargs)
                before = _mean_dice(source_summary, label_or_region, source)
                after = result["mean"][label_or_region]["Dice"]
                if after > before:
                    print(f"Results were improved by removing all but the largest component for {label_or_region}. "
                          f"Dice before: {round(before, 5)} after: {round(after, 5)}")
                    if best.is_dir():
                        shutil.rmtree(best)
                    shutil.move(str(here), str(best))
                    source, source_summary = best, result
                    pp_fns.append(step)
                    pp_fn_kwargs.append(kwargs)
                else:
                    print(f"Removing all but the largest component for {label_or_region} did not improve results! "
                          f"Dice before: {round(before, 5)} after: {round(after, 5)}")

    # the chosen result: its files (as nnU-Net copies them) and its summary, pointing at the copied cases
    for f in sorted(p for p in source.iterdir() if p.is_file() and not p.name.startswith(".")):
        if f.name != "summary.json":
            shutil.copyfile(f, output_folder / f.name)
    for case in source_summary["metric_per_case"]:
        case["prediction_file"] = str(output_folder / Path(case["prediction_file"]).name)
    save_summary_json(source_summary, output_folder / "summary.json")
    save_postprocessing(folder_predictions, pp_fns, pp_fn_kwargs, baseline, source_summary)
    shutil.rmtree(temp)
    if not keep_postprocessed_files:
        shutil.rmtree(output_folder)
    return pp_fns, pp_fn_kwargs


def apply_postprocessing_to_folder(
    input_folder: str | os.PathLike,
    output_folder: str | os.PathLike,
    pp_fns: Sequence[Callable[..., Any]],
    pp_fn_kwargs: Sequence[Mapping[str, Any]],
    plans_file_or_dict: str | os.PathLike | Mapping[str, Any] | None = None,
    dataset_json_file_or_dict: str | os.PathLike | Mapping[str, Any] | DatasetDescription | None = None,
    num_processes: int | None = None,
) -> list[Path]:
    """Post-processes every label map of ``input_folder`` into ``output_folder`` (same file names).

    Args:
        input_folder: predictions (``CASE<file_ending>``).
        output_folder: where the post-processed label maps go.
        pp_fns, pp_fn_kwargs: the steps (from :func:`~monai_nnunet.postprocessing.load_postprocessing`).
        plans_file_or_dict: plans (checked; default ``input_folder/plans.json``).
        dataset_json_file_or_dict: for the file ending (default ``input_folder/dataset.json``).
        num_processes: worker processes.

    Returns:
        The written files.

    Raises:
        FileNotFoundError: the input folder, the plans or the dataset.json is missing.
    """
    input_folder, output_folder = Path(input_folder), Path(output_folder)
    if not input_folder.is_dir():
        raise FileNotFoundError(f"input folder {input_folder} does not exist")
    dataset = _inputs(input_folder, plans_file_or_dict, dataset_json_file_or_dict)
    files = _files(input_folder, dataset.file_ending)
    output_folder.mkdir(parents=True, exist_ok=True)
    jobs = [(str(input_folder / n), str(output_folder / n)) for n in files]
    workers = min(num_processes or default_num_processes(), len(files))
    with WorkerPool(workers if workers > 1 else 0) as pool:
        for _ in pool.map(_process, jobs, files, desc="Post-processing", extra_args=(list(pp_fns), list(pp_fn_kwargs)),
                          show_progress=False):
            pass
    return [output_folder / n for n in files]
