"""Model selection from cross-validation, as nnU-Net v2's ``nnUNetv2_find_best_configuration``.

For each trained model (trainer x plans x configuration): the validation predictions of the requested folds are
copied into ``TRAINER__PLANS__CONFIG/crossval_results_folds_0_1_2_3_4/`` and evaluated against the reference labels
(``summary.json``). Every pair of models is ensembled (mean of their validation probabilities, which the folds must
have saved with ``--npz``) into ``$nnUNet_results/DatasetXXX/ensembles/ensemble___A___B___0_1_2_3_4/`` and
evaluated. The best foreground mean Dice wins (ties go to the simpler candidate: single models come first);
the winner's cross-validation predictions then choose its connected-component post-processing (``postprocessing.json``
and nnU-Net's ``postprocessing.pkl`` in its source folder, see :mod:`monai_nnunet.postprocessing`).
``inference_information.json`` and ``inference_instructions.txt`` in ``$nnUNet_results/DatasetXXX/`` say what won
and give the commands to predict with it and post-process, with nnU-Net's keys and text.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from monai_nnunet import paths
from monai_nnunet.dataset.dataset_json import DatasetDescription
from monai_nnunet.dataset.naming import resolve_dataset_name
from monai_nnunet.evaluation.ensemble import ensemble_crossvalidations, validation_folder
from monai_nnunet.evaluation.evaluate_folder import compute_metrics_on_folder, labels_or_regions_to_evaluate
from monai_nnunet.planning.plans import PlansManager
from monai_nnunet.postprocessing.remove_connected_components import determine_postprocessing
from monai_nnunet.utils.files import atomic_path, load_json, save_json

__all__ = [
    "DEFAULT_CONFIGURATIONS",
    "accumulate_cv_results",
    "ensemble_name",
    "find_best_configuration",
    "folds_to_string",
    "inference_command",
    "inference_instructions",
    "reference_folder",
]

#: nnU-Net's default candidates.
DEFAULT_CONFIGURATIONS = ("2d", "3d_fullres", "3d_lowres", "3d_cascade_fullres")


def folds_to_string(folds: Sequence[int | str]) -> str:
    """``(0, 1, 2)`` -> ``"0_1_2"`` (nnU-Net's folder suffix)."""
    return "_".join(str(f) for f in folds)


def ensemble_name(model_folder_1: str | os.PathLike, model_folder_2: str | os.PathLike,
                  folds: Sequence[int | str]) -> str:
    """nnU-Net's ensemble identifier ``ensemble___A___B___0_1_2_3_4``."""
    return f"ensemble___{Path(model_folder_1).name}___{Path(model_folder_2).name}___{folds_to_string(folds)}"


def reference_folder(dataset_name: str) -> Path:
    """The reference labels: ``$nnUNet_raw/DATASET/labelsTr``, else ``$nnUNet_preprocessed/DATASET/gt_segmentations``.

    Raises:
        FileNotFoundError: when neither exists.
    """
    candidates = []
    for getter, sub in ((paths.nnunet_raw, "labelsTr"), (paths.nnunet_preprocessed, "gt_segmentations")):
        try:
            folder = getter() / dataset_name / sub
        except paths.MissingEnvironmentVariableError:
            continue
        candidates.append(folder)
        if folder.is_dir():
            return folder
    raise FileNotFoundError(f"no reference labels for {dataset_name}: looked in "
                            f"{', '.join(map(str, candidates)) or '(nnUNet_raw and nnUNet_preprocessed are unset)'}")


def _dataset(model_folder: Path) -> DatasetDescription:
    return DatasetDescription(load_json(model_folder / "dataset.json"), source=str(model_folder / "dataset.json"))


def accumulate_cv_results(
    model_folder: str | os.PathLike,
    merged_folder: str | os.PathLike,
    folds: Sequence[int | str] = (0, 1, 2, 3, 4),
    num_processes: int | None = None,
    overwrite: bool = True,
    reference: str | os.PathLike | None = None,
) -> dict:
    """Copies the validation predictions of ``folds`` into ``merged_folder`` and evaluates them together.

    Args:
        model_folder: ``TRAINER__PLANS__CONFIG``.
        merged_folder: e.g. ``model_folder/crossval_results_folds_0_1_2_3_4``.
        folds: the folds.
        num_processes: evaluation workers.
        overwrite: start from an empty ``merged_folder`` (``False``: keep and re-evaluate what is there).
        reference: reference label folder (default: see :func:`reference_folder`).

    Returns:
        The summary (also written to ``merged_folder/summary.json``).

    Raises:
        FileNotFoundError: a fold or its validation predictions are missing.
        ValueError: a case was predicted by two folds.
    """
    model_folder, merged_folder = Path(model_folder), Path(merged_folder)
    dataset = _dataset(model_folder)
    if overwrite and merged_folder.is_dir():
        shutil.rmtree(merged_folder)
    merged_folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model_folder / "dataset.json", merged_folder / "dataset.json")
    shutil.copyfile(model_folder / "plans.json", merged_folder / "plans.json")
    seen: dict[str, int | str] = {}
    for fold in folds:
        source = validation_folder(model_folder, fold)
        for f in sorted(source.iterdir()):
            if not f.name.endswith(dataset.file_ending) or f.name.startswith("."):
                continue
            if f.name in seen:
                raise ValueError(f"{model_folder.name}: case {f.name} was predicted by fold {seen[f.name]} and fold "
                                 f"{fold}; the folds' validation sets must not overlap")
            seen[f.name] = fold
            shutil.copyfile(f, merged_folder / f.name)
    if not seen:
        raise FileNotFoundError(f"{model_folder.name}: no validation predictions in folds {list(folds)}")
    plans = PlansManager(model_folder / "plans.json")
    return compute_metrics_on_folder(
        reference or reference_folder(plans.dataset_name), merged_folder, labels_or_regions_to_evaluate(dataset),
        dataset.file_ending, dataset.ignore_label, merged_folder / "summary.json", num_processes,
    )


def inference_command(dataset: int | str, configuration: str, plans_identifier: str = "nnUNetPlans",
                      trainer: str = "nnUNetTrainer", folds: Sequence[int | str] = (0, 1, 2, 3, 4),
                      input_folder: str = "INPUT_FOLDER", output_folder: str = "OUTPUT_FOLDER",
                      save_probabilities: bool = False) -> str:
    """The ``nnUNetv2_predict`` command line of one model."""
    command = (f"nnUNetv2_predict -d {dataset} -i {input_folder} -o {output_folder} -f {' '.join(map(str, folds))} "
               f"-tr {trainer} -c {configuration} -p {plans_identifier}")
    return command + (" --save_probabilities" if save_probabilities else "")


def _nnunet_default_num_processes() -> int:
    """The ``-np`` nnU-Net writes into its instructions: ``nnUNet_def_n_proc``, else 8."""
    return int(os.environ.get("nnUNet_def_n_proc") or 8)


def inference_instructions(information: dict) -> str:
    """The text of ``inference_instructions.txt`` for a ``find_best_configuration`` result (nnU-Net's text)."""
    best = information["best_model_or_ensemble"]
    models = best["selected_model_or_models"]
    dataset = information["dataset_name_or_id"]
    num_processes = _nnunet_default_num_processes()
    lines = ["***Run inference like this:***\n"]
    ensemble = len(models) > 1
    if ensemble:
        lines.append("An ensemble won! What a surprise! Run the following commands to run predictions with the "
                     "ensemble members:\n")
    outputs = []
    for i, m in enumerate(models, start=1):
        out = f"OUTPUT_FOLDER_MODEL_{i}" if ensemble else "OUTPUT_FOLDER"
        outputs.append(out)
        lines.append(inference_command(dataset, m["configuration"], m["plans_identifier"], m["trainer"],
                                       information["folds"], output_folder=out, save_probabilities=ensemble))
    if ensemble:
        lines += ["\nThe run ensembling with:\n",
                  f"nnUNetv2_ensemble -i {' '.join(outputs)} -o OUTPUT_FOLDER -np {num_processes}"]
    lines += ["\n***Once inference is completed, run postprocessing like this:***\n",
              f"nnUNetv2_apply_postprocessing -i OUTPUT_FOLDER -o OUTPUT_FOLDER_PP -pp_pkl_file "
              f"{best['postprocessing_file']} -np {num_processes} -plans_json {best['some_plans_file']}"]
    return "\n".join(lines) + "\n"


def _model_folder(results: Path, trainer: str, plans: str, configuration: str) -> Path:
    from monai_nnunet.training.configs import trainer_output_folder_name

    return results / trainer_output_folder_name(trainer, plans, configuration)


def find_best_configuration(
    dataset: int | str,
    configurations: Sequence[str] = DEFAULT_CONFIGURATIONS,
    trainers: Sequence[str] = ("nnUNetTrainer",),
    plans_identifiers: Sequence[str] = ("nnUNetPlans",),
    folds: Sequence[int | str] = (0, 1, 2, 3, 4),
    allow_ensembling: bool = True,
    num_processes: int | None = None,
    overwrite: bool = True,
) -> dict:
    """Compares the cross-validation results of trained models and their pairwise ensembles.

    Args:
        dataset: id or name.
        configurations, trainers, plans_identifiers: the candidates are all their combinations; configurations a
            plans file does not define are skipped (``3d_lowres`` exists only for large images).
        folds: the cross-validation folds to use.
        allow_ensembling: also evaluate every pair of models.
        num_processes: evaluation / ensembling workers.
        overwrite: recompute merged folders and ensembles.

    Returns:
        The inference information (also written to ``$nnUNet_results/DATASET/inference_information.json``;
        instructions to ``inference_instructions.txt``).

    Raises:
        FileNotFoundError: a candidate has not been trained (the message lists the trained models), a plans file is
            missing, or a fold's validation predictions are missing.
        ValueError: no candidate remains.
    """
    dataset_name = resolve_dataset_name(dataset)
    results = paths.nnunet_results() / dataset_name
    preprocessed = paths.nnunet_preprocessed() / dataset_name
    folds = list(folds)
    candidates: list[dict[str, Any]] = []
    for trainer, plans_id, configuration in itertools.product(trainers, plans_identifiers, configurations):
        plans_file = preprocessed / f"{plans_id}.json"
        if not plans_file.is_file():
            raise FileNotFoundError(f"{plans_file} does not exist (plans {plans_id!r} of {dataset_name})")
        if configuration not in PlansManager(plans_file).available_configurations:
            print(f"{dataset_name}: configuration {configuration} is not in {plans_file.name}, skipping it")
            continue
        folder = _model_folder(results, trainer, plans_id, configuration)
        if not folder.is_dir():
            trained = sorted(p.name for p in results.iterdir() if p.is_dir() and p.name.count("__") == 2) \
                if results.is_dir() else []
            raise FileNotFoundError(
                f"{folder} does not exist: train {trainer} {plans_id} {configuration} (all folds {folds}, with --npz "
                f"to ensemble) or leave it out with -c/-tr/-p. Trained models of {dataset_name}: "
                f"{', '.join(trained) if trained else '(none)'}"
            )
        candidates.append({"plans": plans_id, "configuration": configuration, "trainer": trainer, "folder": folder})
    if not candidates:
        raise ValueError(f"{dataset_name}: none of the configurations {list(configurations)} is in the plans")
    reference = reference_folder(dataset_name)
    scores: dict[str, dict[str, Any]] = {}
    for c in candidates:
        merged = c["folder"] / f"crossval_results_folds_{folds_to_string(folds)}"
        summary = accumulate_cv_results(c["folder"], merged, folds, num_processes, overwrite, reference)
        scores[c["folder"].name] = {"source": merged, "result": summary["foreground_mean"]["Dice"], "models": [c]}
    if allow_ensembling:
        for a, b in itertools.combinations(candidates, 2):
            name = ensemble_name(a["folder"], b["folder"], folds)
            target = results / "ensembles" / name
            ensemble_crossvalidations([a["folder"], b["folder"]], target, folds, num_processes, overwrite)
            dataset_desc = _dataset(a["folder"])
            summary = compute_metrics_on_folder(
                reference, target, labels_or_regions_to_evaluate(dataset_desc), dataset_desc.file_ending,
                dataset_desc.ignore_label, target / "summary.json", num_processes,
            )
            scores[name] = {"source": target, "result": summary["foreground_mean"]["Dice"], "models": [a, b]}
    order = list(scores)

    def rank(key: str) -> tuple[float, int]:  # NaN (no foreground anywhere) ranks last; ties: the earlier candidate
        value = scores[key]["result"]
        return (value if value == value else float("-inf"), -order.index(key))

    best_key = max(scores, key=rank)
    print("\n***All results:***")
    for k, v in scores.items():
        print(f"{k}: {v['result']:.4f}")
    print(f"\n*Best*: {best_key}: {scores[best_key]['result']:.4f}\n")
    print("***Determining postprocessing for best model/ensemble***")
    source = Path(scores[best_key]["source"])
    determine_postprocessing(source, reference, source / "plans.json", source / "dataset.json", num_processes,
                             keep_postprocessed_files=True)
    information = {
        "folds": folds,
        "dataset_name_or_id": dataset if isinstance(dataset, str) else int(dataset),
        "considered_models": [{k: c[k] for k in ("plans", "configuration", "trainer")} for c in candidates],
        "ensembling_allowed": allow_ensembling,
        "all_results": {k: v["result"] for k, v in scores.items()},
        "best_model_or_ensemble": {
            "result_on_crossval_pre_pp": scores[best_key]["result"],
            "result_on_crossval_post_pp":
                load_json(source / "postprocessed" / "summary.json")["foreground_mean"]["Dice"],
            "postprocessing_file": str(source / "postprocessing.pkl"),
            "some_plans_file": str(source / "plans.json"),
            "selected_model_or_models": [
                {"configuration": m["configuration"], "trainer": m["trainer"], "plans_identifier": m["plans"]}
                for m in scores[best_key]["models"]
            ],
        },
    }
    save_json(information, results / "inference_information.json", sort_keys=True)
    text = inference_instructions(information)
    with atomic_path(results / "inference_instructions.txt") as tmp:
        tmp.write_text(text)
    print(text)
    return information
