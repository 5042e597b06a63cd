"""The preprocessed cache: one folder per configuration (``{plans}_{configuration}``), three files per case.

- ``CASE.npy``: image, float32 ``(C, Z, Y, X)``; ``CASE_seg.npy``: label map, int8 (int16 when a label exceeds
  127) ``(1, Z, Y, X)``, -1 outside the nonzero region. Plain ``.npy`` so training reads patches through memory
  maps without decompressing whole cases.
- With ``--npz``: ``CASE.npz`` holding ``data`` and ``seg``, compressed (smaller, slower to read).
- ``CASE.json``: properties (geometry, crop box, spacing, foreground locations for oversampling), JSON (data that
  cannot carry code; nnU-Net's ``CASE.pkl`` pickles are refused).

- ``.plans.json``: which plans made the cache (the preprocessing entries of the plans and its configuration), so
  a run refuses a cache that other plans made (:func:`cache_mismatch`).

Every file is written under a temporary name and renamed, so a reader never sees a partial case.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from monai_nnunet.utils.files import atomic_path, load_json, save_json
from monai_nnunet.utils.properties import PropertiesError, load_properties, save_properties

__all__ = ["CACHE_RECORD", "CacheError", "cache_mismatch", "cache_record", "case_ids_in_cache", "load_case",
           "save_case", "write_cache_record"]

#: the file in a cache folder that records the plans that made it (hidden: not a case)
CACHE_RECORD = ".plans.json"
_PREPROCESSING_KEYS = ("spacing", "normalization_schemes", "use_mask_for_norm", "resampling_fn_data",
                       "resampling_fn_data_kwargs", "resampling_fn_seg", "resampling_fn_seg_kwargs", "preprocessor_name")


class CacheError(FileNotFoundError):
    """A preprocessed case is missing or incomplete."""


def save_case(folder: str | os.PathLike, case_id: str, data: np.ndarray, seg: np.ndarray, properties: dict,
              compressed: bool = False) -> None:
    """Writes one preprocessed case (see the module docstring for the layout)."""
    folder = Path(folder)
    data = np.ascontiguousarray(data, dtype=np.float32)
    seg_dtype = np.int16 if seg.size and (seg.max() > 127 or seg.min() < -128) else np.int8
    seg = np.ascontiguousarray(seg, dtype=seg_dtype)
    if compressed:
        with atomic_path(folder / f"{case_id}.npz") as tmp:
            np.savez_compressed(tmp, data=data, seg=seg)
    else:
        with atomic_path(folder / f"{case_id}.npy") as tmp:
            np.save(tmp, data)
        with atomic_path(folder / f"{case_id}_seg.npy") as tmp:
            np.save(tmp, seg)
    save_properties(folder / f"{case_id}.json", properties)


def load_case(folder: str | os.PathLike, case_id: str, mmap: bool = True) -> tuple[np.ndarray, np.ndarray, dict]:
    """Reads one preprocessed case: ``(data, seg, properties)``; ``.npy`` caches are memory-mapped by default.

    Raises:
        CacheError: when the case's files are missing.
    """
    folder = Path(folder)
    props_file = folder / f"{case_id}.json"
    if not props_file.is_file() and not props_file.with_suffix(".pkl").is_file():
        raise CacheError(f"{props_file} is missing: case {case_id} is not in the preprocessed cache {folder}")
    try:
        properties = load_properties(props_file, rerun=f"nnUNetv2_preprocess for {folder.parent.name}")
    except PropertiesError as e:
        raise CacheError(str(e)) from None
    npy = folder / f"{case_id}.npy"
    if npy.is_file():
        mode = "r" if mmap else None
        seg_file = folder / f"{case_id}_seg.npy"
        if not seg_file.is_file():
            raise CacheError(f"{seg_file} is missing (case {case_id})")
        return np.load(npy, mmap_mode=mode), np.load(seg_file, mmap_mode=mode), properties
    npz = folder / f"{case_id}.npz"
    if npz.is_file():
        with np.load(npz) as f:
            return f["data"], f["seg"], properties
    if (folder / f"{case_id}.b2nd").is_file():
        raise CacheError(f"{folder} was preprocessed by nnU-Net itself (blosc2 .b2nd files); preprocess it with "
                         f"this package (nnUNetv2_preprocess / plan_and_preprocess) to train here")
    raise CacheError(f"neither {npy.name} nor {npz.name} exists in {folder} (case {case_id})")


def cache_record(plans, configuration: str) -> dict:
    """What decides a configuration's cache: its preprocessing entries and the plans' axis order and intensity
    statistics (``plans``: a ``PlansManager``)."""
    config = plans.get_configuration(configuration).configuration
    record = {"plans_name": plans.plans.get("plans_name"), "transpose_forward": list(plans.transpose_forward),
              "foreground_intensity_properties_per_channel": plans.foreground_intensity_properties_per_channel}
    record.update({k: config.get(k) for k in _PREPROCESSING_KEYS})
    return json.loads(json.dumps(record))


def write_cache_record(folder: str | os.PathLike, plans, configuration: str) -> None:
    """Writes :func:`cache_record` into the cache folder (``.plans.json``)."""
    save_json(cache_record(plans, configuration), Path(folder) / CACHE_RECORD)


def cache_mismatch(folder: str | os.PathLike, plans, configuration: str) -> str | None:
    """Why the cache in ``folder`` was not made by these plans (the first entries that differ), or ``None``.

    The plans' name is not compared: plans that share a data identifier and these entries share the data (the
    residual-encoder presets reuse ``nnUNetPlans_2d`` / ``nnUNetPlans_3d_fullres``, as in nnU-Net)."""
    path = Path(folder) / CACHE_RECORD
    if not path.is_file():
        return f"{folder} does not record the plans that made it (it was written by an earlier version)"
    recorded, current = load_json(path), cache_record(plans, configuration)
    differing = [k for k in current if k != "plans_name" and recorded.get(k) != current[k]]
    if not differing:
        return None
    return "; ".join(f"{k} is {recorded.get(k)} in the cache but {current[k]} in the plans" for k in differing[:3])


def case_ids_in_cache(folder: str | os.PathLike) -> list[str]:
    """Sorted case ids of a configuration folder (an old cache's ``.pkl`` cases count, so reading them fails with
    the message to re-run preprocessing)."""
    folder = Path(folder)
    return sorted({p.stem for pattern in ("*.json", "*.pkl") for p in folder.glob(pattern) if not p.name.startswith(".")})
