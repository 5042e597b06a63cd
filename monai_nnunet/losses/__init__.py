"""nnU-Net v2's losses as MONAI-style losses (``torch.nn.modules.loss._Loss`` subclasses).

Every class here works on logits (B, C, H, W[, D]) and integer label maps (B, 1, H, W[, D]) or
(B, H, W[, D]), in 2D and 3D, and can be named in a bundle config as
``_target_: monai_nnunet.losses.NAME``.
"""

from monai_nnunet.losses._maps import boundary_regions, label_blobs
from monai_nnunet.losses._utils import set_value_checks
from monai_nnunet.losses.blob_dice import BlobDiceLoss
from monai_nnunet.losses.compound import (
    DC_and_BCE_loss,
    DC_and_Blob_CE_loss,
    DC_and_CE_loss,
    DC_and_Region_CE_loss,
    RobustCrossEntropyLoss,
)
from monai_nnunet.losses.deep_supervision import DeepSupervisionWrapper, deep_supervision_weights
from monai_nnunet.losses.dice import SoftDiceLoss
from monai_nnunet.losses.region_dice import RegionDiceLoss

__all__ = [
    "SoftDiceLoss",
    "RobustCrossEntropyLoss",
    "DC_and_CE_loss",
    "DC_and_BCE_loss",
    "DeepSupervisionWrapper",
    "deep_supervision_weights",
    "BlobDiceLoss",
    "DC_and_Blob_CE_loss",
    "RegionDiceLoss",
    "DC_and_Region_CE_loss",
    "label_blobs",
    "boundary_regions",
    "set_value_checks",
]
