"""Read the ``architecture`` block of an nnU-Net v2 plans configuration.

A configuration is the entry ``plans["configurations"][name]`` of an nnU-Net v2 plans JSON, given as a plain dict,
any read-only mapping, or an object holding that dict in a ``configuration`` attribute (nnU-Net's and our
``ConfigurationManager``). The block names the network class and its constructor arguments; the operator entries
(``conv_op``, ``norm_op``, ``dropout_op``, ``nonlin``) are dotted names, resolved here from an allowlist of torch.nn
classes (:mod:`monai_nnunet.networks.operators`): a plans file is data and never names code to run.
Plans written before nnU-Net v2.4 (``UNet_class_name``, ``conv_kernel_sizes``, ...) are converted the way nnU-Net's
``ConfigurationManager`` converts them.
"""

from __future__ import annotations

from collections.abc import Mapping
from copy import deepcopy
from dataclasses import dataclass, field
from typing import Any

import torch.nn as nn

from monai_nnunet.networks.operators import ALLOWED_OPERATORS, OperatorNameError, resolve_operator
from monai_nnunet.planning.plans import architecture_from_legacy

__all__ = [
    "PLAIN_CONV_UNET",
    "RESIDUAL_ENCODER_UNETS",
    "ArchitecturePlan",
    "configuration_dict",
    "read_architecture",
    "spatial_dims_of",
]

PLAIN_CONV_UNET = "dynamic_network_architectures.architectures.unet.PlainConvUNet"
#: nnU-Net's names of its residual-encoder U-Net: the ResEnc planners' and the one of pre-2.4 plans
RESIDUAL_ENCODER_UNETS = ("dynamic_network_architectures.architectures.unet.ResidualEncoderUNet",
                          "dynamic_network_architectures.architectures.residual_unet.ResidualEncoderUNet")
_DEFAULT_REQUIRES_IMPORT = ("conv_op", "norm_op", "dropout_op", "nonlin")


@dataclass(frozen=True)
class ArchitecturePlan:
    """The network part of one plans configuration, with operator names imported.

    Attributes:
        network_class_name: the dotted class name from the plans, e.g. nnU-Net's ``PlainConvUNet``.
        arch_kwargs: constructor arguments of that class, ``conv_op``/``norm_op``/``dropout_op``/``nonlin`` as
            classes (or ``None``), everything else as in the plans.
        patch_size: the configuration's patch size, ``None`` when the configuration has none.
    """

    network_class_name: str
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    patch_size: tuple[int, ...] | None = None

    @property
    def spatial_dims(self) -> int:
        """Number of spatial dimensions (2 or 3), taken from ``conv_op``."""
        return spatial_dims_of(self.arch_kwargs["conv_op"])

    @property
    def is_plain_conv_unet(self) -> bool:
        """Whether the plans ask for nnU-Net's ``PlainConvUNet`` (the default nnU-Net network)."""
        return self.network_class_name.split(".")[-1] == PLAIN_CONV_UNET.split(".")[-1]

    @property
    def is_residual_encoder_unet(self) -> bool:
        """Whether the plans ask for nnU-Net's ``ResidualEncoderUNet`` (the ResEnc presets' network)."""
        return self.network_class_name in RESIDUAL_ENCODER_UNETS


def configuration_dict(configuration: Any) -> Mapping[str, Any]:
    """Returns the configuration entry as a mapping.

    Args:
        configuration: a mapping (the plans' configuration entry) or an object with a mapping in its
            ``configuration`` attribute.

    Returns:
        The mapping itself; it is not copied.

    Raises:
        TypeError: when ``configuration`` is neither.
    """
    if isinstance(configuration, Mapping):
        return configuration
    inner = getattr(configuration, "configuration", None)
    if isinstance(inner, Mapping):
        return inner
    raise TypeError(
        "expected a plans configuration: a dict with 'architecture' and 'patch_size', or an object with such a "
        f"dict in its 'configuration' attribute; got {type(configuration).__name__}."
    )


def read_architecture(configuration: Any) -> ArchitecturePlan:
    """Reads and resolves the architecture block of a plans configuration.

    Args:
        configuration: see :func:`configuration_dict`. Old-format plans (before nnU-Net v2.4) are accepted.

    Returns:
        The network class name, its arguments with operator names imported, and the patch size.

    Raises:
        KeyError: when the configuration has neither an ``architecture`` block nor the old-format keys.
        ValueError: when an operator name cannot be imported or the block is malformed.
    """
    conf = configuration_dict(configuration)
    if "architecture" in conf:
        block = conf["architecture"]
    elif "UNet_class_name" in conf:
        block = architecture_from_legacy(conf)
    else:
        raise KeyError(
            "the configuration has no 'architecture' block (nnU-Net v2 plans) and no 'UNet_class_name' "
            f"(plans before nnU-Net v2.4); keys present: {sorted(conf)}"
        )
    if not isinstance(block, Mapping) or "network_class_name" not in block or "arch_kwargs" not in block:
        raise ValueError("the 'architecture' block needs 'network_class_name' and 'arch_kwargs'.")
    kwargs = deepcopy(dict(block["arch_kwargs"]))
    for key in block.get("_kw_requires_import", _DEFAULT_REQUIRES_IMPORT):
        if key in kwargs:
            kwargs[key] = _import_operator(key, kwargs[key])
    patch = conf.get("patch_size")
    return ArchitecturePlan(
        network_class_name=str(block["network_class_name"]),
        arch_kwargs=kwargs,
        patch_size=None if patch is None else tuple(int(p) for p in patch),
    )


def spatial_dims_of(conv_op: type[nn.Module]) -> int:
    """Spatial dimensions of a convolution class.

    Args:
        conv_op: ``torch.nn.Conv2d`` or ``torch.nn.Conv3d`` (or a subclass).

    Returns:
        2 or 3.

    Raises:
        ValueError: for any other class.
    """
    if isinstance(conv_op, type):
        if issubclass(conv_op, nn.Conv3d):
            return 3
        if issubclass(conv_op, nn.Conv2d):
            return 2
    raise ValueError(f"conv_op must be torch.nn.Conv2d or torch.nn.Conv3d, got {conv_op!r}.")


def _import_operator(key: str, value: Any) -> Any:
    """Resolves a dotted operator name from the allowlist; classes and ``None`` pass through."""
    if isinstance(value, str) and value not in ALLOWED_OPERATORS:
        raise OperatorNameError(
            f"the plans' architecture block names {key}={value!r}, which is not an allowed operator (torch.nn "
            f"convolution, normalisation, dropout and non-linearity classes only)"
        )
    return resolve_operator(key, value)
