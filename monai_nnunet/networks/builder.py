"""Plans configuration -> network.

:func:`build_network` is the one place a network is made from plans: the plans' own network (nnU-Net's
``PlainConvUNet`` as :class:`PlansDynUNet`, its ``ResidualEncoderUNet`` as ours, see :func:`plans_network_class`)
or any architecture class that takes the plans' ``arch_kwargs`` plus ``input_channels``,
``num_classes`` and ``deep_supervision`` (nnU-Net's ``PlainConvUNet`` signature; the custom architectures of
:mod:`monai_nnunet.networks.custom` do).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch.nn as nn

from monai_nnunet.networks.config import unwrap_network
from monai_nnunet.networks.plans_architecture import ArchitecturePlan, read_architecture
from monai_nnunet.networks.plans_dynunet import PlansDynUNet
from monai_nnunet.networks.residual_encoder_unet import ResidualEncoderUNet
from monai_nnunet.networks.shallow_unet import ShallowPlainUNet

__all__ = ["build_network", "default_network_class", "plans_network_class", "set_deep_supervision"]

_RESERVED = ("input_channels", "num_classes", "deep_supervision")


def build_network(
    configuration: Any,
    num_input_channels: int,
    num_outputs: int,
    deep_supervision: bool = True,
    architecture: Callable[..., nn.Module] | None = None,
    architecture_kwargs: Mapping[str, Any] | None = None,
) -> nn.Module:
    """Builds the network a plans configuration describes.

    Args:
        configuration: the plans' configuration entry (a dict with ``architecture`` and ``patch_size``), or an
            object with that dict in ``.configuration`` (a ``ConfigurationManager``).
        num_input_channels: image channels (modalities).
        num_outputs: segmentation heads (classes including background, or regions).
        deep_supervision: whether training-mode forward returns the list of all decoder stages' logits.
        architecture: a network class (or factory) taking the plans' ``arch_kwargs`` as keywords plus
            ``input_channels``, ``num_classes`` and ``deep_supervision``. ``None``: the plans' own network
            (:func:`plans_network_class`).
        architecture_kwargs: extra keywords for ``architecture``; they override plans entries of the same name.
            A ``deep_supervision`` entry is ignored in favour of the argument.

    Returns:
        The network, weights initialised the way its class does it (He normal for the networks of this package).

    Raises:
        ValueError: when ``architecture`` is ``None`` and the plans name a network other than ``PlainConvUNet``
            and ``ResidualEncoderUNet``, or when ``architecture_kwargs`` sets ``input_channels`` or ``num_classes``.
        TypeError, KeyError: when the configuration is not a plans configuration.
    """
    plan = read_architecture(configuration)
    extra = dict(architecture_kwargs or {})
    extra.pop("deep_supervision", None)
    clashing = [k for k in ("input_channels", "num_classes") if k in extra]
    if clashing:
        raise ValueError(f"architecture_kwargs may not set {clashing}; they come from the dataset.")
    if architecture is None:
        architecture = plans_network_class(plan)
    kwargs = {**plan.arch_kwargs, **extra}
    return architecture(
        input_channels=int(num_input_channels),
        num_classes=int(num_outputs),
        deep_supervision=bool(deep_supervision),
        **kwargs,
    )


def default_network_class(n_stages: int) -> type[nn.Module]:
    """The plans' plain U-Net: MONAI's DynUNet (:class:`PlansDynUNet`) from three stages on, else
    :class:`ShallowPlainUNet` (DynUNet needs at least one downsampling and one upsampling block besides the
    bottleneck)."""
    return PlansDynUNet if int(n_stages) >= 3 else ShallowPlainUNet


def plans_network_class(plan: ArchitecturePlan) -> type[nn.Module]:
    """The class of this package that builds the network a plans ``architecture`` block names (an allowlist:
    nnU-Net's ``PlainConvUNet`` -> :func:`default_network_class`, its ``ResidualEncoderUNet`` -> ours).

    Args:
        plan: the block, read by :func:`~monai_nnunet.networks.read_architecture`.

    Raises:
        ValueError: for any other class name.
    """
    if plan.is_plain_conv_unet:
        return default_network_class(plan.arch_kwargs["n_stages"])
    if plan.is_residual_encoder_unet:
        return ResidualEncoderUNet
    raise ValueError(
        f"the plans ask for {plan.network_class_name}; the plans' network is built for nnU-Net's PlainConvUNet and "
        "ResidualEncoderUNet only. Pass an architecture (e.g. through a TrainerConfig, -tr) for other plans."
    )


def set_deep_supervision(network: nn.Module, enabled: bool) -> None:
    """Switches a network's deep-supervision output on or off, through DDP and ``torch.compile`` wrappers.

    Works for every network of this package (``network.deep_supervision``) and for nnU-Net-style networks that
    keep the switch on ``network.decoder.deep_supervision``.

    Args:
        network: the network, possibly wrapped in ``DistributedDataParallel`` (``.module``) or compiled
            (``._orig_mod``).
        enabled: the new value.

    Raises:
        AttributeError: when the network has no deep-supervision switch.
    """
    inner = unwrap_network(network)
    if hasattr(inner, "deep_supervision"):
        inner.deep_supervision = bool(enabled)
    elif hasattr(getattr(inner, "decoder", None), "deep_supervision"):
        inner.decoder.deep_supervision = bool(enabled)
    else:
        raise AttributeError(f"{type(inner).__name__} has no deep_supervision switch.")
