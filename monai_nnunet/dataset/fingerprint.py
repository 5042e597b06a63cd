"""Dataset fingerprint: spacings, shapes after cropping, foreground intensity statistics per channel.

One pass reads each training case once and both verifies it (``verify.check_case``) and measures it. The
foreground intensity statistics follow nnU-Net: every case contributes the same weight (nnU-Net draws 1e8 / N
samples with replacement from each case's foreground). Here the statistics are computed exactly on the foreground
voxels with per-case weights instead of on a resampled copy, which gives nnU-Net's expected values without a
1e8-element array; cases with more foreground voxels than their share are subsampled (seeded).
"""

from __future__ import annotations

from dataclasses import dataclass, field
import numpy as np

from monai_nnunet.dataset.dataset_json import DatasetDescription
from monai_nnunet.dataset.io import (
    GeometryMismatchError,
    ImageReadError,
    count_nonfinite_stored_values,
    read_images,
    read_segmentation,
)
from monai_nnunet.dataset.raw import CaseFiles
from monai_nnunet.dataset.verify import Problem, check_case
from monai_nnunet.preprocessing.cropping import crop_to_nonzero

__all__ = ["CaseAnalysis", "FOREGROUND_SAMPLES_TOTAL", "aggregate_fingerprint", "analyze_case"]

#: Total foreground samples nnU-Net draws over the whole dataset for its intensity statistics.
FOREGROUND_SAMPLES_TOTAL = 10e7
_PERCENTILES = (0.5, 50.0, 99.5)


@dataclass
class CaseAnalysis:
    """What one pass over a case found: problems (``fatal`` when the case cannot be used) and measurements."""

    case_id: str
    problems: list = field(default_factory=list)
    fatal: bool = False
    spacing: list[float] | None = None
    shape_after_crop: list[int] | None = None
    relative_size_after_crop: float | None = None
    foreground_values: list[np.ndarray] = field(default_factory=list)
    foreground_weight: float = 0.0


def analyze_case(
    case: CaseFiles, description: DatasetDescription, samples_per_case: int
) -> CaseAnalysis:
    """Reads one training case, checks it and measures it. Never raises for a bad case: problems are returned.

    The stored values of floating-point NIfTI files are read too, to find NaN/inf, which ITK turns into 0 on
    reading: such a case always fails (``--verify_dataset_integrity`` decides only whether warnings fail too).
    """
    result = CaseAnalysis(case.case_id)
    try:
        data, props = read_images(case.images, case.case_id)
        if case.label is None:
            raise ImageReadError(f"case {case.case_id}: no label file")
        seg, seg_props = read_segmentation(case.label)
    except (ImageReadError, GeometryMismatchError) as e:
        result.problems.append(Problem(str(e)))
        result.fatal = True
        return result
    result.problems = check_case(case, data, props, seg, seg_props, description)
    for f in (*case.images, case.label):
        bad = count_nonfinite_stored_values(f)
        if bad:
            result.problems.append(Problem(f"{f}: {bad} NaN or inf value(s) stored (ITK would read them as 0)"))
            result.fatal = True
    if data.shape[1:] != seg.shape[1:] or not np.all(np.isfinite(data)):
        result.fatal = True
        return result
    if np.issubdtype(seg.dtype, np.floating):
        seg = np.rint(seg)
    seg = seg.astype(np.int32, copy=False)
    cropped, seg_cropped, _ = crop_to_nonzero(data, seg)
    result.spacing = [float(s) for s in props["spacing"]]
    result.shape_after_crop = [int(s) for s in cropped.shape[1:]]
    result.relative_size_after_crop = float(np.prod(cropped.shape[1:]) / np.prod(data.shape[1:]))
    foreground = seg_cropped[0] > 0
    if description.has_ignore_label:
        foreground &= seg_cropped[0] != description.ignore_label
    n_fg = int(foreground.sum())
    if n_fg:
        values = [c[foreground] for c in cropped]
        if n_fg > samples_per_case:
            keep = np.random.RandomState(1234).choice(n_fg, samples_per_case, replace=False)
            values = [v[keep] for v in values]
        result.foreground_values = [v.astype(np.float32, copy=False) for v in values]
        result.foreground_weight = samples_per_case / len(result.foreground_values[0])
    return result


def _weighted_stats(values: np.ndarray, weights: np.ndarray) -> dict:
    order = np.argsort(values, kind="stable")
    v, w = values[order].astype(np.float64), weights[order]
    total = w.sum()
    mean = float(np.sum(v * w) / total)
    std = float(np.sqrt(np.sum(w * (v - mean) ** 2) / total))
    # percentile of the weighted empirical distribution, linear between sample midpoints
    cdf = (np.cumsum(w) - 0.5 * w) / total
    p005, median, p995 = (float(np.interp(q / 100.0, cdf, v)) for q in _PERCENTILES)
    return {
        "max": float(v[-1]),
        "mean": mean,
        "median": median,
        "min": float(v[0]),
        "percentile_00_5": p005,
        "percentile_99_5": p995,
        "std": std,
    }


def aggregate_fingerprint(analyses: list[CaseAnalysis], num_channels: int) -> dict:
    """Combines per-case analyses (in case-id order) into nnU-Net's ``dataset_fingerprint.json`` content."""
    analyses = sorted(analyses, key=lambda a: a.case_id)
    intensity = {}
    for c in range(num_channels):
        parts = [(a.foreground_values[c], a.foreground_weight) for a in analyses if a.foreground_values]
        if not parts:
            nan = float("nan")
            intensity[str(c)] = dict.fromkeys(
                ("max", "mean", "median", "min", "percentile_00_5", "percentile_99_5", "std"), nan
            )
            continue
        values = np.concatenate([p[0] for p in parts])
        weights = np.concatenate([np.full(len(p[0]), p[1]) for p in parts])
        intensity[str(c)] = _weighted_stats(values, weights)
    return {
        "foreground_intensity_properties_per_channel": intensity,
        "median_relative_size_after_cropping": float(np.median([a.relative_size_after_crop for a in analyses])),
        "shapes_after_crop": [a.shape_after_crop for a in analyses],
        "spacings": [a.spacing for a in analyses],
    }


def samples_per_case(num_cases: int) -> int:
    """Foreground samples per case, as nnU-Net computes it."""
    return int(FOREGROUND_SAMPLES_TOTAL // max(num_cases, 1))
