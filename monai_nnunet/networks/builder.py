"""Plans configuration -> network.

:func:`build_network` is the one place a network is made from plans: the default nnU-Net network
(:class:`PlansDynUNet`) or any architecture class that takes the plans' ``arch_kwargs`` plus ``input_channels``,
``num_classes`` and ``deep_supervision`` (nnU-Net's ``PlainConvUNet`` signature; the custom architectures of
:mod:`monai_nnunet.networks.custom` do).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch.nn as nn

from monai_nnunet.networks.config import unwrap_network
from monai_nnunet.networks.plans_architecture import read_architecture
from monai_nnunet.networks.plans_dynunet import PlansDynUNet
from monai_nnunet.networks.shallow_unet import ShallowPlainUNet

__all__ = ["build_network", "default_network_class", "set_deep_supervision"]

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
            ``input_channels``, ``num_classes`` and ``deep_supervision``. ``None``: the plans' own network, which
            must be nnU-Net's ``PlainConvUNet`` (built as :class:`PlansDynUNet`).
        architecture_kwargs: extra keywords for ``architecture``; they override plans entries of the same name.
            A ``deep_supervision`` entry is ignored in favour of the argument.

    Returns:
        The network, weights initialised the way its class does it (He normal for the networks of this package).

    Raises:
        ValueError: when ``architecture`` is ``None`` and the plans name a network other than ``PlainConvUNet``,
            or when ``architecture_kwargs`` sets ``input_channels`` or ``num_classes``.
        TypeError, KeyError: when the configuration is not a plans configuration.
    """
    plan = read_architecture(configuration)
    extra = dict(architecture_kwargs or {})
    extra.pop("deep_supervision", None)
    clashing = [k for k in ("input_channels", "num_classes") if k in extra]
    if clashing:
        raise ValueError(f"architecture_kwargs may not set {clashing}; they come from the dataset.")
    if architecture is None:
        if not plan.is_plain_conv_unet:
            raise ValueError(
                f"the plans ask for {plan.network_class_name}; the default network builds nnU-Net's PlainConvUNet "
                "only. Pass an architecture (e.g. through a TrainerConfig) for other plans."
            )
        architecture = default_network_class(plan.arch_kwargs["n_stages"])
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
