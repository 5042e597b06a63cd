"""Case-level validation during training: whole preprocessed cases through the predictor's sliding window, Dice per
class from confusion counts."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from monai.inferers import Inferer

__all__ = ["WholeCaseInferer", "dice_from_counts", "segmentation_counts"]


class WholeCaseInferer(Inferer):
    """A MONAI ``Inferer`` for whole preprocessed cases ``(1, C, Z, Y, X)``: the predictor's Gaussian-weighted
    sliding window (half-patch steps); a 2d configuration's network runs on the slices of the first axis.

    Args:
        patch_size: the configuration's patch (2 or 3 values).
        mirror_axes: test-time mirroring axes (none during training's validation).
        device: where the network runs.
        sw_batch_size: windows per forward pass.
        step_size: window step as a fraction of the patch (0.5).
    """

    def __init__(self, patch_size: Sequence[int], mirror_axes: Sequence[int] = (), device: str | torch.device = "cpu",
                 sw_batch_size: int = 1, step_size: float = 0.5):
        super().__init__()
        self.patch_size = [int(p) for p in patch_size]
        self.mirror_axes = tuple(mirror_axes)
        self.device = torch.device(device)
        self.sw_batch_size = int(sw_batch_size)
        self.step_size = float(step_size)

    def __call__(self, inputs: torch.Tensor, network, *args, **kwargs) -> torch.Tensor:
        from monai_nnunet.inference.sliding_window import predict_sliding_window_logits

        if inputs.ndim != 5 or inputs.shape[0] != 1:
            raise ValueError(f"expected one whole case (1, C, Z, Y, X), got shape {tuple(inputs.shape)}")
        logits = predict_sliding_window_logits(network, inputs[0], self.patch_size, step_size=self.step_size,
                                               mirror_axes=self.mirror_axes, device=self.device,
                                               sw_batch_size=self.sw_batch_size)
        return logits[None]


def segmentation_counts(prediction: np.ndarray, target: np.ndarray, classes: Sequence, ignore_label: int | None
                        ) -> np.ndarray:
    """True positives, false positives and false negatives per class or region: array ``(K, 3)``.

    Args:
        prediction: predicted label map (argmax; or, for regions, a boolean ``(K, *spatial)`` array).
        target: reference label map (same spatial shape).
        classes: label values, or tuples of values (regions).
        ignore_label: reference voxels with this value are left out.
    """
    from monai_nnunet.evaluation.metrics import confusion_counts, label_or_region_mask

    ignore_mask = None if ignore_label is None else target == ignore_label
    counts = np.zeros((len(classes), 3), dtype=np.int64)
    for i, c in enumerate(classes):
        if prediction.ndim == target.ndim + 1:  # regions: one boolean map per region, compared as a 0/1 label map
            tp, fp, fn, _ = confusion_counts(label_or_region_mask(target, c).astype(np.uint8),
                                             prediction[i].astype(np.uint8), 1, ignore_mask)
        else:
            tp, fp, fn, _ = confusion_counts(target, prediction, c, ignore_mask)
        counts[i] = (tp, fp, fn)
    return counts


def dice_from_counts(counts: np.ndarray) -> np.ndarray:
    """Dice per row of ``(tp, fp, fn)`` counts; NaN where the class is absent from both (nnU-Net's convention)."""
    counts = np.asarray(counts, dtype=np.float64)
    tp, fp, fn = counts[..., 0], counts[..., 1], counts[..., 2]
    denominator = 2 * tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, 2 * tp / denominator, np.nan)
