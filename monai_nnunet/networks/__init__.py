"""Networks built from nnU-Net v2 plans.

- :func:`build_network`: plans configuration -> network (the default is :class:`PlansDynUNet`, MONAI's
  ``DynUNet`` configured as nnU-Net's ``PlainConvUNet``).
- :class:`ResidualEncoderUNet`: nnU-Net's residual-encoder U-Net (the ResEnc presets' plans).
- :mod:`monai_nnunet.networks.custom`: :class:`DynamicKiUNet` and :class:`DynamicUIUNet`, built from the same plans.
- :func:`load_nnunet_weights` / :func:`monai_to_nnunet_state_dict`: weight interchange with nnU-Net v2.
- :func:`set_deep_supervision`: the switch for inference.
- :func:`full_resolution_network`: the inference form (one full-resolution tensor, TorchScript-compatible), the
  ``network_def`` of exported bundles.
- :func:`network_config` / :func:`build_network_from_config`: a network as data (class and arguments), as
  checkpoints and exported bundles record it.
"""

from monai_nnunet.networks.builder import (
    build_network,
    default_network_class,
    plans_network_class,
    set_deep_supervision,
)
from monai_nnunet.networks.config import (
    NetworkConfigError,
    build_network_from_config,
    network_config,
    unwrap_network,
)
from monai_nnunet.networks.custom import DynamicKiUNet, DynamicUIUNet
from monai_nnunet.networks.full_resolution import full_resolution_network
from monai_nnunet.networks.initialization import init_weights_he
from monai_nnunet.networks.nnunet_weights import (
    load_nnunet_weights,
    monai_to_nnunet_state_dict,
    nnunet_to_monai_state_dict,
)
from monai_nnunet.networks.plans_architecture import ArchitecturePlan, read_architecture
from monai_nnunet.networks.plans_dynunet import PlansDynUNet
from monai_nnunet.networks.residual_encoder_unet import ResidualEncoderUNet
from monai_nnunet.networks.shallow_unet import ShallowPlainUNet

__all__ = [
    "ArchitecturePlan",
    "NetworkConfigError",
    "build_network_from_config",
    "network_config",
    "unwrap_network",
    "DynamicKiUNet",
    "DynamicUIUNet",
    "PlansDynUNet",
    "ResidualEncoderUNet",
    "ShallowPlainUNet",
    "build_network",
    "default_network_class",
    "full_resolution_network",
    "init_weights_he",
    "load_nnunet_weights",
    "monai_to_nnunet_state_dict",
    "nnunet_to_monai_state_dict",
    "plans_network_class",
    "read_architecture",
    "set_deep_supervision",
]
