"""Checkpoints that nnU-Net v2 loads: the keys its predictor reads, the weights in its network's layout.

nnU-Net's ``nnUNetPredictor.initialize_from_trained_model_folder`` reads ``trainer_name``,
``init_args["configuration"]``, ``inference_allowed_mirroring_axes`` and ``network_weights`` (loaded strictly into
the network its trainer class builds from the plans). Our checkpoints hold our network's state dict and record the
configuration under ``init``/``configuration``; :func:`nnunet_loadable_checkpoint` adds ``init_args`` and writes the
weights of a plain U-Net (:class:`~monai_nnunet.networks.plans_dynunet.PlansDynUNet`) or a residual-encoder U-Net
(:class:`~monai_nnunet.networks.residual_encoder_unet.ResidualEncoderUNet`) in nnU-Net's layout, alias keys
included (nnU-Net loads strictly). Every other key is kept, so the result is a superset of nnU-Net's checkpoint that our own model loading reads as well
(nnU-Net-layout weights are converted back on load, exactly).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from monai_nnunet.dataset.dataset_json import DatasetDescription
from monai_nnunet.inference.model_loading import network_from_checkpoint, weights_in_network_layout
from monai_nnunet.networks.config import unwrap_network, unwrapped_state_dict
from monai_nnunet.networks.nnunet_weights import monai_to_nnunet_state_dict
from monai_nnunet.networks.plans_dynunet import PlansDynUNet
from monai_nnunet.networks.residual_encoder_unet import ResidualEncoderUNet
from monai_nnunet.planning.plans import PlansManager

__all__ = ["is_nnunet_layout", "nnunet_loadable_checkpoint"]


def is_nnunet_layout(weights: Mapping[str, Any]) -> bool:
    """Whether a state dict is one nnU-Net's networks load strictly: nnU-Net's keys with its alias keys
    (``....all_modules.N.*``). Our ``ResidualEncoderUNet`` shares nnU-Net's parameter names but not the aliases."""
    keys = list(unwrapped_state_dict(weights))
    return any(".all_modules." in k for k in keys) and any(k.startswith("decoder.seg_layers.") for k in keys)


def nnunet_loadable_checkpoint(checkpoint: Mapping[str, Any], plans: Mapping[str, Any], dataset_json: Mapping[str, Any],
                               configuration: str, fold: int | str, source: str = "checkpoint"
                               ) -> tuple[dict[str, Any], bool]:
    """A checkpoint nnU-Net v2's predictor loads, with every key of ``checkpoint`` kept.

    Args:
        checkpoint: our checkpoint (or nnU-Net's, returned with ``init_args`` completed).
        plans: the model folder's plans.
        dataset_json: the model folder's dataset.json.
        configuration: the configuration name (written to ``init_args``).
        fold: the fold (written to ``init_args``).
        source: named in error messages.

    Returns:
        ``(checkpoint, converted)``: ``converted`` is ``False`` when the network has no nnU-Net layout (neither a
        plain nor a residual-encoder U-Net); its weights then stay ours, which nnU-Net cannot load but this package can.

    Raises:
        ModelLoadingError: when the weights do not fit the plans' network.
    """
    out = dict(checkpoint)
    init_args = dict(out.get("init_args") or {})
    init_args.setdefault("plans", dict(plans))
    init_args.setdefault("configuration", configuration)
    init_args.setdefault("fold", fold)
    init_args.setdefault("dataset_json", dict(dataset_json))
    init_args.setdefault("device", "cpu")
    out["init_args"] = init_args
    out.setdefault("trainer_name", "nnUNetTrainer")
    if is_nnunet_layout(out["network_weights"]):
        return out, True
    config = PlansManager(dict(plans)).get_configuration(configuration)
    dataset = DatasetDescription(dict(dataset_json))
    network = network_from_checkpoint(out, config, dataset.num_channels, dataset.num_segmentation_heads)
    network.load_state_dict(weights_in_network_layout(out["network_weights"], network, source))
    network = unwrap_network(network)
    if not isinstance(network, (PlansDynUNet, ResidualEncoderUNet)):
        return out, False
    out["network_weights"] = monai_to_nnunet_state_dict(network)
    return out, True
