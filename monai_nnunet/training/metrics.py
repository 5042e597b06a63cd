"""The validation Dice metrics: the case-level Dice (the key metric that decides ``checkpoint_best.pth``) and nnU-Net's
per-epoch pseudo Dice on the validation patches."""

from __future__ import annotations

from abc import abstractmethod

from collections.abc import Sequence
import numpy as np
import torch
from ignite.engine import Engine
from ignite.metrics import Metric
from ignite.metrics.metric import reinit__is_reduced, sync_all_reduce

from monai_nnunet.evaluation.metrics import confusion_counts, label_or_region_mask

__all__ = ["CaseMeanDice", "PseudoDice", "dice_from_counts", "dice_improved", "segmentation_counts"]


def segmentation_counts(prediction: np.ndarray, target: np.ndarray, classes: Sequence, ignore_label: int | None
                        ) -> np.ndarray:
    """True positives, false positives and false negatives per class or region: array ``(K, 3)``.

    Args:
        prediction: predicted label map (argmax; or, for regions, a boolean ``(K, *spatial)`` array).
        target: reference label map (same spatial shape).
        classes: label values, or tuples of values (regions).
        ignore_label: reference voxels with this value are left out.
    """
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


def dice_improved(current: float, best: float) -> bool:
    """``metric_cmp_fn`` of the case evaluator: a finite Dice above the best so far (NaN never improves)."""
    current = float(current)
    if np.isnan(current):
        return False
    return bool(np.isnan(float(best)) or current > float(best))


class _PerClassDice(Metric):
    """A Dice per foreground class or region and their mean (NaN classes left out of the mean).

    ``compute()`` returns the mean; :meth:`completed` also stores the per-class values under
    ``f"{name}_per_class"`` in ``engine.state.metrics``. Subclasses count in ``reset``/``update`` and give the
    per-class values (reduced over the ranks under DDP) in ``compute_per_class``.
    """

    def __init__(self, classes: Sequence, ignore_label: int | None = None, regions: bool = False,
                 output_transform=lambda output: (output["pred"], output["label"]),
                 device: str | torch.device = "cpu") -> None:
        self.classes = [tuple(c) if isinstance(c, (list, tuple)) else int(c) for c in classes]
        if not self.classes:
            raise ValueError(f"{type(self).__name__} needs at least one foreground class")
        self.ignore_label = None if ignore_label is None else int(ignore_label)
        self.regions = bool(regions)
        super().__init__(output_transform=output_transform, device=device)

    @abstractmethod
    def compute_per_class(self) -> list[float]:
        """The Dice per class or region, reduced over the ranks."""

    def compute(self) -> float:
        return _mean_over_classes(self.compute_per_class())

    def completed(self, engine: Engine, name: str) -> None:
        per_class = self.compute_per_class()
        engine.state.metrics[name] = _mean_over_classes(per_class)
        engine.state.metrics[f"{name}_per_class"] = per_class


class CaseMeanDice(_PerClassDice):
    """Dice per foreground class on whole validation cases, averaged over cases (NaN where a class is absent from
    both prediction and reference), then over classes. Under DDP the sums are reduced over the ranks.

    Args:
        classes: foreground label values, or tuples of labels for region-based datasets.
        ignore_label: reference voxels with this value are left out.
        regions: whether the network predicts regions (sigmoid > 0.5 per region) instead of classes (argmax).
        output_transform: maps the evaluator's output to ``(logits (1, K, *spatial), label (1, 1, *spatial))``.
        device: where the reduction over ranks happens.
    """

    @reinit__is_reduced
    def reset(self) -> None:
        self._dice_sum = torch.zeros(len(self.classes), dtype=torch.float64, device=self._device)
        self._dice_cases = torch.zeros(len(self.classes), dtype=torch.float64, device=self._device)

    @reinit__is_reduced
    def update(self, output: Sequence[torch.Tensor]) -> None:
        logits, label = output
        logits = logits[0].float()
        if self.regions:
            prediction = (torch.sigmoid(logits) > 0.5).cpu().numpy()
        else:
            prediction = logits.argmax(0).cpu().numpy()
        target = label[0, 0].cpu().numpy()
        target = np.where(target < 0, 0, target)  # "outside the nonzero region" is background
        dice = dice_from_counts(segmentation_counts(prediction, target, self.classes, self.ignore_label))
        present = ~np.isnan(dice)
        self._dice_sum += torch.as_tensor(np.where(present, dice, 0.0), device=self._device)
        self._dice_cases += torch.as_tensor(present.astype(np.float64), device=self._device)

    @sync_all_reduce("_dice_sum", "_dice_cases")
    def compute_per_class(self) -> list[float]:
        with np.errstate(invalid="ignore"):
            values = (self._dice_sum / self._dice_cases).cpu().numpy()
        return [float(v) for v in values]


def _mean_over_classes(per_class: Sequence[float]) -> float:
    finite = [v for v in per_class if not np.isnan(v)]
    return float(np.mean(finite)) if finite else float("nan")


class PseudoDice(_PerClassDice):
    """nnU-Net's per-epoch "pseudo Dice" on the validation patches: true/false positives and false negatives summed
    over all patches of the epoch (and over the ranks under DDP), then ``2 tp / (2 tp + fp + fn)`` per foreground
    class or region, and their mean. Counted on the device: no host synchronisation per batch.

    Args:
        classes: foreground label values, or tuples of labels (regions).
        ignore_label: reference voxels with this value are left out.
        regions: whether the network predicts regions (logit > 0 per region) against one target mask per region.
        output_transform: maps the evaluator's output to ``(logits (B, K, *spatial), label (B, 1 or R, *spatial))``.
        device: where the counts are kept (the evaluator's device).
    """

    @reinit__is_reduced
    def reset(self) -> None:
        self._counts = torch.zeros(len(self.classes), 3, dtype=torch.float64, device=self._device)

    @reinit__is_reduced
    def update(self, output: Sequence[torch.Tensor]) -> None:
        logits, label = output
        rows = []
        if self.regions:
            # one target mask per region, and with an ignore label a last channel marking the ignored voxels
            valid = label[:, len(self.classes)] == 0 if label.shape[1] > len(self.classes) else None
            for i in range(len(self.classes)):
                rows.append(self._row(logits[:, i] > 0, label[:, i] > 0, valid))
        else:
            prediction, target = logits.argmax(1), label[:, 0]
            valid = None if self.ignore_label is None else target != self.ignore_label
            for c in self.classes:
                rows.append(self._row(prediction == c, target == c, valid))
        self._counts += torch.stack(rows).to(self._counts)

    @staticmethod
    def _row(predicted: torch.Tensor, reference: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
        if valid is not None:
            predicted, reference = predicted & valid, reference & valid
        tp = (predicted & reference).sum()
        return torch.stack([tp, predicted.sum() - tp, reference.sum() - tp]).double()

    @sync_all_reduce("_counts")
    def compute_per_class(self) -> list[float]:
        return [float(v) for v in dice_from_counts(self._counts.cpu().numpy())]
