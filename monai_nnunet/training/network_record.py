"""What a checkpoint records about its network: the class and the arguments it was built with, as data.

The run's ``train.yaml`` builds ``network_def`` (any class: this package's, MONAI's ``SegResNet`` or ``BasicUNet``,
a user's), and its ``checkpoint_record`` holds ``network_def: "$nnunet_training.network_record(@network_def)"``:
the class by its public path and each argument as MONAI evaluated it, in plain JSON values. Prediction, export and
the exported bundle build the network from that record (:func:`monai_nnunet.networks.build_network_from_config`),
never by running the run's config again.
"""

from __future__ import annotations

from typing import Any

import torch.nn as nn

from monai_nnunet.bundle.running import component_config
from monai_nnunet.networks.config import (
    NetworkConfigError,
    check_plain_arguments,
    describe_arguments,
    network_config,
    unwrap_network,
)
from monai_nnunet.networks.trusted import public_class_path

__all__ = ["network_record"]


def _recorded_target(target: Any, cls: type) -> str:
    # the component's class itself (however its _target_ was spelt: short name, full path), else the factory named
    if not isinstance(target, str) or target.split(".")[-1].split(":")[-1] == cls.__name__:
        return public_class_path(cls)
    return target.replace(":", ".")


def network_record(network: nn.Module, component_id: str = "network_def") -> dict[str, Any]:
    """The record of ``network``, the component ``component_id`` of the bundle being run.

    Args:
        network: the built network (its class is recorded).
        component_id: its bundle id.

    Returns:
        ``{"_target_": "package.module.Class", **arguments}`` in plain values.

    Raises:
        NetworkConfigError: an argument is not a plain value (e.g. a nested component or an object built by an
            expression), so the run could not be predicted or exported; raised before training starts.
    """
    cls = type(unwrap_network(network))
    component = component_config(component_id)
    if component is None:  # built outside a bundle: the network describes itself (this package's networks)
        record = network_config(network)
        if record is None:
            raise NetworkConfigError(
                f"{component_id} builds {cls.__qualname__} by an expression and the class records no constructor "
                f"arguments (init_kwargs), so a checkpoint could not rebuild it for prediction or export: declare "
                f"{component_id} as a component (_target_ and its arguments)")
        return record
    target, arguments = component
    nested = sorted(k for k, v in arguments.items() if isinstance(v, dict) and "_target_" in v)
    if nested:
        raise NetworkConfigError(f"{component_id}#{nested[0]} is a component (_target_): a checkpoint records the "
                                 f"network's arguments as plain values, so give it as a value")
    record = {"_target_": _recorded_target(target, cls), **describe_arguments(arguments)}
    check_plain_arguments(record, component_id)
    return record
