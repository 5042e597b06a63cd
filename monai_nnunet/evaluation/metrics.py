"""Confusion counts, Dice and IoU per label or region, nnU-Net v2's definitions.

For each label (or region: a tuple of labels counted together) on one case: TP, FP, FN, TN voxel counts, with
voxels whose reference is the ignore label left out; ``Dice = 2TP / (2TP + FP + FN)``, ``IoU = TP / (TP + FP + FN)``,
both NaN when the label is absent from reference and prediction (``TP + FP + FN == 0``); ``n_pred = TP + FP``,
``n_ref = TP + FN``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["case_metrics", "confusion_counts", "dice_and_iou", "label_or_region_mask"]

LabelOrRegion = int | tuple[int, ...]


def label_or_region_mask(segmentation: np.ndarray, label_or_region: LabelOrRegion) -> np.ndarray:
    """Boolean mask of one label, or of any label of a region (tuple)."""
    if isinstance(label_or_region, (tuple, list)):
        return np.isin(segmentation, np.asarray(label_or_region))
    return segmentation == label_or_region


def confusion_counts(reference: np.ndarray, prediction: np.ndarray, label_or_region: LabelOrRegion,
                     ignore_mask: np.ndarray | None = None) -> tuple[int, int, int, int]:
    """``(TP, FP, FN, TN)`` of one label or region.

    Args:
        reference: reference label map.
        prediction: predicted label map, same shape.
        label_or_region: a label value, or a tuple of values forming a region.
        ignore_mask: voxels to leave out (the reference's ignore label), or None.

    Raises:
        ValueError: when the shapes differ.
    """
    if reference.shape != prediction.shape:
        raise ValueError(f"reference shape {reference.shape} differs from prediction shape {prediction.shape}")
    ref = label_or_region_mask(reference, label_or_region)
    pred = label_or_region_mask(prediction, label_or_region)
    if ignore_mask is not None:
        keep = ~ignore_mask
        ref, pred = ref & keep, pred & keep
        total = int(keep.sum())
    else:
        total = int(ref.size)
    tp = int(np.count_nonzero(ref & pred))
    fp = int(np.count_nonzero(pred)) - tp
    fn = int(np.count_nonzero(ref)) - tp
    return tp, fp, fn, total - tp - fp - fn


def dice_and_iou(tp: int, fp: int, fn: int) -> tuple[float, float]:
    """``(Dice, IoU)``; both NaN when ``tp + fp + fn == 0`` (label absent from reference and prediction)."""
    if tp + fp + fn == 0:
        return float("nan"), float("nan")
    return 2 * tp / (2 * tp + fp + fn), tp / (tp + fp + fn)


def _plain_label_counts(reference: np.ndarray, prediction: np.ndarray, labels: Sequence[int],
                        keep: np.ndarray | None) -> dict[int, tuple[int, int, int, int]]:
    """All labels' counts from one joint histogram (one pass over the volume instead of one per label)."""
    ref = reference.ravel()
    pred = prediction.ravel()
    if keep is not None:
        keep = keep.ravel()
        ref, pred = ref[keep], pred[keep]
    values = np.union1d(np.asarray(labels), np.union1d(np.unique(ref), np.unique(pred)))
    index = {int(v): i for i, v in enumerate(values)}
    ref_i = np.searchsorted(values, ref)
    pred_i = np.searchsorted(values, pred)
    k = len(values)
    joint = np.bincount(ref_i * k + pred_i, minlength=k * k).reshape(k, k)
    total = int(ref.size)
    out = {}
    for label in labels:
        i = index[int(label)]
        tp = int(joint[i, i])
        fp = int(joint[:, i].sum()) - tp
        fn = int(joint[i, :].sum()) - tp
        out[label] = (tp, fp, fn, total - tp - fp - fn)
    return out


def case_metrics(reference: np.ndarray, prediction: np.ndarray, labels_or_regions: Sequence[LabelOrRegion],
                 ignore_label: int | None = None) -> dict[LabelOrRegion, dict[str, float | int]]:
    """nnU-Net's per-case metrics of every label or region.

    Args:
        reference: reference label map.
        prediction: predicted label map, same shape.
        labels_or_regions: labels (ints) and/or regions (tuples of ints).
        ignore_label: reference voxels with this value are left out of every count.

    Returns:
        ``{label_or_region: {"Dice", "IoU", "FP", "TP", "FN", "TN", "n_pred", "n_ref"}}``.

    Raises:
        ValueError: when the shapes differ.
    """
    if reference.shape != prediction.shape:
        raise ValueError(f"reference shape {reference.shape} differs from prediction shape {prediction.shape}")
    ignore_mask = reference == ignore_label if ignore_label is not None else None
    keep = None if ignore_mask is None else ~ignore_mask
    plain = [r for r in labels_or_regions if not isinstance(r, (tuple, list))]
    counts = _plain_label_counts(reference, prediction, plain, keep) if plain else {}
    results = {}
    for r in labels_or_regions:
        key = tuple(int(v) for v in r) if isinstance(r, (tuple, list)) else int(r)
        if isinstance(key, tuple):
            tp, fp, fn, tn = confusion_counts(reference, prediction, key, ignore_mask)
        else:
            tp, fp, fn, tn = counts[r]
        dice, iou = dice_and_iou(tp, fp, fn)
        results[key] = {"Dice": dice, "IoU": iou, "FP": fp, "TP": tp, "FN": fn, "TN": tn,
                        "n_pred": fp + tp, "n_ref": fn + tp}
    return results
