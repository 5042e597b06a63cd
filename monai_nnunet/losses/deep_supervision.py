"""Deep supervision: one loss applied to every decoder output, weighted (nnU-Net v2's scheme)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn
from torch.nn.modules.loss import _Loss

from monai_nnunet.losses._utils import _recorded_arguments, _resize_nearest

__all__ = ["DeepSupervisionWrapper", "deep_supervision_weights"]


def deep_supervision_weights(num_outputs: int, lowest_weight: float = 0.0) -> list[float]:
    """
    nnU-Net v2's deep-supervision weights: ``1 / 2**i`` for output ``i`` (highest resolution
    first), the lowest resolution set to ``lowest_weight``, normalised to sum 1.

    For 3 outputs: ``[2/3, 1/3, 0]``; for 5: ``[0.5333, 0.2667, 0.1333, 0.0667, 0]``; a single
    output gets ``[1.0]``.

    Args:
        num_outputs: number of network outputs (>= 1).
        lowest_weight: the lowest resolution's weight before normalising: 0 (nnU-Net), or nnU-Net's 1e-6 under DDP,
            where every head must take part in the loss to receive a gradient.

    Returns:
        list of ``num_outputs`` floats.

    Raises:
        ValueError: when ``num_outputs`` is not a positive int or ``lowest_weight`` is not in [0, 1).
    """
    if isinstance(num_outputs, bool) or not isinstance(num_outputs, int) or num_outputs < 1:
        raise ValueError(f"num_outputs must be a positive int, got {num_outputs!r}.")
    if num_outputs == 1:
        return [1.0]
    if not 0.0 <= float(lowest_weight) < 1.0:
        raise ValueError(f"lowest_weight must be in [0, 1), got {lowest_weight!r}.")
    weights = [1.0 / (2**i) for i in range(num_outputs)]
    weights[-1] = float(lowest_weight)
    total = sum(weights)
    return [w / total for w in weights]


class DeepSupervisionWrapper(_Loss):
    """
    Apply ``loss`` to each deep-supervision output and return the weighted sum
    ``sum_i w_i * loss(input[i], target[i], **extras[i])``; terms with ``w_i == 0`` are not computed.

    ``input`` is a list or tuple of outputs, highest resolution first, each (B, C, *spatial_i).
    ``target`` is a matching list or tuple, or a single full-resolution tensor that is resized to
    each output's spatial shape with nearest neighbour (``nearest-exact``, as nnU-Net v2's
    ``DownsampleSegForDSTransform``). Extra keyword arguments of the wrapped loss (``instances``,
    ``regions``, ``loss_mask``) are handled the same way. A single tensor ``input`` is passed to
    ``loss`` as it is (weight 1), e.g. at validation time.

    Default weights are :func:`deep_supervision_weights` for the number of outputs. Works with
    every loss of ``monai_nnunet.losses``; MONAI's own is ``monai.losses.DeepSupervisionLoss``.

    Example::

        loss = DeepSupervisionWrapper(DC_and_CE_loss({"batch_dice": True}, {}))
        value = loss([out_full, out_half, out_quarter], labels)  # labels at full resolution
    """

    def __init__(self, loss: nn.Module, weight_factors: Sequence[float] | None = None,
                 lowest_weight: float = 0.0) -> None:
        """
        Args:
            loss: the loss to apply at each resolution, called as ``loss(input_i, target_i, **extras_i)``.
            weight_factors: one non-negative weight per output, at least one > 0; None (default)
                is :func:`deep_supervision_weights` of the number of outputs.
            lowest_weight: with the default weights, the lowest resolution's weight before normalising
                (nnU-Net's 1e-6 under DDP, so its head gets a gradient; 0 otherwise).

        Raises:
            ValueError: when ``loss`` is not callable, ``weight_factors`` is empty, negative or all zero, or
                ``lowest_weight`` is not in [0, 1).
        """
        super().__init__()
        self.init_kwargs = _recorded_arguments(locals())  # how to rebuild this loss (a run's bundle)
        if not callable(loss):
            raise ValueError(f"loss must be a callable loss module, got {type(loss).__name__}.")
        if weight_factors is not None:
            weights = tuple(float(w) for w in weight_factors)
            if len(weights) == 0 or any(w < 0 for w in weights) or not any(w > 0 for w in weights):
                raise ValueError(
                    f"weight_factors must be a non-empty sequence of non-negative numbers, at least one > 0, "
                    f"got {weight_factors!r}."
                )
            self.weight_factors: tuple[float, ...] | None = weights
        else:
            self.weight_factors = None
        if not 0.0 <= float(lowest_weight) < 1.0:
            raise ValueError(f"lowest_weight must be in [0, 1), got {lowest_weight!r}.")
        self.lowest_weight = float(lowest_weight)
        self.loss = loss

    def forward(
        self,
        input: Sequence[torch.Tensor] | torch.Tensor,
        target: Sequence[torch.Tensor] | torch.Tensor,
        **kwargs: Any,
    ) -> torch.Tensor:
        """
        Args:
            input: list or tuple of outputs (B, C, *spatial_i), highest resolution first, or one tensor: a
                network without deep supervision (the loss of that output against the full-resolution target), or
                heads stacked at full resolution (B, N, C, *spatial), as MONAI's ``DynUNet`` returns in training.
            target: list or tuple of targets matching ``input`` (for one output tensor, its first entry is
                used), or one tensor (B, K, *spatial) resized to each output with nearest neighbour.
            kwargs: extra arguments of the wrapped loss, each None, a matching list or tuple, or
                one tensor (B, K, *spatial) resized like ``target``.

        Returns:
            the weighted sum of the per-output losses (a scalar tensor).

        Raises:
            ValueError: when ``input`` is empty or not tensors, a list ``target`` / extra does not
                match the number of outputs, or ``weight_factors`` has another length.
        """
        if isinstance(input, torch.Tensor):
            first = {k: v[0] if isinstance(v, (list, tuple)) else v for k, v in kwargs.items()}
            full_target = target[0] if isinstance(target, (list, tuple)) else target
            if not _stacked_heads(input, full_target):  # one output: the full-resolution targets
                return self.loss(input, full_target, **first)
            # MONAI's DynUNet in training: its heads upsampled to full resolution and stacked on dim 1
            input, target, kwargs = list(input.unbind(1)), full_target, first
        if not isinstance(input, (list, tuple)) or len(input) == 0:
            raise ValueError(
                f"input must be a non-empty list or tuple of outputs (highest resolution first) or a tensor, "
                f"got {type(input).__name__}" + (" of length 0." if isinstance(input, (list, tuple)) else ".")
            )
        if not all(isinstance(x, torch.Tensor) and x.ndim >= 3 for x in input):
            raise ValueError("every entry of input must be a tensor (B, C, *spatial).")
        n = len(input)
        weights = self.weight_factors if self.weight_factors is not None else \
            tuple(deep_supervision_weights(n, self.lowest_weight))
        if len(weights) != n:
            raise ValueError(f"weight_factors has {len(weights)} entries but input has {n} outputs.")

        targets = self._per_output(target, input, "target")
        extras = {k: self._per_output(v, input, k) for k, v in kwargs.items()}
        total: torch.Tensor | None = None
        for i, w in enumerate(weights):
            if w == 0:
                continue
            term = w * self.loss(input[i], targets[i], **{k: v[i] for k, v in extras.items()})
            total = term if total is None else total + term
        assert total is not None  # at least one weight is > 0 (checked above)
        return total

    @staticmethod
    def _per_output(value: Any, outputs: Sequence[torch.Tensor], name: str) -> list[Any]:
        n = len(outputs)
        if value is None:
            return [None] * n
        if isinstance(value, (list, tuple)):
            if len(value) != n:
                raise ValueError(f"{name} is a list of {len(value)} entries but input has {n} outputs.")
            return list(value)
        if isinstance(value, torch.Tensor):
            if value.ndim == outputs[0].ndim - 1:  # (B, *spatial) label map
                value = value.unsqueeze(1)
            if value.ndim != outputs[0].ndim:
                raise ValueError(
                    f"{name} must be a list of {n} tensors or one tensor (B, K, *spatial) with "
                    f"{outputs[0].ndim - 2} spatial axes, got shape {tuple(value.shape)}."
                )
            return [_resize_nearest(value, tuple(out.shape[2:])) for out in outputs]
        raise ValueError(f"{name} must be a tensor or a list or tuple of tensors, got {type(value).__name__}.")


def _stacked_heads(input: torch.Tensor, target: Any) -> bool:
    """Whether ``input`` (B, N, C, *spatial) stacks N full-resolution heads for a (B, 1, *spatial) label map."""
    return (isinstance(target, torch.Tensor) and target.ndim >= 3 and target.shape[1] == 1
            and input.ndim == target.ndim + 1 and input.shape[0] == target.shape[0]
            and tuple(input.shape[3:]) == tuple(target.shape[2:]))
