"""Preprocess a raw dataset into the cache of each configuration of a plans file.

Each case is read once; every requested configuration is produced from that one read (configurations with the
same target spacing and normalisation share the computation). A configuration's cache is built in a hidden
``.partial`` folder and swapped in when every case succeeded, so a failed or interrupted run leaves the previous
cache untouched and a re-run reprocesses every case (nothing is skipped silently).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from monai_nnunet.dataset.dataset_json import DatasetDescription
from monai_nnunet.dataset.raw import CaseFiles
from monai_nnunet.planning.plans import PlansManager
from monai_nnunet.preprocessing.cache import save_case, write_cache_record
from monai_nnunet.preprocessing.transforms import LoadNnunetCased, preprocessing_transforms
from monai_nnunet.utils.parallel import WorkerPool

__all__ = ["PreprocessJob", "preprocess_case", "preprocess_configurations"]


@dataclass
class PreprocessJob:
    """Everything a worker needs for one case (picklable)."""

    plans: dict
    dataset: DatasetDescription
    configurations: list[str]
    output_folders: dict[str, str]
    compressed: bool = False


def _signature(configuration) -> tuple:
    return (
        tuple(configuration.spacing),
        tuple(configuration.normalization_schemes),
        tuple(configuration.use_mask_for_norm),
        repr(sorted(configuration.resampling_fn_data_kwargs.items())),
        repr(sorted(configuration.resampling_fn_seg_kwargs.items())),
    )


def preprocess_case(case: CaseFiles, job: PreprocessJob) -> str:
    """Preprocesses one training case for every configuration of ``job`` and writes it to their caches."""
    plans = PlansManager(job.plans)
    loaded = LoadNnunetCased()({"image": list(case.images), "label": case.label, "case_id": case.case_id})
    done: dict[tuple, dict] = {}
    for name in job.configurations:
        configuration = plans.get_configuration(name)
        key = _signature(configuration)
        if key not in done:
            chain = preprocessing_transforms(plans, configuration, job.dataset, with_loading=False)
            done[key] = chain(dict(loaded))
        sample = done[key]
        save_case(job.output_folders[name], case.case_id, sample["image"], sample["label"], sample["properties"],
                  compressed=job.compressed)
    return case.case_id


def _swap_in(partial: Path, final: Path) -> None:
    old = final.with_name(f".{final.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        final.rename(old)
    partial.rename(final)
    if old.exists():
        shutil.rmtree(old)


def preprocess_configurations(
    plans: PlansManager,
    dataset: DatasetDescription,
    cases: dict[str, CaseFiles],
    configurations: Sequence[str],
    output_root: Path,
    pool: WorkerPool,
    compressed: bool = False,
) -> dict[str, Path]:
    """Writes the cache of each configuration under ``output_root/<data_identifier>``.

    Configurations that share a data identifier (``3d_cascade_fullres`` uses ``3d_fullres``'s data) are written
    once. Returns configuration name -> cache folder.
    """
    by_identifier: dict[str, str] = {}
    for name in configurations:
        identifier = plans.get_configuration(name).data_identifier
        by_identifier.setdefault(identifier, name)
    partial_folders = {}
    for identifier, name in by_identifier.items():
        partial = output_root / f".{identifier}.partial"
        if partial.exists():
            shutil.rmtree(partial)
        partial.mkdir(parents=True)
        partial_folders[name] = str(partial)
    job = PreprocessJob(plans.plans, dataset, list(partial_folders), partial_folders, compressed)
    ordered = sorted(cases)
    for _ in pool.map(preprocess_case, [cases[c] for c in ordered], ordered,
                      desc=f"Preprocessing {', '.join(partial_folders)}", extra_args=(job,)):
        pass
    folders = {}
    for identifier, name in by_identifier.items():
        write_cache_record(partial_folders[name], plans, name)  # last: a cache without it is not complete
        final = output_root / identifier
        _swap_in(Path(partial_folders[name]), final)
        folders[name] = final
    return {name: folders[by_identifier[plans.get_configuration(name).data_identifier]] for name in configurations}
