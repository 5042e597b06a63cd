"""Weight interchange between nnU-Net v2's ``PlainConvUNet`` and :class:`PlansDynUNet`, and between nnU-Net's
``ResidualEncoderUNet`` and ours (:class:`~monai_nnunet.networks.ResidualEncoderUNet`).

nnU-Net v2 saves ``checkpoint["network_weights"] = network.state_dict()``, whose keys are

- ``encoder.stages.{s}.0.convs.{c}.conv.{weight,bias}`` and ``....norm.{weight,bias}`` for encoder stage ``s``,
- ``decoder.transpconvs.{d}.{weight,bias}`` and ``decoder.stages.{d}.convs.{c}.{conv,norm}.*`` for decoder stage
  ``d`` (lowest resolution first),
- ``decoder.seg_layers.{d}.{weight,bias}``, one segmentation layer per decoder stage,

plus aliases of the same tensors (``....convs.{c}.all_modules.{0,1}.*`` and the whole encoder again under
``decoder.encoder.``). The convolution biases that precede instance normalisation are dropped on import (the norm
removes them exactly) and written as zeros on export. nnU-Net itself is never imported.

Our ``ResidualEncoderUNet`` registers its parameters under nnU-Net's canonical names
(``encoder.stem.convs.0.conv.*``, ``encoder.stages.{s}.blocks.{b}.{conv1,conv2,skip.N}.{conv,norm}.*``,
``decoder.{transpconvs,stages,seg_layers}.*``); interchange adds or drops nnU-Net's aliases of the same tensors
(``....all_modules.{0,1}.*`` beside every ``conv``/``norm``, the encoder again under ``decoder.encoder.``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

import torch

from monai_nnunet.networks.blocks import ConvDropoutNormAct
from monai_nnunet.networks.config import unwrapped_state_dict
from monai_nnunet.networks.plans_dynunet import PlansDynUNet
from monai_nnunet.networks.residual_encoder_unet import ResidualEncoderUNet

__all__ = ["NNUNET_COMPATIBLE_NETWORKS", "load_nnunet_weights", "monai_to_nnunet_state_dict",
           "nnunet_to_monai_state_dict"]

#: the networks whose weights convert to and from nnU-Net's (``PlainConvUNet``, ``ResidualEncoderUNet``)
NNUNET_COMPATIBLE_NETWORKS = (PlansDynUNet, ResidualEncoderUNet)

_CONV_ALIAS = re.compile(r"\.convs\.(\d+)\.conv\.")
_NORM_ALIAS = re.compile(r"\.convs\.(\d+)\.norm\.")


def nnunet_to_monai_state_dict(
    nnunet_state: Mapping[str, torch.Tensor], network: PlansDynUNet | ResidualEncoderUNet
) -> dict[str, torch.Tensor]:
    """Converts nnU-Net v2 ``PlainConvUNet`` (``ResidualEncoderUNet``) weights to a state dict that ``network``,
    a :class:`PlansDynUNet` (our ``ResidualEncoderUNet``), loads strictly.

    Args:
        nnunet_state: nnU-Net's ``network_weights`` (a whole nnU-Net checkpoint dict is accepted too). Keys may
            carry DDP's ``module.`` or ``torch.compile``'s ``_orig_mod.`` prefix.
        network: the target network, built from the same plans.

    Returns:
        A state dict with every key of ``network.state_dict()`` (aliases included), tensors copied.

    Raises:
        KeyError: when a weight the network needs is missing.
        ValueError: when the nnU-Net state has keys this layout does not explain (another architecture) or a
            tensor's shape differs from the network's.
    """
    source = unwrapped_state_dict(_network_weights(nnunet_state))
    if isinstance(network, ResidualEncoderUNet):
        return _resenc_from_nnunet(source, network)
    pairs = list(_key_pairs(network))
    dropped = set(_dropped_nnunet_keys(network))
    known = _with_nnunet_aliases({k: None for k in [theirs for _, theirs in pairs] + sorted(dropped)})
    unexpected = sorted(k for k in source if k not in known)
    if unexpected:
        raise ValueError(
            f"nnU-Net weights have {len(unexpected)} keys a PlainConvUNet for these plans does not have, "
            f"e.g. {unexpected[:5]} (another architecture or other plans?)."
        )
    missing = sorted(theirs for _, theirs in pairs if theirs not in source)
    if missing:
        raise KeyError(f"nnU-Net weights lack {len(missing)} keys, e.g. {missing[:5]}.")
    canonical = {ours: source[theirs].detach().clone() for ours, theirs in pairs}
    return _expand_to_network_aliases(canonical, network)


def monai_to_nnunet_state_dict(network: PlansDynUNet | ResidualEncoderUNet) -> dict[str, torch.Tensor]:
    """Writes a network's weights in nnU-Net v2's ``PlainConvUNet`` (``ResidualEncoderUNet``) layout.

    Args:
        network: a :class:`PlansDynUNet` or our ``ResidualEncoderUNet``.

    Returns:
        A state dict that nnU-Net's network (same plans, ``conv_bias`` as built) loads strictly, aliases included;
        for :class:`PlansDynUNet` the convolution biases before instance norm are zeros.
    """
    if isinstance(network, ResidualEncoderUNet):
        return _resenc_to_nnunet(network)
    ours = dict(network.named_parameters())
    canonical: dict[str, torch.Tensor | None] = {}
    for mine, theirs in _key_pairs(network):
        canonical[theirs] = ours[mine].detach().clone()
    for theirs in _dropped_nnunet_keys(network):
        weight = canonical[theirs[: -len("bias")] + "weight"]
        canonical[theirs] = torch.zeros(weight.shape[0], dtype=weight.dtype, device=weight.device)
    return _with_nnunet_aliases(canonical)  # aliases share tensors, as in nnU-Net's own state dict


def load_nnunet_weights(network: PlansDynUNet | ResidualEncoderUNet, nnunet_state: Mapping[str, torch.Tensor]
                        ) -> PlansDynUNet | ResidualEncoderUNet:
    """Loads nnU-Net v2 ``PlainConvUNet`` / ``ResidualEncoderUNet`` weights (or a whole nnU-Net checkpoint) into
    ``network`` in place.

    Args:
        network: a :class:`PlansDynUNet` (our ``ResidualEncoderUNet``) built from the plans the weights were
            trained with.
        nnunet_state: ``network_weights`` or the checkpoint dict holding it.

    Returns:
        ``network``, for chaining.

    Raises:
        KeyError, ValueError: see :func:`nnunet_to_monai_state_dict`.
    """
    network.load_state_dict(nnunet_to_monai_state_dict(nnunet_state, network), strict=True)
    return network


def _network_weights(state: Mapping[str, torch.Tensor]) -> Mapping[str, torch.Tensor]:
    inner = state.get("network_weights") if isinstance(state, Mapping) else None
    return inner if isinstance(inner, Mapping) else state


def _has_affine_norm(network: PlansDynUNet) -> bool:
    return getattr(network.input_block.norm1, "weight", None) is not None


def _key_pairs(network: PlansDynUNet) -> Iterator[tuple[str, str]]:
    """(our canonical key, nnU-Net canonical key) for every parameter of ``network``."""
    n = network.stage_plan.n_stages
    norm_params = ("weight", "bias") if _has_affine_norm(network) else ()
    encoder = ["input_block"] + [f"downsamples.{i}" for i in range(n - 2)] + ["bottleneck"]
    for s, mine in enumerate(encoder):
        theirs = f"encoder.stages.{s}.0.convs"
        yield from _conv_block_pairs(mine, theirs, norm_params)
    for d in range(n - 1):
        yield f"upsamples.{d}.transp_conv.conv.weight", f"decoder.transpconvs.{d}.weight"
        if network.trans_bias:
            yield f"upsamples.{d}.transp_conv.conv.bias", f"decoder.transpconvs.{d}.bias"
        yield from _conv_block_pairs(f"upsamples.{d}.conv_block", f"decoder.stages.{d}.convs", norm_params)
    heads = ["output_block"] + [f"deep_supervision_heads.{k}" for k in range(n - 2)]
    for level, mine in enumerate(heads):
        for p in ("weight", "bias"):
            yield f"{mine}.conv.conv.{p}", f"decoder.seg_layers.{n - 2 - level}.{p}"


def _conv_block_pairs(mine: str, theirs: str, norm_params: tuple[str, ...]) -> Iterator[tuple[str, str]]:
    for c in (0, 1):
        yield f"{mine}.conv{c + 1}.conv.weight", f"{theirs}.{c}.conv.weight"
        for p in norm_params:
            yield f"{mine}.norm{c + 1}.{p}", f"{theirs}.{c}.norm.{p}"


def _dropped_nnunet_keys(network: PlansDynUNet) -> Iterator[str]:
    """nnU-Net's convolution biases before instance norm (present when ``conv_bias``), which we do not carry."""
    if not network.trans_bias:
        return
    n = network.stage_plan.n_stages
    for s in range(n):
        for c in (0, 1):
            yield f"encoder.stages.{s}.0.convs.{c}.conv.bias"
    for d in range(n - 1):
        for c in (0, 1):
            yield f"decoder.stages.{d}.convs.{c}.conv.bias"


def _with_nnunet_aliases(canonical: Mapping[str, object]) -> dict[str, object]:
    """Adds nnU-Net's alias keys (``all_modules.{0,1}``, ``decoder.encoder.``) pointing at the same values."""
    out: dict[str, object] = {}
    for key, value in canonical.items():
        variants = {
            key,
            _CONV_ALIAS.sub(r".convs.\1.all_modules.0.", key),
            _NORM_ALIAS.sub(r".convs.\1.all_modules.1.", key),
        }
        for variant in sorted(variants):
            out[variant] = value
            if variant.startswith("encoder."):
                out["decoder." + variant] = value
    return out


def _expand_to_network_aliases(canonical: dict[str, torch.Tensor], network: PlansDynUNet) -> dict[str, torch.Tensor]:
    """Fills in every name under which ``network`` registers the same tensor (DynUNet's ``skip_layers.*``)."""
    names_by_tensor: dict[int, list[str]] = {}
    full_state = network.state_dict(keep_vars=True)
    for name, tensor in full_state.items():
        names_by_tensor.setdefault(id(tensor), []).append(name)
    out: dict[str, torch.Tensor] = {}
    for name, value in canonical.items():
        for alias in names_by_tensor[id(full_state[name])]:
            out[alias] = value
    return out


def _resenc_aliases(network: ResidualEncoderUNet) -> dict[str, list[str]]:
    """Our key -> nnU-Net's names of the same tensor (the key itself, ``all_modules.N``, ``decoder.encoder.``)."""
    aliases: dict[str, list[str]] = {key: [key] for key in network.state_dict()}
    for prefix, module in network.named_modules():
        if not isinstance(module, ConvDropoutNormAct):
            continue
        # nnU-Net's ConvDropoutNormReLU lists conv, dropout (when there is one), norm in ``all_modules``
        norm_index = 1 if isinstance(module.dropout, torch.nn.Identity) else 2
        for part, index in (("conv", 0), ("norm", norm_index)):
            for name, _ in getattr(module, part).state_dict().items():
                key = f"{prefix}.{part}.{name}"
                if key in aliases:
                    aliases[key].append(f"{prefix}.all_modules.{index}.{name}")
    for names in aliases.values():
        names.extend(["decoder." + n for n in names if n.startswith("encoder.")])
    return aliases


def _resenc_from_nnunet(source: Mapping[str, torch.Tensor], network: ResidualEncoderUNet) -> dict[str, torch.Tensor]:
    aliases = _resenc_aliases(network)
    known = {name for names in aliases.values() for name in names}
    unexpected = sorted(k for k in source if k not in known)
    if unexpected:
        raise ValueError(
            f"nnU-Net weights have {len(unexpected)} keys a ResidualEncoderUNet for these plans does not have, "
            f"e.g. {unexpected[:5]} (another architecture or other plans?)."
        )
    missing = sorted(k for k in aliases if k not in source)
    if missing:
        raise KeyError(f"nnU-Net weights lack {len(missing)} keys, e.g. {missing[:5]}.")
    own = network.state_dict()
    wrong = [f"{k}: {tuple(source[k].shape)} in the weights, {tuple(own[k].shape)} in the network"
             for k in own if tuple(source[k].shape) != tuple(own[k].shape)]
    if wrong:
        raise ValueError(f"nnU-Net weights differ in shape from the plans' ResidualEncoderUNet in {len(wrong)} "
                         f"tensors, e.g. {wrong[0]} (other plans?).")
    return {k: source[k].detach().clone() for k in own}


def _resenc_to_nnunet(network: ResidualEncoderUNet) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    own = network.state_dict()
    for key, names in _resenc_aliases(network).items():
        value = own[key].detach().clone()
        for name in names:
            out[name] = value  # aliases share one tensor, as in nnU-Net's own state dict
    return out
