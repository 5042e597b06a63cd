"""The inference form of a network: deep supervision off and a ``forward`` that returns the full-resolution logits
only, as one tensor, in TorchScript-compatible code (``torch.jit.script``, MONAI's ``ckpt_export``, ONNX).

Every architecture of this package defines ``forward_full_resolution(x) -> Tensor``; :func:`full_resolution_network`
gives the network a class whose ``forward`` is that method. The modules, their names and so the state-dict keys stay
the network's own, so a bundle's ``models/model.pt`` loads into either form.
"""

from __future__ import annotations

import sys

from torch import nn

from monai_nnunet.networks.builder import set_deep_supervision

__all__ = ["full_resolution_network", "has_full_resolution_form"]

_VARIANTS: dict[type, type] = {}


def has_full_resolution_form(network: nn.Module) -> bool:
    """Whether the network's class defines ``forward_full_resolution``."""
    return callable(getattr(type(network), "forward_full_resolution", None))


def _variant(cls: type) -> type:
    if cls not in _VARIANTS:
        # TorchScript compiles properties too; the networks' Python-side switches are not its business
        unused = list(getattr(cls, "__jit_unused_properties__", [])) + [
            name for name in dir(cls) if isinstance(getattr(cls, name, None), property)]
        variant = type(f"{cls.__name__}FullResolution", (cls,), {
            "forward": cls.forward_full_resolution, "__module__": cls.__module__,
            "__qualname__": f"{cls.__qualname__}FullResolution",
            "__jit_unused_properties__": sorted(set(unused)),
            "__full_resolution_of__": cls,  # network_config records the class the weights belong to
            "__doc__": f"{cls.__name__} returning its full-resolution logits only (inference, TorchScript)."})
        module = sys.modules.get(cls.__module__)
        if module is not None and "." not in cls.__qualname__:
            setattr(module, variant.__name__, variant)  # importable by name: deepcopy, pickling, TorchScript
        _VARIANTS[cls] = variant
    return _VARIANTS[cls]


def full_resolution_network(network: nn.Module) -> nn.Module:
    """``network`` (changed in place and returned) in its inference form: deep supervision off; when its class
    defines ``forward_full_resolution``, ``forward`` is that method (one tensor ``(B, num_classes, *spatial)``).

    Args:
        network: a network of this package, or any other (then only deep supervision is switched off).

    Returns:
        the same module object.
    """
    try:
        set_deep_supervision(network, False)
    except AttributeError:  # a network of another package without the switch
        pass
    if has_full_resolution_form(network) and type(network) not in _VARIANTS.values():
        network.__class__ = _variant(type(network))
    return network
