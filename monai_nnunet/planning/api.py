"""The planning pipeline behind ``nnUNetv2_extract_fingerprint``, ``_plan_experiment``, ``_preprocess`` and
``_plan_and_preprocess``: raw dataset -> fingerprint -> plans -> preprocessed cache (+ splits, gt_segmentations).

Nothing is written to ``nnUNet_preprocessed`` until the dataset has been read and checked, so a dataset that fails
verification leaves no files behind.
"""

from __future__ import annotations

import importlib
import shutil
import warnings
from pathlib import Path
from typing import Sequence

from monai_nnunet import paths
from monai_nnunet.dataset.fingerprint import CaseAnalysis, aggregate_fingerprint, analyze_case, samples_per_case
from monai_nnunet.dataset.raw import RawDataset, raw_dataset
from monai_nnunet.dataset.splits import ensure_splits
from monai_nnunet.dataset.verify import DatasetIntegrityError, check_layout
from monai_nnunet.planning.plans import PlansManager
from monai_nnunet.planning.planner import ExperimentPlanner, merge_with_existing_plans
from monai_nnunet.planning.resenc_planners import RESENC_PRESETS
from monai_nnunet.preprocessing.preprocessor import preprocess_configurations
from monai_nnunet.utils.files import load_json, save_json
from monai_nnunet.utils.parallel import WorkerPool, default_num_processes

__all__ = [
    "DEFAULT_CONFIGURATIONS",
    "PLANNERS",
    "extract_fingerprint",
    "plan_and_preprocess",
    "plan_experiment",
    "preprocess",
    "resolve_planner",
]

DEFAULT_CONFIGURATIONS = ("2d", "3d_fullres", "3d_lowres")
PLANNERS = {"ExperimentPlanner": ExperimentPlanner, "nnUNetPlanner": ExperimentPlanner, **RESENC_PRESETS}


def resolve_planner(name: str) -> type:
    """A planner class by name (``ExperimentPlanner``) or import path (``package.module:Class``).

    Raises:
        ValueError: for an unknown name, naming the known ones.
    """
    if name in PLANNERS:
        return PLANNERS[name]
    if ":" in name:
        module, _, attr = name.partition(":")
        try:
            planner = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as e:
            raise ValueError(f"planner {name!r} could not be imported: {e}") from e
        if not (isinstance(planner, type) and issubclass(planner, ExperimentPlanner)):
            raise ValueError(f"planner {name!r} must be a subclass of monai_nnunet.planning.ExperimentPlanner")
        return planner
    raise ValueError(f"unknown planner {name!r}; known: {sorted(PLANNERS)} or 'package.module:Class'")


def _preprocessed_folder(name: str) -> Path:
    return paths.nnunet_preprocessed() / name


def _analyze(raw: RawDataset, pool: WorkerPool, verify: bool) -> list[CaseAnalysis]:
    cases = raw.training_cases()
    if not cases:
        raise DatasetIntegrityError(raw.name, [f"{raw.folder / 'imagesTr'}: no training images found "
                                               f"(expected CASE_XXXX{raw.description.file_ending})"])
    problems = check_layout(raw, cases)
    readable = {cid: c for cid, c in cases.items()
                if all(f.is_file() for f in c.images) and c.label is not None and c.label.is_file()}
    per_case = samples_per_case(len(cases))
    analyses = []
    for _, analysis in pool.map(analyze_case, list(readable.values()), list(readable),
                                desc="Reading and checking cases", extra_args=(raw.description, per_case)):
        analyses.append(analysis)
        problems.extend(analysis.problems)
    errors = [p for p in problems if verify or p.severity == "error"]
    if errors:
        hint = [] if verify else ["(run with --verify_dataset_integrity to see warnings as well)"]
        raise DatasetIntegrityError(raw.name, errors + hint)
    for p in problems:
        warnings.warn(f"{raw.name}: {p}", stacklevel=2)
    if verify:
        print(f"{raw.name}: verification passed ({len(cases)} cases, no problems found)")
    return analyses


def extract_fingerprint(
    dataset: int | str,
    num_processes: int | None = None,
    verify: bool = False,
    clean: bool = False,
    pool: WorkerPool | None = None,
) -> dict:
    """Reads (and optionally verifies) every training case and writes ``dataset_fingerprint.json``.

    An existing fingerprint is reused unless ``clean``; ``verify`` always reads the data.

    Args:
        dataset: id or name.
        num_processes: worker processes (default: ``nnUNet_def_n_proc`` or the CPU count, at most 8).
        verify: fail on every problem found, warnings included (``--verify_dataset_integrity``).
        clean: recompute even if a fingerprint exists.
        pool: a running ``WorkerPool`` to reuse.

    Returns:
        The fingerprint dict.

    Raises:
        DatasetIntegrityError: the dataset has problems (nothing is written).
    """
    raw = raw_dataset(dataset)
    target = _preprocessed_folder(raw.name) / "dataset_fingerprint.json"
    if target.is_file() and not clean and not verify:
        print(f"{raw.name}: using the existing fingerprint {target} (--clean recomputes it)")
        return load_json(target)
    own_pool = pool is None
    pool = pool or WorkerPool(num_processes or default_num_processes()).__enter__()
    try:
        analyses = _analyze(raw, pool, verify)
    finally:
        if own_pool:
            pool.__exit__(None, None, None)
    if target.is_file() and not clean:
        return load_json(target)
    fingerprint = aggregate_fingerprint(analyses, raw.description.num_channels)
    save_json(fingerprint, target)
    save_json(raw.description.raw, target.parent / "dataset.json")
    return fingerprint


def plan_experiment(
    dataset: int | str,
    planner: str = "ExperimentPlanner",
    gpu_memory_target: float | None = None,
    overwrite_target_spacing: Sequence[float] | None = None,
    overwrite_plans_name: str | None = None,
) -> Path:
    """Plans the configurations from the fingerprint and writes ``<plans_name>.json``.

    Configurations of an existing plans file that the planner does not make (custom ones) are kept.
    ``gpu_memory_target`` (GB) and ``overwrite_plans_name`` default to the planner's own (8 GB and
    ``nnUNetPlans`` for the plain planner; e.g. 24 GB and ``nnUNetResEncUNetLPlans`` for ``nnUNetPlannerResEncL``).

    Returns:
        The plans file.

    Raises:
        FileNotFoundError: when the fingerprint has not been extracted yet.
    """
    raw = raw_dataset(dataset)
    folder = _preprocessed_folder(raw.name)
    fingerprint_file = folder / "dataset_fingerprint.json"
    if not fingerprint_file.is_file():
        raise FileNotFoundError(
            f"{fingerprint_file} does not exist; run nnUNetv2_extract_fingerprint -d {raw.name} first"
        )
    planner_cls = resolve_planner(planner)
    plans_name = overwrite_plans_name or getattr(planner_cls, "default_plans_name", "nnUNetPlans")
    if gpu_memory_target is None:
        gpu_memory_target = getattr(planner_cls, "default_gpu_memory_target_in_gb", 8)
    reader = "NaturalImage2DIO" if raw.description.file_ending in (".png", ".bmp") else "SimpleITKIO"
    planner_obj = planner_cls(
        load_json(fingerprint_file), raw.description, raw.name, plans_name=plans_name,
        gpu_memory_target_in_gb=gpu_memory_target, overwrite_target_spacing=overwrite_target_spacing,
        image_reader_writer=reader,
    )
    plans = planner_obj.plan_experiment()
    plans_file = folder / f"{plans_name}.json"
    existing = load_json(plans_file) if plans_file.is_file() else None
    save_json(merge_with_existing_plans(plans, existing), plans_file)
    save_json(raw.description.raw, folder / "dataset.json")
    for name, cfg in plans["configurations"].items():
        if "patch_size" in cfg:
            print(f"{raw.name} {name}: patch {cfg['patch_size']}, batch {cfg['batch_size']}, spacing {cfg['spacing']}")
    print(f"Plans written to {plans_file}")
    return plans_file


def preprocess(
    dataset: int | str,
    plans_name: str = "nnUNetPlans",
    configurations: Sequence[str] = DEFAULT_CONFIGURATIONS,
    num_processes: int | None = None,
    compressed: bool = False,
    pool: WorkerPool | None = None,
) -> dict[str, Path]:
    """Writes the preprocessed cache of each configuration, ``gt_segmentations/`` and ``splits_final.json``.

    Configurations absent from the plans are skipped with a message (``3d_lowres`` exists only for large images).

    Returns:
        Configuration name -> cache folder.

    Raises:
        FileNotFoundError: when the plans file does not exist.
    """
    raw = raw_dataset(dataset)
    folder = _preprocessed_folder(raw.name)
    plans_file = folder / f"{plans_name}.json"
    if not plans_file.is_file():
        raise FileNotFoundError(f"{plans_file} does not exist; run nnUNetv2_plan_experiment -d {raw.name} first")
    plans = PlansManager(plans_file)
    wanted = []
    for name in configurations:
        if name in plans.available_configurations:
            wanted.append(name)
        else:
            print(f"{raw.name}: configuration {name} is not in {plans_file.name}, skipping it")
    cases = raw.training_cases()
    folders = {}
    if wanted:
        own_pool = pool is None
        pool = pool or WorkerPool(num_processes or default_num_processes()).__enter__()
        try:
            folders = preprocess_configurations(plans, raw.description, cases, wanted, folder, pool, compressed)
        finally:
            if own_pool:
                pool.__exit__(None, None, None)
    gt = folder / "gt_segmentations"
    gt.mkdir(parents=True, exist_ok=True)
    for case in cases.values():
        shutil.copyfile(case.label, gt / case.label.name)
    ensure_splits(folder, list(cases), raw.folder)
    save_json(raw.description.raw, folder / "dataset.json")
    return folders


def plan_and_preprocess(
    datasets: Sequence[int | str],
    configurations: Sequence[str] = DEFAULT_CONFIGURATIONS,
    num_processes: int | None = None,
    verify: bool = False,
    clean: bool = False,
    planner: str = "ExperimentPlanner",
    gpu_memory_target: float | None = None,
    overwrite_target_spacing: Sequence[float] | None = None,
    overwrite_plans_name: str | None = None,
    no_preprocessing: bool = False,
    compressed: bool = False,
) -> dict[str, Path]:
    """Fingerprint, plans and preprocessing for each dataset, with one pool of workers for all stages.

    Returns:
        Dataset name -> plans file.
    """
    results = {}
    with WorkerPool(num_processes or default_num_processes()) as pool:
        for dataset in datasets:
            name = raw_dataset(dataset).name
            extract_fingerprint(dataset, verify=verify, clean=clean, pool=pool)
            plans_file = plan_experiment(dataset, planner, gpu_memory_target, overwrite_target_spacing,
                                         overwrite_plans_name)
            if not no_preprocessing:
                preprocess(dataset, plans_file.stem, configurations, compressed=compressed, pool=pool)
            results[name] = plans_file
    return results
