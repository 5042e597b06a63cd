"""The one device resolver of training and prediction."""

from __future__ import annotations

import torch

__all__ = ["DeviceUnavailableError", "resolve_device"]


class DeviceUnavailableError(ValueError):
    """The requested device is unknown or not available on this machine."""


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """The device to run on: ``None`` picks CUDA when available, else the CPU.

    Args:
        device: ``"cuda"``, ``"cuda:1"``, ``"cpu"``, ``"mps"``, a ``torch.device`` or ``None``.

    Raises:
        DeviceUnavailableError: when the device is unknown or not available here.
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise DeviceUnavailableError(f"unknown device {device!r}; use cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailableError(f"device {str(device)!r} was requested but CUDA is not available on this "
                                     f"machine; use -device cpu")
    if device.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise DeviceUnavailableError("device 'mps' was requested but MPS is not available on this machine; use "
                                     "-device cpu")
    return device
