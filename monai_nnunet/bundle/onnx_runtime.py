"""The network of ``configs/inference_onnx.yaml``: the bundle's ``models/*.onnx`` run by ONNX Runtime, as a module
the sliding window calls like the PyTorch network (``(B, C, *patch)`` -> logits ``(B, K, *patch)``).

ONNX Runtime is the optional extra ``monai-nnunet[onnx]``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from monai.utils import optional_import
from torch import nn

from monai_nnunet.bundle.inference import FoldEnsemble

ort, has_ort = optional_import("onnxruntime")

__all__ = ["OnnxNetwork", "onnx_fold_ensemble"]


class OnnxNetwork(nn.Module):
    """One ONNX model as a network.

    Args:
        model_file: the ``.onnx`` file.
        providers: ONNX Runtime execution providers (default: CUDA when ONNX Runtime has it, then the CPU).

    Raises:
        ImportError: ONNX Runtime is not installed (``pip install monai-nnunet[onnx]``).
        FileNotFoundError: the model file is missing.
    """

    def __init__(self, model_file: str | os.PathLike, providers: Sequence[str] | None = None) -> None:
        super().__init__()
        if not has_ort:
            raise ImportError("configs/inference_onnx.yaml needs ONNX Runtime: pip install 'monai-nnunet[onnx]'")
        self.model_file = Path(model_file)
        if not self.model_file.is_file():
            raise FileNotFoundError(f"ONNX model {self.model_file} does not exist (export with --onnx)")
        available = ort.get_available_providers()
        wanted = list(providers) if providers else ["CUDAExecutionProvider", "CPUExecutionProvider"]
        self.session = ort.InferenceSession(str(self.model_file),
                                            providers=[p for p in wanted if p in available] or available)
        self.input_name = self.session.get_inputs()[0].name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x ``(B, C, *patch)``. Returns: the logits ``(B, K, *patch)`` on ``x``'s device."""
        array = np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())
        logits = self.session.run(None, {self.input_name: array})[0]
        return torch.from_numpy(logits).to(x.device)


def onnx_fold_ensemble(model_files: Sequence[str | os.PathLike] | str | os.PathLike,
                       providers: Sequence[str] | None = None) -> FoldEnsemble:
    """One :class:`OnnxNetwork` per fold's ``.onnx`` file, their logits averaged."""
    files = [model_files] if isinstance(model_files, (str, os.PathLike)) else list(model_files)
    return FoldEnsemble([OnnxNetwork(f, providers) for f in files]).eval()
