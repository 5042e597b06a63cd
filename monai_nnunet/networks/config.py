"""A network as data: its class and constructor arguments, recorded in checkpoints and exported bundles.

Training builds the network from the run's ``network_def`` (``_target_`` and arguments); the checkpoint records
its class and evaluated arguments (:func:`monai_nnunet.training.network_record`; :func:`network_config` for a
network built outside a bundle) so that prediction and export rebuild exactly that network, whatever trainer
name the run had. A recorded config is data from a file: :func:`build_network_from_config` takes plain values only
(:func:`check_plain_arguments`), imports the class only from a trusted network module
(:mod:`monai_nnunet.networks.trusted`), and the operator names in the arguments resolve from the allowlist of
:mod:`monai_nnunet.networks.operators`.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import torch.nn as nn

from monai_nnunet.networks.operators import operator_name
from monai_nnunet.networks.trusted import resolve_trusted_network

__all__ = ["WRAPPER_PREFIXES", "NetworkConfigError", "build_network_from_config", "check_plain_arguments",
           "describe_arguments", "network_config", "resolve_network_class", "strip_wrapper_prefixes", "unwrap_network",
           "unwrapped_state_dict"]

#: what ``DistributedDataParallel`` and ``torch.compile`` put in front of parameter names
WRAPPER_PREFIXES = ("module.", "_orig_mod.")


class NetworkConfigError(ValueError):
    """A recorded network config cannot be built (unknown class, not a network, bad arguments)."""


def unwrap_network(network: nn.Module) -> nn.Module:
    """The network inside ``DistributedDataParallel`` (``.module``) and ``torch.compile`` (``._orig_mod``)
    wrappers, in any nesting."""
    while True:
        inner = getattr(network, "_orig_mod", None)
        if isinstance(inner, nn.Module):
            network = inner
            continue
        inner = getattr(network, "module", None)
        if isinstance(inner, nn.Module):
            network = inner
            continue
        return network


def strip_wrapper_prefixes(key: str) -> str:
    """A state-dict key without DDP (``module.``) and ``torch.compile`` (``_orig_mod.``) prefixes."""
    changed = True
    while changed:
        changed = False
        for prefix in WRAPPER_PREFIXES:
            if key.startswith(prefix):
                key, changed = key[len(prefix):], True
    return key


def unwrapped_state_dict(state: Mapping[str, Any]) -> dict[str, Any]:
    """A state dict with every key's wrapper prefixes stripped (:func:`strip_wrapper_prefixes`)."""
    return {strip_wrapper_prefixes(k): v for k, v in state.items()}


def describe_arguments(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """Constructor arguments as plain data: operator classes as dotted names, tuples as lists.

    Args:
        arguments: e.g. ``locals()`` at the top of ``__init__`` (``self`` and ``__class__`` are dropped).
    """
    return {k: _plain(v) for k, v in arguments.items() if k not in ("self", "__class__")}


def _plain(value: Any) -> Any:
    if isinstance(value, type):
        return operator_name(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        return value.item()  # NumPy scalars
    return value


def network_config(network: nn.Module) -> dict[str, Any] | None:
    """``{"_target_": "package.module.Class", **arguments}`` of a network, or ``None`` when unknown.

    The networks of this package record their arguments in ``init_kwargs``; another class is described when it has
    ``init_kwargs`` too, or an attribute of the same name for every constructor argument.
    """
    network = unwrap_network(network)
    cls = getattr(type(network), "__full_resolution_of__", type(network))  # the inference form's own class
    target = f"{cls.__module__}.{cls.__qualname__}"
    recorded = getattr(network, "init_kwargs", None)
    if isinstance(recorded, Mapping):
        return {"_target_": target, **describe_arguments(recorded)}
    try:
        params = [p for p in inspect.signature(cls.__init__).parameters.values()
                  if p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    except (TypeError, ValueError):
        return None
    if not all(hasattr(network, p.name) for p in params):
        return None
    return {"_target_": target, **describe_arguments({p.name: getattr(network, p.name) for p in params})}


def resolve_network_class(target: str) -> type[nn.Module]:
    """The network class a recorded ``"package.module.Class"`` (or ``"package.module:Class"``) names, imported only
    from a trusted network module (:mod:`monai_nnunet.networks.trusted`).

    Raises:
        NetworkConfigError: when it is untrusted (nothing was imported), cannot be imported or is not a
            ``torch.nn.Module`` subclass.
    """
    try:
        return resolve_trusted_network(target)
    except ValueError as e:
        raise NetworkConfigError(str(e)) from None


def check_plain_arguments(config: Mapping[str, Any], where: str = "network_def") -> None:
    """Refuses a recorded network config whose arguments are not plain values: a string starting with ``$``, ``@``
    or ``%`` (a MONAI expression, reference or macro), a nested ``_target_`` (a component), a key starting with
    ``_`` other than ``_target_``, or a value that is no JSON type.

    Args:
        config: ``{"_target_": ..., **arguments}``.
        where: how the error names the config (e.g. ``"fold_0/checkpoint_final.pth network_def"``).

    Raises:
        NetworkConfigError: naming the key.
    """
    def check(value: Any, key: str) -> None:
        if isinstance(value, str):
            if value.startswith(("$", "@", "%")):
                raise NetworkConfigError(f"{where}#{key} is {value!r}: a recorded network holds plain values only, "
                                         f"never MONAI expressions, references or macros")
        elif isinstance(value, Mapping):
            for k, v in value.items():
                if not isinstance(k, str) or k.startswith("_"):
                    raise NetworkConfigError(f"{where}#{key}#{k}: a recorded network holds no components "
                                             f"(_target_ and other '_' keys)")
                check(v, f"{key}#{k}")
        elif isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                check(v, f"{key}#{i}")
        elif value is not None and not isinstance(value, (bool, int, float)):
            raise NetworkConfigError(f"{where}#{key} is a {type(value).__name__}: a recorded network holds plain "
                                     f"values only (numbers, strings, lists, mappings)")

    for key, value in config.items():
        if key == "_target_":
            continue
        if not isinstance(key, str) or key.startswith("_"):
            raise NetworkConfigError(f"{where}#{key}: a recorded network holds no '_' keys besides _target_")
        check(value, key)


def build_network_from_config(config: Mapping[str, Any], **overrides: Any) -> nn.Module:
    """Builds a network from a recorded config (``_target_`` and arguments).

    Args:
        config: e.g. the ``network_def`` of a checkpoint.
        overrides: arguments that replace recorded ones, e.g. ``deep_supervision=False`` for inference (only
            passed when the class takes them).

    Raises:
        NetworkConfigError: an untrusted, unknown or non-network class, arguments that are not plain values, or
            arguments the class refuses.
    """
    if not isinstance(config, Mapping) or "_target_" not in config:
        raise NetworkConfigError("a network config needs a '_target_' naming the network class")
    check_plain_arguments(config)
    cls = resolve_network_class(config["_target_"])
    kwargs = {k: v for k, v in config.items() if not k.startswith("_")}
    try:
        accepted = inspect.signature(cls.__init__).parameters
        takes_any = any(p.kind is p.VAR_KEYWORD for p in accepted.values())
    except (TypeError, ValueError):
        accepted, takes_any = {}, True
    kwargs.update({k: v for k, v in overrides.items() if takes_any or k in accepted})
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise NetworkConfigError(f"cannot build {config['_target_']} from its recorded arguments: {e}") from e
