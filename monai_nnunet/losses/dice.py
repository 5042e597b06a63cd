"""nnU-Net v2's soft Dice loss (the memory-efficient variant) as a MONAI-style loss."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn.modules.loss import _Loss

from monai_nnunet.losses._utils import (
    _recorded_arguments,
    _check_label_values,
    _check_probs_input,
    _gather_sum,
    _match_map,
    _resolve_nonlin,
)

__all__ = ["SoftDiceLoss"]


class SoftDiceLoss(_Loss):
    """
    Soft Dice loss with nnU-Net v2's semantics (``MemoryEfficientSoftDiceLoss``).

    The non-linearity (softmax over all channels by default) is applied to the logits ``input``
    (B, C, H, W[, D]), then the background channel is dropped unless ``do_bg``. Per sample and
    class, the intersection ``I = sum(p * g)``, the predicted volume ``P = sum(p)`` and the
    ground-truth volume ``G = sum(g)`` are summed over space (and over the batch when
    ``batch_dice``; under DDP these batch sums are all-gathered over ranks with gradients). Then

        ``dc = (2 I + smooth) / clip(P + G + smooth, 1e-8)``, ``loss = -mean(dc)``,

    so the loss lies in ``[-1, 0]`` and a perfect prediction gives about ``-1``.
    Probabilities and sums are computed in float32, so the loss is safe under float16/bfloat16
    autocast.

    The target is an integer label map (B, 1, H, W[, D]) or (B, H, W[, D]) with values in
    ``[0, C)``, or, when it has the same shape as ``input``, a one-hot / region encoding with
    values in ``[0, 1]`` (as nnU-Net's region-based training uses with a sigmoid).

    Example::

        loss = SoftDiceLoss(batch_dice=True)
        value = loss(logits, labels)  # logits (2, 3, 64, 64, 64), labels (2, 1, 64, 64, 64)
    """

    #: check target values on every call (a host synchronisation each); see ``set_value_checks``
    check_values: bool = True

    def __init__(
        self,
        apply_nonlin: Callable[[torch.Tensor], torch.Tensor] | str | None = "softmax",
        batch_dice: bool = False,
        do_bg: bool = False,
        smooth: float = 1e-5,
        ddp: bool = False,
    ) -> None:
        """
        Args:
            apply_nonlin: non-linearity applied to ``input`` before the Dice: ``"softmax"`` (over
                the channel axis, default), ``"sigmoid"``, ``None``/``"none"`` (``input`` already
                holds probabilities) or any callable. The string forms compute in float32.
            batch_dice: if True, sum I, P and G over the batch as well before the Dice (one Dice per
                class for the whole batch); if False, one Dice per sample and class.
            do_bg: if False (default), the background channel 0 is dropped after the non-linearity.
            smooth: added to numerator and denominator; nnU-Net's default 1e-5.
            ddp: if True and a ``torch.distributed`` process group is initialised, the batch sums
                of ``batch_dice`` are all-gathered over ranks (with gradients) before the Dice.

        Raises:
            ValueError: when ``apply_nonlin`` is neither callable, None, nor a known name, or
                ``smooth`` is negative.
        """
        super().__init__()
        self.init_kwargs = _recorded_arguments(locals())  # how to rebuild this loss (a run's bundle)
        self.apply_nonlin = _resolve_nonlin(apply_nonlin)
        if float(smooth) < 0:
            raise ValueError(f"smooth must be non-negative, got {smooth}.")
        self.batch_dice = bool(batch_dice)
        self.do_bg = bool(do_bg)
        self.smooth = float(smooth)
        self.ddp = bool(ddp)

    def forward(
        self, input: torch.Tensor, target: torch.Tensor, loss_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """
        Args:
            input: logits (B, C, H, W[, D]) (probabilities if ``apply_nonlin`` is None).
            target: label map (B, 1, H, W[, D]) or (B, H, W[, D]) with integer values in
                ``[0, C)``; or a one-hot / region target (B, C, H, W[, D]) with values in ``[0, 1]``.
            loss_mask: optional (B, 1, H, W[, D]) or (B, H, W[, D]) mask, 1 (True) where the
                voxel counts and 0 where it is left out of all sums.

        Returns:
            a scalar float32 tensor, ``-mean(dc)``.

        Raises:
            ValueError: when ``input`` is not (B, C, *spatial), ``target`` or ``loss_mask`` do
                not match it in batch size, spatial shape or channel count, ``target`` holds
                labels outside ``[0, C)`` (or one-hot values outside ``[0, 1]``), or ``do_bg``
                is False with a single-channel ``input``.
        """
        _check_probs_input(input)
        target = self._check_target(input, target)
        if loss_mask is not None:
            loss_mask = _match_map(input, loss_mask, "loss_mask", (1,))
        probs = self.apply_nonlin(input) if self.apply_nonlin is not None else input
        return self._dice(probs, target, loss_mask)

    def _check_target(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        num_classes = input.shape[1]
        if not self.do_bg and num_classes < 2:
            raise ValueError(
                f"input must have at least 2 channels when do_bg=False (channel 0 is dropped), got {num_classes}."
            )
        target = _match_map(input, target, "target", (1, num_classes))
        if target.shape[1] == num_classes:  # one-hot / region encoding (nnU-Net: same shape as input)
            lo, hi = _one_hot_range(target) if self.check_values else (0.0, 1.0)
            if lo < 0 or hi > 1:
                raise ValueError(
                    f"target with {num_classes} channel(s) is read as one-hot / regions and must hold values "
                    f"in [0, 1], found values in [{lo:g}, {hi:g}]."
                )
            return target
        if self.check_values:
            _check_label_values(target, num_classes, None)
        return target.long()

    def _dice(
        self, probs: torch.Tensor, target: torch.Tensor, loss_mask: torch.Tensor | None
    ) -> torch.Tensor:
        """Dice from probabilities (B, C, *spatial) and a checked target; no input checks here."""
        axes = tuple(range(2, probs.ndim))
        probs = probs.float()
        with torch.no_grad():
            if target.shape == probs.shape:
                y_onehot = target.to(torch.float32)
            else:
                y_onehot = torch.zeros(probs.shape, device=probs.device, dtype=torch.float32)
                y_onehot.scatter_(1, target.long(), 1)
            if not self.do_bg:
                y_onehot = y_onehot[:, 1:]
            mask = None if loss_mask is None else loss_mask.to(torch.float32)
            sum_gt = (y_onehot if mask is None else y_onehot * mask).sum(axes, dtype=torch.float32)

        # outside no_grad: the gradient flows through the probabilities
        if not self.do_bg:
            probs = probs[:, 1:]
        if mask is None:
            intersect = (probs * y_onehot).sum(axes, dtype=torch.float32)
            sum_pred = probs.sum(axes, dtype=torch.float32)
        else:
            intersect = (probs * y_onehot * mask).sum(axes, dtype=torch.float32)
            sum_pred = (probs * mask).sum(axes, dtype=torch.float32)

        if self.batch_dice:
            if self.ddp:
                intersect = _gather_sum(intersect)
                sum_pred = _gather_sum(sum_pred)
                sum_gt = _gather_sum(sum_gt)
            intersect = intersect.sum(0, dtype=torch.float32)
            sum_pred = sum_pred.sum(0, dtype=torch.float32)
            sum_gt = sum_gt.sum(0, dtype=torch.float32)

        dc = (2 * intersect + self.smooth) / (sum_gt + sum_pred + self.smooth).clamp_min(1e-8)
        return -dc.mean()


def _one_hot_range(target: torch.Tensor) -> tuple[float, float]:
    if target.numel() == 0:
        return 0.0, 0.0
    t = target.to(torch.uint8) if target.dtype == torch.bool else target
    lo, hi = torch.aminmax(t)
    lo_v, hi_v = torch.stack([lo, hi]).tolist()
    return float(lo_v), float(hi_v)
