"""Brute-force NumPy references for the tests: one loop per blob / region, float64, independent code.

They use SciPy (``ndimage.label``, min/max filters), not the scikit-image labelling and binary
morphology of the package, so the package's one-pass segment sums are checked against a different
formulation.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from scipy import ndimage

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "nnunet_reference.npz")


def softmax_np(x: torch.Tensor) -> np.ndarray:
    x = x.detach().double().numpy()
    e = np.exp(x - x.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def blob_loss_ref(
    probs: np.ndarray,
    labels: np.ndarray,
    batch_dice: bool = False,
    include_background: bool = False,
    connectivity: int | None = None,
    smooth: float = 1e-5,
    ignore_label: int | None = None,
    instances: np.ndarray | None = None,
) -> float:
    """probs (B, C, *sp) probabilities, labels (B, *sp)."""
    n_b, n_c = probs.shape[:2]
    per_sample: list[list[float]] = []
    for b in range(n_b):
        lab = labels[b]
        valid = np.ones(lab.shape, bool) if ignore_label is None else lab != ignore_label
        dcs = []
        for c in range(0 if include_background else 1, n_c):
            gt = (lab == c) & valid
            if instances is None:
                structure = ndimage.generate_binary_structure(lab.ndim, connectivity or lab.ndim)
                comps, n = ndimage.label(gt, structure=structure)
                ids = range(1, n + 1)
            else:
                comps = np.where(gt, instances[b], 0)
                ids = [i for i in np.unique(comps) if i != 0]
            for k in ids:
                blob = comps == k
                others = gt & ~blob
                pm = probs[b, c] * valid * ~others
                inter = (pm * blob).sum()
                dcs.append((2 * inter + smooth) / max(pm.sum() + blob.sum() + smooth, 1e-8))
        per_sample.append(dcs)
    if batch_dice:
        all_dc = [d for s in per_sample for d in s]
        return -float(np.mean(all_dc)) if all_dc else 0.0
    means = [np.mean(s) for s in per_sample if s]
    return -float(np.mean(means)) if means else 0.0


def boundary_band_ref(gt: np.ndarray, width: int) -> np.ndarray:
    """Band of Chebyshev half-width ``width`` around the surface of ``gt`` (border counts as inside)."""
    size = 2 * width + 1
    dil = ndimage.maximum_filter(gt.astype(np.uint8), size=size, mode="constant", cval=0) > 0
    ero = ndimage.minimum_filter(gt.astype(np.uint8), size=size, mode="constant", cval=1) > 0
    return dil & ~ero


def region_loss_ref(
    probs: np.ndarray,
    labels: np.ndarray,
    region_weights=(2.0, 1.0),
    boundary_width: int = 1,
    include_background: bool = False,
    smooth: float = 1e-5,
    batch_dice: bool = False,
    ignore_label: int | None = None,
    regions: np.ndarray | None = None,
) -> float:
    """probs (B, C, *sp), labels (B, *sp); regions None (boundary / interior) or (B, 1 or C, *sp)."""
    n_b, n_c = probs.shape[:2]
    n_r = len(region_weights)
    sums = np.zeros((n_b, n_c, n_r, 4))  # I, P, G, size
    for b in range(n_b):
        lab = labels[b]
        valid = np.ones(lab.shape, bool) if ignore_label is None else lab != ignore_label
        for c in range(n_c):
            gt = lab == c
            if regions is None:
                band = boundary_band_ref(gt, boundary_width)
                rmap = np.where(band, 1, 2)
            else:
                rmap = regions[b, 0 if regions.shape[1] == 1 else c]
            for r in range(1, n_r + 1):
                m = (rmap == r) & valid
                sums[b, c, r - 1] = [(probs[b, c] * gt * m).sum(), (probs[b, c] * m).sum(), (gt * m).sum(), m.sum()]
    first = 0 if include_background else 1
    sums = sums[:, first:]
    if batch_dice:
        sums = sums.sum(0, keepdims=True)
    inter, pred, gt_sum, size = np.moveaxis(sums, -1, 0)
    dc = (2 * inter + smooth) / np.maximum(pred + gt_sum + smooth, 1e-8)
    w = np.asarray(region_weights, float) * (size > 0)
    return -float((dc * w).sum() / max(w.sum(), 1e-12))
