"""Pretrained weights for fine-tuning (``nnUNetv2_train ... -pretrained_weights CHECKPOINT``).

Every weight of the checkpoint is loaded except the segmentation heads, which depend on the number of classes of
the dataset the weights were trained on; the heads keep their fresh initialisation. Every other layer must match in
name and shape (the network is built from plans moved with ``nnUNetv2_move_plans_between_datasets``), otherwise the
error names the layers that differ. As nnU-Net's ``load_pretrained_weights``.

Accepted: checkpoints of this package (our network's state dict in ``network_weights``) and nnU-Net v2 checkpoints of
a ``PlainConvUNet`` (converted with the weight mapping of :mod:`monai_nnunet.networks.nnunet_weights`), as files or
dicts, whole checkpoints or bare state dicts, with DDP (``module.``) or ``torch.compile`` (``_orig_mod.``) prefixes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from monai_nnunet.networks.config import unwrap_network, unwrapped_state_dict
from monai_nnunet.utils.checkpoints import CheckpointError, load_checkpoint

__all__ = ["SEGMENTATION_HEAD_PATTERN", "PretrainedWeightsError", "load_pretrained_weights"]

#: Parameter names of segmentation heads in the networks of this package and in nnU-Net's: PlansDynUNet
#: (``output_block``, ``deep_supervision_heads``, DynUNet's ``super_head`` aliases), DynamicKiUNet (``seg_heads``),
#: DynamicUIUNet (``side_heads``, ``side_fusion``), nnU-Net (``decoder.seg_layers``).
SEGMENTATION_HEAD_PATTERN = re.compile(
    r"(^|\.)(output_block|deep_supervision_heads|super_head|seg_heads|seg_layers|side_heads|side_fusion)\."
)

class PretrainedWeightsError(ValueError):
    """Pretrained weights do not fit the network (other plans or architecture)."""


def _read(checkpoint: str | os.PathLike | Mapping[str, Any]) -> tuple[dict[str, torch.Tensor], str]:
    if isinstance(checkpoint, Mapping):
        source = "the given checkpoint"
        state = checkpoint
    else:
        path = Path(checkpoint)
        source = str(path)
        if not path.is_file():
            raise FileNotFoundError(f"pretrained weights {path} do not exist")
        try:
            state = load_checkpoint(path, required_keys=())
        except CheckpointError as e:
            raise PretrainedWeightsError(f"-pretrained_weights: {e}") from None
    weights = state.get("network_weights", state) if isinstance(state, Mapping) else None
    if not isinstance(weights, Mapping) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        raise PretrainedWeightsError(f"{source} holds no network weights (a checkpoint or a state dict)")
    return unwrapped_state_dict(weights), source


def _nnunet_layout(keys) -> bool:
    return any(k.startswith("encoder.stages.") for k in keys)


def load_pretrained_weights(
    network: nn.Module,
    checkpoint: str | os.PathLike | Mapping[str, Any],
    head_pattern: re.Pattern | str | None = None,
    verbose: bool = False,
) -> list[str]:
    """Loads every weight but the segmentation heads into ``network``, in place.

    Args:
        network: the network to fine-tune (possibly wrapped in DDP or compiled), built from the moved plans.
        checkpoint: a checkpoint file or dict (ours or nnU-Net v2's), or a bare state dict.
        head_pattern: regular expression (searched in parameter names) of the layers not to load; default
            :data:`SEGMENTATION_HEAD_PATTERN`.
        verbose: print the loaded and skipped layer names.

    Returns:
        The names of the parameters and buffers that were loaded.

    Raises:
        FileNotFoundError: the checkpoint file does not exist.
        PretrainedWeightsError: a non-head layer is missing from the checkpoint or differs in shape (the message
            names the layers), or the checkpoint holds no weights.
    """
    pattern = SEGMENTATION_HEAD_PATTERN if head_pattern is None else re.compile(head_pattern)
    target = unwrap_network(network)
    state, source = _read(checkpoint)
    own = target.state_dict()
    if _nnunet_layout(state) and not _nnunet_layout(own):
        state = _nnunet_to_ours(state, target, pattern, source)
    body = [k for k in own if not pattern.search(k)]
    missing = [k for k in body if k not in state]
    wrong = [f"{k} {tuple(state[k].shape)} in the checkpoint vs {tuple(own[k].shape)} in the network"
             for k in body if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or wrong:
        parts = []
        if wrong:
            parts.append(f"{len(wrong)} layer(s) differ in shape: " + "; ".join(wrong[:5]))
        if missing:
            parts.append(f"{len(missing)} layer(s) are not in the checkpoint: {', '.join(missing[:5])}")
        raise PretrainedWeightsError(
            f"pretrained weights {source} do not fit {type(target).__name__}: " + ". ".join(parts)
            + ". Build the network from the plans moved from the pretraining dataset "
              "(nnUNetv2_move_plans_between_datasets) with the same -tr."
        )
    update = {k: state[k] for k in body}
    merged = {**own, **update}
    target.load_state_dict(merged)
    if verbose:
        skipped = [k for k in own if k not in update]
        print(f"loaded {len(update)} pretrained tensors from {source}; kept fresh: {', '.join(skipped)}")
    return list(update)


def _nnunet_to_ours(state: dict[str, torch.Tensor], network: nn.Module, pattern: re.Pattern, source: str
                    ) -> dict[str, torch.Tensor]:
    """nnU-Net PlainConvUNet weights -> our layout, the heads replaced by the network's own (they are not loaded)."""
    from monai_nnunet.networks.nnunet_weights import monai_to_nnunet_state_dict, nnunet_to_monai_state_dict
    from monai_nnunet.networks.plans_dynunet import PlansDynUNet

    if not isinstance(network, PlansDynUNet):
        raise PretrainedWeightsError(f"{source} holds nnU-Net PlainConvUNet weights; they load into the plans' "
                                     f"default network only, not into {type(network).__name__}")
    own_as_nnunet = monai_to_nnunet_state_dict(network)
    patched = {k: (own_as_nnunet[k] if pattern.search(k) and k in own_as_nnunet else v) for k, v in state.items()}
    try:
        converted = nnunet_to_monai_state_dict(patched, network)
    except (KeyError, ValueError) as e:
        raise PretrainedWeightsError(f"pretrained weights {source} do not fit the plans' network: {e}") from e
    own = network.state_dict()
    wrong = [f"{k} {tuple(v.shape)} in the checkpoint vs {tuple(own[k].shape)} in the network"
             for k, v in converted.items() if k in own and tuple(v.shape) != tuple(own[k].shape)]
    if wrong:
        raise PretrainedWeightsError(f"pretrained weights {source} do not fit {type(network).__name__}: "
                                     f"{len(wrong)} layer(s) differ in shape: " + "; ".join(wrong[:5]))
    return converted
