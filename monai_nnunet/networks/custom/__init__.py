"""Custom architectures built from an nnU-Net plans ``architecture`` block: KiU-Net and UIU-Net.

Both take the plans' ``arch_kwargs`` plus ``input_channels``, ``num_classes`` and ``deep_supervision`` (nnU-Net's
``PlainConvUNet`` signature), run in 2D and 3D, and return nnU-Net's deep-supervision list in training mode.
"""

from monai_nnunet.networks.custom.crfb import CrossResidualFusion
from monai_nnunet.networks.custom.ica_fusion import InteractiveCrossAttentionFusion
from monai_nnunet.networks.custom.kiunet import DynamicKiUNet, kinet_scales
from monai_nnunet.networks.custom.rsu import DilatedResidualUBlock, ResidualUBlock
from monai_nnunet.networks.custom.uiunet import DynamicUIUNet

__all__ = [
    "CrossResidualFusion",
    "DilatedResidualUBlock",
    "DynamicKiUNet",
    "DynamicUIUNet",
    "InteractiveCrossAttentionFusion",
    "ResidualUBlock",
    "kinet_scales",
]
