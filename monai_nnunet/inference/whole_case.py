"""A MONAI ``Inferer`` for whole preprocessed cases: the predictor's Gaussian-weighted sliding window."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.inferers import Inferer

from monai_nnunet.inference.sliding_window import predict_sliding_window_logits
from monai_nnunet.networks.config import unwrap_network

__all__ = ["WholeCaseInferer"]


class WholeCaseInferer(Inferer):
    """Whole preprocessed cases ``(1, C, Z, Y, X)`` -> logits ``(1, K, Z, Y, X)``: the predictor's Gaussian-weighted
    sliding window (half-patch steps), mirroring when asked; a 2d configuration's network runs on the slices of the
    first axis. A ``DistributedDataParallel`` network is run unwrapped (no gradient synchronisation at inference).

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
        self.mirror_axes = tuple(int(a) for a in mirror_axes)
        self.device = torch.device(device)
        self.sw_batch_size = int(sw_batch_size)
        self.step_size = float(step_size)

    def __call__(self, inputs: torch.Tensor, network, *args, **kwargs) -> torch.Tensor:
        if inputs.ndim != 5 or inputs.shape[0] != 1:
            raise ValueError(f"expected one whole case (1, C, Z, Y, X), got shape {tuple(inputs.shape)}")
        logits = predict_sliding_window_logits(unwrap_network(network), inputs[0], self.patch_size,
                                               step_size=self.step_size, mirror_axes=self.mirror_axes,
                                               device=self.device, sw_batch_size=self.sw_batch_size)
        return logits[None]
