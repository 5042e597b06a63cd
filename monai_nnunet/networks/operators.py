"""Operator names in plans and network configs, resolved from an allowlist.

Plans files and checkpoints come from elsewhere, so the dotted names they hold (``"conv_op":
"torch.nn.modules.conv.Conv3d"``) are data: they resolve only to the convolution, normalisation, dropout and
non-linearity classes of ``torch.nn`` listed here, never to an arbitrary importable object (``"os.system"``).
Classes passed from Python code are the caller's own choice and are used as they are.
"""

from __future__ import annotations

from typing import Any

import torch.nn as nn

__all__ = ["ALLOWED_OPERATORS", "OperatorNameError", "operator_name", "resolve_operator"]

_CONV = ("Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d")
_NORM = ("InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d", "BatchNorm1d", "BatchNorm2d", "BatchNorm3d",
         "GroupNorm", "LayerNorm", "LocalResponseNorm", "SyncBatchNorm")
_DROPOUT = ("Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout")
_NONLIN = ("LeakyReLU", "ReLU", "ReLU6", "PReLU", "RReLU", "ELU", "SELU", "CELU", "GELU", "SiLU", "Mish", "Tanh",
           "Sigmoid", "Hardswish", "Softplus")

#: dotted name -> class, for every spelling nnU-Net writes (``torch.nn.Conv3d`` and ``torch.nn.modules.conv.Conv3d``)
ALLOWED_OPERATORS: dict[str, type[nn.Module]] = {}
for _name in _CONV + _NORM + _DROPOUT + _NONLIN:
    _cls = getattr(nn, _name)
    ALLOWED_OPERATORS[f"torch.nn.{_name}"] = _cls
    ALLOWED_OPERATORS[f"{_cls.__module__}.{_cls.__qualname__}"] = _cls
del _name, _cls


class OperatorNameError(ValueError):
    """A plans or config entry names an operator outside the allowlist."""


def resolve_operator(key: str, value: Any) -> Any:
    """The class for an operator entry.

    Args:
        key: the entry's name (``conv_op``, ``norm_op``, ``dropout_op``, ``nonlin``), for the error message.
        value: a dotted name, a class, or ``None``.

    Returns:
        The class (or ``None``).

    Raises:
        OperatorNameError: for a name outside :data:`ALLOWED_OPERATORS`, or a value that is neither.
    """
    if value is None or isinstance(value, type):
        return value
    if isinstance(value, str):
        try:
            return ALLOWED_OPERATORS[value]
        except KeyError:
            raise OperatorNameError(
                f"{key}={value!r} is not an allowed operator: plans and checkpoints may name only torch.nn "
                f"convolution, normalisation, dropout and non-linearity classes (e.g. 'torch.nn.Conv3d')"
            ) from None
    raise OperatorNameError(f"{key} must be a dotted class name, a class or None, got {type(value).__name__}")


def operator_name(value: Any) -> Any:
    """The dotted name written for an operator class (``torch.nn.Conv3d``); names and ``None`` pass through."""
    if isinstance(value, type):
        short = f"torch.nn.{value.__name__}"
        if ALLOWED_OPERATORS.get(short) is value:
            return short
        return f"{value.__module__}.{value.__qualname__}"
    return value
