"""Dataset integrity checks: every problem is reported with the file it concerns.

``check_case`` looks at one case's loaded arrays; ``check_layout`` at the dataset as a whole (numTraining, missing
and orphan files, label declarations). ``DatasetIntegrityError`` carries the full list, so a user fixes every
problem in one round instead of one per run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from monai_nnunet.dataset.dataset_json import DatasetDescription, check_consecutive_labels
from monai_nnunet.dataset.raw import CaseFiles, RawDataset

__all__ = ["DatasetIntegrityError", "Problem", "check_case", "check_layout"]


@dataclass(frozen=True)
class Problem:
    """One finding, naming its file. ``severity`` is ``"error"`` (the data cannot be trained on as it is) or
    ``"warning"`` (nnU-Net only warns, e.g. an origin mismatch): warnings become errors under
    ``--verify_dataset_integrity``."""

    message: str
    severity: str = "error"

    def __str__(self) -> str:
        return self.message


class DatasetIntegrityError(ValueError):
    """The dataset has problems; ``problems`` lists each one, naming its file."""

    def __init__(self, dataset: str, problems: list):
        self.problems = [str(p) for p in problems]
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"Dataset {dataset} failed verification with {len(self.problems)} problem(s):\n{lines}")


def check_layout(dataset: RawDataset, cases: dict[str, CaseFiles]) -> list[Problem]:
    """Checks that do not need voxel data: counts, missing and orphan files, label declarations."""
    desc = dataset.description
    problems = []
    if len(cases) != desc.num_training:
        problems.append(Problem(
            f"{dataset.folder / 'dataset.json'}: numTraining is {desc.num_training} but {len(cases)} training "
            f"case(s) were found in {dataset.folder / 'imagesTr'}"
        ))
    for case in cases.values():
        for f in case.images:
            if not f.is_file():
                problems.append(Problem(f"{f}: missing channel file for case {case.case_id}"))
        if case.label is None or not case.label.is_file():
            problems.append(Problem(f"{case.label}: missing label file for case {case.case_id}"))
    labels_dir = dataset.folder / "labelsTr"
    if labels_dir.is_dir() and "dataset" not in desc.raw:
        expected = {c.label.name for c in cases.values() if c.label is not None}
        for f in sorted(labels_dir.iterdir()):
            if f.name.endswith(desc.file_ending) and f.name not in expected:
                problems.append(Problem(f"{f}: label file without images in imagesTr"))
    gaps = check_consecutive_labels(desc)
    if gaps:
        problems.append(Problem(
            f"{dataset.folder / 'dataset.json'}: labels must be consecutive (0, 1, 2, ...); "
            f"{gaps} break the sequence {desc.all_labels}"
        ))
    return problems


def check_case(
    case: CaseFiles,
    data: np.ndarray,
    image_props: dict,
    seg: np.ndarray,
    seg_props: dict,
    description: DatasetDescription,
) -> list[Problem]:
    """Checks one loaded case.

    Args:
        case: the case's files (used in messages).
        data: image ``(C, Z, Y, X)``.
        image_props: properties from ``read_images``.
        seg: label map ``(1, Z, Y, X)`` in its stored dtype.
        seg_props: properties from ``read_segmentation``.
        description: the dataset.json content.

    Returns:
        One ``Problem`` per finding, each naming the file.
    """
    problems = []
    images = ", ".join(str(f) for f in case.images)
    if data.shape[0] != description.num_channels:
        problems.append(Problem(
            f"{images}: {data.shape[0]} channel(s) read but dataset.json declares {description.num_channels}"
        ))
    bad = ~np.isfinite(data)
    if bad.any():
        per_channel = [int(b.sum()) for b in bad]
        problems.append(Problem(f"{images}: NaN or inf intensities ({per_channel} voxels per channel)"))
    if data.shape[1:] != seg.shape[1:]:
        problems.append(Problem(
            f"{case.label}: shape {seg.shape[1:]} (z, y, x) differs from its image's {data.shape[1:]} ({images})"
        ))
    gi, gs = image_props["sitk_stuff"], seg_props["sitk_stuff"]
    if not np.allclose(gi["spacing"], gs["spacing"], rtol=1e-4, atol=1e-6):
        problems.append(Problem(f"{case.label}: spacing {gs['spacing']} differs from its image's {gi['spacing']}"))
    if not np.allclose(gi["origin"], gs["origin"], rtol=1e-4, atol=1e-3):
        problems.append(Problem(f"{case.label}: origin {gs['origin']} differs from its image's {gi['origin']}",
                                severity="warning"))
    if not np.allclose(gi["direction"], gs["direction"], atol=1e-4):
        problems.append(Problem(
            f"{case.label}: direction {gs['direction']} differs from its image's {gi['direction']}", severity="warning"
        ))
    if np.issubdtype(seg.dtype, np.floating):
        if not np.all(np.isfinite(seg)):
            problems.append(Problem(f"{case.label}: label map contains NaN or inf"))
            return problems
        if not np.array_equal(seg, np.round(seg)):
            problems.append(Problem(f"{case.label}: label map contains non-integer values"))
            return problems
    found = np.unique(seg)
    unexpected = [v.item() for v in found if int(v) not in set(description.expected_label_values)]
    if unexpected:
        problems.append(Problem(
            f"{case.label}: label values {unexpected} are not declared in dataset.json "
            f"(declared: {description.expected_label_values})"
        ))
    return problems
