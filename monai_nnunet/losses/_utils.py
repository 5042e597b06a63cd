"""Private helpers shared by the losses: input checks, non-linearities, segment sums, DDP gather.

Nothing here is part of the public API. Names are kept distinct from MONAI's (MONAI resolves short
``_target_`` names by scanning every module whose name starts with ``monai``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F

__all__: list[str] = []


def _recorded_arguments(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """A loss's constructor arguments as it was given them, for ``init_kwargs`` (how to rebuild the loss).

    Args:
        arguments: ``locals()`` right after ``super().__init__()`` (``self`` and ``__class__`` are dropped).

    Returns:
        The arguments by name; dicts and lists are copied, so later changes of the caller's objects are not seen.
    """
    return {k: copy.deepcopy(v) if isinstance(v, (Mapping, list, tuple)) else v
            for k, v in arguments.items() if k not in ("self", "__class__")}


def _softmax_channels(x: torch.Tensor) -> torch.Tensor:
    """Softmax over the channel axis, computed in float32 (safe under float16/bfloat16 autocast)."""
    return torch.softmax(x.float(), 1)


def _sigmoid_float(x: torch.Tensor) -> torch.Tensor:
    """Sigmoid computed in float32 (safe under float16/bfloat16 autocast)."""
    return torch.sigmoid(x.float())


_NONLINS: dict[str, Callable[[torch.Tensor], torch.Tensor] | None] = {
    "softmax": _softmax_channels,
    "sigmoid": _sigmoid_float,
    "none": None,
}


def _resolve_nonlin(apply_nonlin: Any, name: str = "apply_nonlin") -> Callable[[torch.Tensor], torch.Tensor] | None:
    """Return the callable for ``apply_nonlin``: a callable, ``None``, or one of "softmax", "sigmoid", "none"."""
    if apply_nonlin is None or callable(apply_nonlin):
        return apply_nonlin
    if isinstance(apply_nonlin, str) and apply_nonlin.lower() in _NONLINS:
        return _NONLINS[apply_nonlin.lower()]
    raise ValueError(
        f"{name} must be a callable, None, or one of {sorted(_NONLINS)}, got {apply_nonlin!r}."
    )


def _check_probs_input(input: Any, name: str = "input") -> None:
    """``input`` must be a floating tensor of shape (B, C, *spatial) with at least one spatial axis."""
    if not isinstance(input, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape (B, C, *spatial), got {type(input).__name__}.")
    if input.ndim < 3:
        raise ValueError(
            f"{name} must have shape (B, C, *spatial) with at least one spatial axis, got shape {tuple(input.shape)}."
        )
    if not input.is_floating_point():
        raise ValueError(f"{name} must be a floating point tensor (logits), got dtype {input.dtype}.")


def _match_map(
    input: torch.Tensor, tmap: Any, name: str, allowed_channels: tuple[int, ...] = (1,)
) -> torch.Tensor:
    """Bring a per-voxel map to shape (B, K, *spatial) and check it against ``input`` (B, C, *spatial).

    ``tmap`` may be (B, K, *spatial) with K in ``allowed_channels`` or, when 1 is allowed, (B, *spatial).
    Raises ``ValueError`` for a batch, spatial or channel mismatch.
    """
    if not isinstance(tmap, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(tmap).__name__}.")
    shapes = " or ".join(f"(B, {k}, *spatial)" for k in dict.fromkeys(allowed_channels))
    if tmap.ndim == input.ndim - 1 and 1 in allowed_channels:
        tmap = tmap.unsqueeze(1)
    elif tmap.ndim != input.ndim:
        raise ValueError(
            f"{name} must have shape {shapes}"
            + (" or (B, *spatial)" if 1 in allowed_channels else "")
            + f" to match input of shape {tuple(input.shape)}, got shape {tuple(tmap.shape)}."
        )
    if tmap.shape[0] != input.shape[0]:
        raise ValueError(
            f"batch size mismatch: {name} has {tmap.shape[0]} samples, input has {input.shape[0]} "
            f"({name} shape {tuple(tmap.shape)}, input shape {tuple(input.shape)})."
        )
    if tmap.shape[2:] != input.shape[2:]:
        raise ValueError(
            f"spatial shape mismatch: {name} has {tuple(tmap.shape[2:])}, input has {tuple(input.shape[2:])}."
        )
    if tmap.shape[1] not in allowed_channels:
        raise ValueError(
            f"{name} must have shape {shapes} for input with C={input.shape[1]} channels, "
            f"got {tmap.shape[1]} channels (shape {tuple(tmap.shape)})."
        )
    return tmap


def set_value_checks(loss: torch.nn.Module, enabled: bool) -> int:
    """Whether ``loss`` (and every loss inside it) checks its targets' values on every call: label range, integral
    labels, one-hot range.

    On by default, so a bad label map gives a clear error instead of a wrong loss or an index error deep inside
    torch. Each check reads a value back from the device (a host synchronisation that stalls a GPU step), so the
    training bundle switches them off for its loss (``check_loss_inputs: false``): its labels were verified when the
    dataset was preprocessed. Shapes and channel counts are always checked (no synchronisation).

    Args:
        loss: a loss module (e.g. ``DeepSupervisionWrapper(DC_and_CE_loss(...))``).
        enabled: the new setting.

    Returns:
        the number of losses changed (modules with a ``check_values`` switch).
    """
    changed = 0
    for module in loss.modules():
        if hasattr(module, "check_values"):
            module.check_values = bool(enabled)
            changed += 1
    return changed


def _value_stats(t: torch.Tensor, ignore_label: int | None = None) -> tuple[float, float, bool]:
    """(min, max, all values integral) of ``t``, ``ignore_label`` voxels counted as 0, in one device sync."""
    if t.dtype == torch.bool:
        t = t.to(torch.uint8)
    if ignore_label is not None:
        # ignored voxels become 0, which is a valid label: a range check on the result is unaffected
        t = torch.where(t == ignore_label, torch.zeros((), dtype=t.dtype, device=t.device), t)
    lo, hi = torch.aminmax(t)
    if t.is_floating_point():
        integral = torch.all(t == torch.round(t)).to(lo.dtype)
    else:
        integral = torch.ones((), dtype=lo.dtype, device=lo.device)
    lo_v, hi_v, integral_v = torch.stack([lo, hi, integral]).tolist()
    return float(lo_v), float(hi_v), bool(integral_v)


def _check_label_values(t: torch.Tensor, num_classes: int, ignore_label: int | None, name: str = "target") -> None:
    """Label values must be integers in [0, num_classes), ``ignore_label`` aside."""
    if t.numel() == 0:
        return
    lo, hi, integral = _value_stats(t, ignore_label)
    if not integral:
        raise ValueError(f"{name} must hold integer class labels, found non-integer values.")
    if lo < 0 or hi >= num_classes:
        extra = f" (ignore_label={ignore_label} aside)" if ignore_label is not None else ""
        raise ValueError(
            f"{name} label values must be in [0, {num_classes}) for input with {num_classes} channels{extra}, "
            f"found values in [{lo:g}, {hi:g}]."
        )


def _check_index_values(t: torch.Tensor, name: str, upper: int | None = None) -> int:
    """Index maps (instances, regions) hold non-negative integers (< ``upper`` if given); returns the max."""
    if t.numel() == 0:
        return 0
    if t.is_floating_point() or t.is_complex():
        lo, hi, integral = _value_stats(t)
        if not integral:
            raise ValueError(f"{name} must hold integer ids, found non-integer values.")
    else:
        lo, hi, _ = _value_stats(t)
    if lo < 0:
        raise ValueError(f"{name} must hold non-negative integer ids, found minimum {lo:g}.")
    if upper is not None and hi >= upper:
        raise ValueError(f"{name} values must be in [0, {upper}), found maximum {hi:g}.")
    return int(hi)


def _label_target(
    input: torch.Tensor, target: Any, ignore_label: int | None = None, check_values: bool = True
) -> torch.Tensor:
    """Check an integer label map against logits (B, C, *spatial) and return it as int64 (B, 1, *spatial)."""
    target = _match_map(input, target, "target", (1,))
    if check_values:
        _check_label_values(target, input.shape[1], ignore_label)
    return target.long()


def _segment_sum(values: torch.Tensor, index: torch.Tensor, bins: int) -> torch.Tensor:
    """Segment sums along the last axis, in one pass, differentiable w.r.t. ``values``.

    ``out[..., k] = sum(values[..., n] for n with index[..., n] == k)``; ``index`` (integer ids in
    ``[0, bins)``) broadcasts to ``values``. Accumulates in float32 (or wider if ``values`` is).
    """
    dtype = torch.promote_types(values.dtype, torch.float32)
    index = index.long().expand(values.shape)
    out = torch.zeros(*values.shape[:-1], bins, dtype=dtype, device=values.device)
    return out.scatter_add(-1, index, values.to(dtype))


def _segment_count(index: torch.Tensor, bins: int) -> torch.Tensor:
    """Number of entries of each id along the last axis of ``index``, float32 (exact up to 2**24)."""
    index = index.long()
    ones = torch.ones((), dtype=torch.float32, device=index.device).expand(index.shape)
    out = torch.zeros(*index.shape[:-1], bins, dtype=torch.float32, device=index.device)
    return out.scatter_add_(-1, index, ones)


def _zero_with_grad(*tensors: torch.Tensor) -> torch.Tensor:
    """A float32 zero that stays connected to the graph of ``tensors`` (valid, all-zero gradients)."""
    return sum((t.sum() * 0.0 for t in tensors), torch.zeros((), dtype=torch.float32, device=tensors[0].device))


def _ddp_active() -> bool:
    return dist.is_available() and dist.is_initialized()


class _AllGatherWithGrad(torch.autograd.Function):
    """All-gather that passes gradients back (as nnU-Net v2's ``AllGatherGrad``).

    Forward stacks every rank's tensor into (world_size, *shape). Backward sums the incoming
    gradients over ranks (all-reduce) and returns this rank's slice.
    """

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        tensor = tensor.contiguous()
        gathered = [torch.zeros_like(tensor) for _ in range(dist.get_world_size())]
        dist.all_gather(gathered, tensor)
        return torch.stack(gathered, dim=0)

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        grad_output = grad_output.contiguous().clone()
        dist.all_reduce(grad_output, op=dist.ReduceOp.SUM)
        return grad_output[dist.get_rank()]


def _gather_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum ``t`` over all DDP ranks with gradients; identity without an initialised process group."""
    if not _ddp_active():
        return t
    return _AllGatherWithGrad.apply(t).sum(0, dtype=torch.float32)


def _resize_nearest(t: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    """Resize a (B, K, *spatial) map to ``size`` with nearest neighbour, keeping its dtype."""
    if tuple(t.shape[2:]) == tuple(size):
        return t
    dtype = t.dtype
    if dtype in (torch.int32, torch.int64):
        work = t.double()  # ids beyond 2**24 stay exact
    elif dtype in (torch.float32, torch.float64):
        work = t
    else:  # bool, uint8, int8, int16, float16, bfloat16: exact in float32
        work = t.float()
    out = F.interpolate(work, size=size, mode="nearest-exact")
    if dtype == torch.bool:
        return out > 0.5
    return out.to(dtype)
