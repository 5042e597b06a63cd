"""A small multi-class synthetic dataset in the nnU-Net raw layout, for the demo and the tests.

Each case is a noisy "body" (zero outside, so cropping to the nonzero region has work) with several separate
ellipsoidal blobs per foreground class, each class brighter than the last, so instance-aware losses (blob Dice)
see several connected components per class. Everything derives from ``seed``: the same call writes the same data.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from monai_nnunet.dataset.io import write_image, write_segmentation
from monai_nnunet.utils.files import save_json

__all__ = ["make_synthetic_dataset"]


def _ellipsoid(shape: Sequence[int], center: np.ndarray, radii: np.ndarray) -> np.ndarray:
    grids = np.ogrid[tuple(slice(0, s) for s in shape)]
    dist = sum(((g - c) / r) ** 2 for g, c, r in zip(grids, center, radii))
    return dist <= 1.0


def _make_case(rng: np.random.Generator, shape, num_classes: int, blobs_per_class: int, num_channels: int,
               spacing: Sequence[float]):
    shape = np.array(shape)
    # blob radii in mm: about a tenth of the smallest physical extent, so anisotropic spacings keep round blobs
    extent_mm = shape * np.array(spacing)
    radius_mm = max(extent_mm.min() / 10.0, 1.5 * max(spacing))
    seg = np.zeros(shape, dtype=np.uint8)
    body = _ellipsoid(shape, (shape - 1) / 2.0, shape / 2.0 * 1.05)
    for c in range(1, num_classes + 1):
        placed, attempts = 0, 0
        while placed < blobs_per_class and attempts < 200:
            attempts += 1
            radii = np.maximum(radius_mm * rng.uniform(0.7, 1.3, size=3) / np.array(spacing), 1.0)
            low = np.ceil(radii + 1)
            high = shape - np.ceil(radii + 1)
            if np.any(high <= low):
                continue
            center = rng.uniform(low, high)
            blob = _ellipsoid(shape, center, radii)
            # keep blobs apart: no overlap with, or touching of, existing foreground
            grown = _ellipsoid(shape, center, radii + 1.5)
            if np.any(seg[grown] != 0) or not np.all(body[blob]):
                continue
            seg[blob] = c
            placed += 1
    images = []
    for ch in range(num_channels):
        base = 100.0 + 20.0 * ch
        image = base + rng.normal(0, 10.0, size=shape)
        for c in range(1, num_classes + 1):
            image[seg == c] += 60.0 * c * (1 + 0.25 * ch)
        image[~body] = 0.0
        images.append(image.astype(np.float32))
    return images, seg


def make_synthetic_dataset(
    output_folder: str | os.PathLike,
    dataset_id: int = 998,
    name: str = "Synthetic",
    num_cases: int = 20,
    shape: Sequence[int] = (32, 40, 36),
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    num_classes: int = 2,
    blobs_per_class: int = 3,
    num_channels: int = 1,
    num_test_cases: int = 2,
    seed: int = 0,
) -> Path:
    """Writes ``output_folder/DatasetXXX_Name`` in the nnU-Net raw layout.

    Args:
        output_folder: the ``nnUNet_raw`` folder (created if missing).
        dataset_id: three-digit dataset id.
        name: dataset name suffix.
        num_cases: training cases (each gets its own size, within ±15% of ``shape``).
        shape: nominal image shape, (z, y, x) in nnU-Net's order.
        spacing: voxel spacing in mm, (z, y, x); e.g. ``(3, 0.8, 0.8)`` for an anisotropic dataset.
        num_classes: foreground classes (labels 1..num_classes).
        blobs_per_class: separate blobs per class and case.
        num_channels: image channels (``_0000``, ``_0001``, ...).
        num_test_cases: cases written to ``imagesTs``, their labels to ``labelsTs`` (which training never reads), so
            predictions can be scored.
        seed: random seed.

    Returns:
        The dataset folder.

    Raises:
        ValueError: for out-of-range arguments.
    """
    if not 0 <= dataset_id <= 999:
        raise ValueError(f"dataset_id must be between 0 and 999, got {dataset_id}")
    if len(shape) != 3 or len(spacing) != 3:
        raise ValueError(f"shape and spacing need three values (z, y, x), got {shape} and {spacing}")
    if min(shape) < 8 or min(spacing) <= 0:
        raise ValueError(f"shape must be at least 8 per axis and spacing positive, got {shape}, {spacing}")
    if num_cases < 1 or num_classes < 1 or blobs_per_class < 1 or num_channels < 1 or num_test_cases < 0:
        raise ValueError("num_cases, num_classes, blobs_per_class and num_channels must be >= 1")
    folder = Path(output_folder) / f"Dataset{dataset_id:03d}_{name}"
    rng = np.random.default_rng(seed)
    geometry = {
        "sitk_stuff": {
            "spacing": tuple(float(s) for s in reversed(spacing)),  # ITK order (x, y, z)
            "origin": (0.0, 0.0, 0.0),
            "direction": (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0),
        }
    }
    for split, count in (("Tr", num_cases), ("Ts", num_test_cases)):
        for i in range(count):
            case_shape = [max(8, int(round(s * rng.uniform(0.85, 1.15)))) for s in shape]
            images, seg = _make_case(rng, case_shape, num_classes, blobs_per_class, num_channels, spacing)
            case_id = f"{name.lower()}_{split.lower()}{i:03d}"
            for ch, image in enumerate(images):
                write_image(image, folder / f"images{split}" / f"{case_id}_{ch:04d}.nii.gz", geometry)
            write_segmentation(seg, folder / f"labels{split}" / f"{case_id}.nii.gz", geometry)
    labels = {"background": 0, **{f"class{c}": c for c in range(1, num_classes + 1)}}
    save_json(
        {
            "channel_names": {str(c): ("MRI" if c == 0 else f"MRI{c}") for c in range(num_channels)},
            "labels": labels,
            "numTraining": num_cases,
            "file_ending": ".nii.gz",
            "name": name,
            "description": f"Synthetic blobs (seed {seed}), made by monai-nnunet make-synthetic-dataset",
            "licence": "CC0",
        },
        folder / "dataset.json",
    )
    return folder
