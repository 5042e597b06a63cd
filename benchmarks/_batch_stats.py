"""Statistics of one training batch, shared by recipe_parity.py (our venv) and _nnunet_recipe_parity.py (nnU-Net's
side venv), so both tools' batches are measured by the same code. numpy only."""

from __future__ import annotations

import numpy as np

CLASSES = (-1, 0, 1, 2)
PERCENTILES = (1, 50, 99)


def batch_stats(image: np.ndarray, targets: list[np.ndarray], oversampled: int) -> dict[str, float]:
    """Scalars of one batch.

    Args:
        image: (B, C, *patch) network input.
        targets: the deep-supervision targets, full resolution first, each (B, 1, *shape).
        oversampled: how many of the batch's last samples were forced to contain foreground.

    Returns:
        ``{name: value}``: intensity mean/std/percentiles and the share of voxels exactly 0 (out-of-bounds fill),
        per-class voxel fractions at full and at the lowest resolution, the share of samples holding each
        foreground class, and the share holding any foreground among the free and the forced positions.
    """
    image = np.asarray(image, dtype=np.float64)
    full, low = np.asarray(targets[0]), np.asarray(targets[-1])
    b = image.shape[0]
    out = {"image mean": image.mean(), "image std": image.std(), "image ==0 voxel share": (image == 0).mean()}
    for q, v in zip(PERCENTILES, np.percentile(image, PERCENTILES)):
        out[f"image p{q}"] = v
    for c in CLASSES:
        out[f"voxel share class {c}"] = (full == c).mean()
    for c in CLASSES:
        out[f"lowest-res voxel share class {c}"] = (low == c).mean()
    flat = full.reshape(b, -1)
    for c in (1, 2):
        out[f"samples with class {c}"] = (flat == c).any(axis=1).mean()
    fg = (flat > 0).any(axis=1)
    free = b - oversampled
    out[f"samples with fg, free positions (first {free})"] = fg[:free].mean()
    out[f"samples with fg, forced positions (last {oversampled})"] = fg[free:].mean() if oversampled else np.nan
    out["lowest-res shape"] = float(np.prod(low.shape[2:]))
    return {k: float(v) for k, v in out.items()}
