"""Sliding-window prediction of one preprocessed case: MONAI's ``SlidingWindowInferer`` with Gaussian weighting,
mirroring test-time augmentation, and the mean over folds.

Behaviour follows nnU-Net v2's predictor:

- windows of the configuration's patch size, ``overlap = 1 - step_size`` (step 0.5 of the patch by default), each
  window's logits weighted by a Gaussian (sigma = patch / 8), images smaller than the patch padded with zeros;
- mirroring: every non-empty combination of the allowed axes; the window's logits are the mean over the unflipped
  and all flipped predictions (logits, not probabilities, as nnU-Net);
- folds: the logits of all folds summed and divided by their number;
- 2d configurations predict each slice of the first axis as an image (the slices form MONAI's batch);
- fp16 autocast on CUDA only; stitched outputs stay on the GPU and fall back to the CPU when memory runs out.

MONAI places the windows at multiples of ``int(patch * step_size)`` (the last one flush with the border); nnU-Net
spreads the same number of windows evenly. Both cover every voxel with the same count of windows.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from contextlib import nullcontext

import numpy as np
import torch
import torch.nn as nn
from monai.inferers import SlidingWindowInferer

__all__ = ["MirrorAveragingNetwork", "mirror_axes_combinations", "predict_sliding_window_logits"]


def mirror_axes_combinations(axes: Sequence[int]) -> list[tuple[int, ...]]:
    """Every non-empty combination of ``axes`` (nnU-Net's order: singles, then pairs, ...).

    Args:
        axes: spatial axes (0-based, not counting batch and channel).

    Returns:
        e.g. ``[(0,), (1,), (2,), (0, 1), (0, 2), (1, 2), (0, 1, 2)]`` for ``(0, 1, 2)``.
    """
    axes = tuple(int(a) for a in axes)
    return [c for i in range(len(axes)) for c in itertools.combinations(axes, i + 1)]


def _logits(output: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
    """The full-resolution logits of a network output (the first of a deep-supervision list)."""
    return output[0] if isinstance(output, (list, tuple)) else output


class MirrorAveragingNetwork(nn.Module):
    """Wraps a network so that ``forward`` returns the mean logits over the unflipped and all flipped inputs.

    Args:
        network: takes ``(B, C, H, W[, D])`` and returns ``(B, K, H, W[, D])`` logits.
        mirror_axes: spatial axes that may be flipped (``()`` or ``None``: no mirroring).
        mirror_batch_size: how many copies (the unflipped input and its flips) go through the network in one
            forward pass: 1 runs one pass per flip as nnU-Net does; larger values stack copies into one batch (fewer,
            larger passes: faster on GPUs and on busy CPUs, more memory); ``None``: all copies in one pass.

    Raises:
        ValueError: for a negative axis or a batch size below 1.
    """

    def __init__(self, network: nn.Module, mirror_axes: Sequence[int] | None, mirror_batch_size: int | None = 1):
        super().__init__()
        self.network = network
        axes = tuple(int(a) for a in (mirror_axes or ()))
        if any(a < 0 for a in axes):
            raise ValueError(f"mirror axes must be >= 0, got {axes}")
        if mirror_batch_size is not None and int(mirror_batch_size) < 1:
            raise ValueError(f"mirror_batch_size must be >= 1 or None, got {mirror_batch_size}")
        self.mirror_axes = axes
        self.mirror_batch_size = None if mirror_batch_size is None else int(mirror_batch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(B, C, H, W[, D])``. Returns ``(B, K, H, W[, D])``, the mean logits."""
        spatial = x.ndim - 2
        if self.mirror_axes and max(self.mirror_axes) >= spatial:
            raise ValueError(f"mirror axes {self.mirror_axes} do not fit a {spatial}D input of shape {tuple(x.shape)}")
        combos = [()] + [tuple(a + 2 for a in c) for c in mirror_axes_combinations(self.mirror_axes)]
        if len(combos) == 1:
            return _logits(self.network(x))
        step = len(combos) if self.mirror_batch_size is None else self.mirror_batch_size
        batch = x.shape[0]
        total = None
        for start in range(0, len(combos), step):
            group = combos[start:start + step]
            inputs = [torch.flip(x, c) if c else x for c in group]
            out = _logits(self.network(inputs[0] if len(inputs) == 1 else torch.cat(inputs)))
            for i, c in enumerate(group):
                part = out[i * batch:(i + 1) * batch]
                part = torch.flip(part, c) if c else part
                total = part.clone() if total is None else total.add_(part)
        return total / len(combos)


def _as_tensor(data: np.ndarray | torch.Tensor) -> torch.Tensor:
    if isinstance(data, torch.Tensor):
        return data.float() if data.dtype != torch.float32 else data
    return torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32))


@torch.inference_mode()
def _run_inferer(inferer: SlidingWindowInferer, inputs: torch.Tensor, network: nn.Module, device: torch.device,
                 output_device: torch.device) -> torch.Tensor:
    inferer.sw_device = device
    inferer.device = output_device
    autocast = torch.autocast("cuda") if device.type == "cuda" else nullcontext()
    with autocast:
        return inferer(inputs.to(device if output_device.type != "cpu" else inputs.device), network)


def predict_sliding_window_logits(
    networks: nn.Module | Sequence[nn.Module],
    data: np.ndarray | torch.Tensor,
    patch_size: Sequence[int],
    step_size: float = 0.5,
    mirror_axes: Sequence[int] | None = None,
    device: torch.device | str = "cpu",
    sw_batch_size: int = 1,
    use_gaussian: bool = True,
    mirror_batch_size: int | None = 1,
    progress: bool = False,
) -> torch.Tensor:
    """Logits of one preprocessed case, averaged over mirrors and folds.

    Args:
        networks: one network per fold (eval mode, deep supervision off), each returning one logits tensor.
        data: the preprocessed image ``(C, Z, Y, X)`` (float32).
        patch_size: the configuration's patch size: three values, or two for a 2d configuration (then each slice of
            the first axis is predicted as an image).
        step_size: window step as a fraction of the patch, in (0, 1]; MONAI's ``overlap = 1 - step_size``.
        mirror_axes: spatial axes of the patch to mirror for test-time augmentation (``None``/``()``: none).
        device: where the networks run (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``).
        sw_batch_size: windows per forward pass.
        use_gaussian: Gaussian importance weighting (sigma = patch / 8); ``False``: plain averaging.
        mirror_batch_size: copies of a window (unflipped and flipped) per forward pass (see
            :class:`MirrorAveragingNetwork`); 1: one pass per flip, as nnU-Net.
        progress: show MONAI's progress bar.

    Returns:
        Logits ``(K, Z, Y, X)`` float32 on the CPU (an ordinary tensor, computed under ``torch.inference_mode``).

    Raises:
        ValueError: for a ``data`` shape that does not fit the patch size, or a step size outside (0, 1].
    """
    with torch.inference_mode():
        logits = _predict(networks, data, patch_size, step_size, mirror_axes, device, sw_batch_size, use_gaussian,
                          mirror_batch_size, progress)
    return logits.clone()  # outside inference mode: a normal tensor callers may modify in place


def _predict(networks, data, patch_size, step_size, mirror_axes, device, sw_batch_size, use_gaussian,
             mirror_batch_size, progress) -> torch.Tensor:
    if not 0 < step_size <= 1:
        raise ValueError(f"step_size must be in (0, 1], got {step_size}")
    networks = [networks] if isinstance(networks, nn.Module) else list(networks)
    if not networks:
        raise ValueError("no network given")
    tensor = _as_tensor(data)
    patch = [int(p) for p in patch_size]
    if tensor.ndim != 4:
        raise ValueError(f"data must be (C, Z, Y, X), got shape {tuple(tensor.shape)}")
    if len(patch) == 2:
        inputs = tensor.permute(1, 0, 2, 3)  # slices as the batch: (Z, C, Y, X)
    elif len(patch) == 3:
        inputs = tensor[None]
    else:
        raise ValueError(f"patch_size must have 2 or 3 values, got {patch}")
    device = torch.device(device)
    inferer = SlidingWindowInferer(
        roi_size=patch, sw_batch_size=int(sw_batch_size), overlap=1.0 - float(step_size),
        mode="gaussian" if use_gaussian else "constant", sigma_scale=0.125, padding_mode="constant", cval=0.0,
        progress=progress,
    )
    total = None
    for network in networks:
        network = network.to(device).eval()
        model = MirrorAveragingNetwork(network, mirror_axes, mirror_batch_size)
        if device.type == "cuda":
            try:
                logits = _run_inferer(inferer, inputs, model, device, device)
            except torch.cuda.OutOfMemoryError:
                torch.cuda.empty_cache()
                logits = _run_inferer(inferer, inputs, model, device, torch.device("cpu"))
        else:
            logits = _run_inferer(inferer, inputs, model, device, torch.device("cpu"))
        logits = logits.detach().to("cpu", torch.float32)
        total = logits if total is None else total.add_(logits)
    if len(networks) > 1:
        total /= len(networks)
    if len(patch) == 2:
        total = total.permute(1, 0, 2, 3)
    else:
        total = total[0]
    if hasattr(total, "as_tensor"):  # MONAI may hand back a MetaTensor
        total = total.as_tensor()
    return total.contiguous()
