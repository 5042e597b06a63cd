"""The built-in trainer configs (``-tr nnUNetTrainer | kiunet | uiunet | blob_dice | region_dice | ..._minimal``).

Classes are named by reference strings, imported when a network or loss is built, so that importing the registry
does not import MONAI, the networks or the losses.
"""

from __future__ import annotations

from monai_nnunet.training.configs.trainer_config import TrainerConfig

__all__ = ["builtin_trainer_configs"]

KIUNET = "monai_nnunet.networks.custom:DynamicKiUNet"
UIUNET = "monai_nnunet.networks.custom:DynamicUIUNet"
BLOB_LOSS = "monai_nnunet.losses:DC_and_Blob_CE_loss"
REGION_LOSS = "monai_nnunet.losses:DC_and_Region_CE_loss"

#: Batch size of the ``_minimal`` variants (their networks are also half as wide as the plans say).
MINIMAL_BATCH_SIZE = 2


def builtin_trainer_configs() -> dict[str, TrainerConfig]:
    """Fresh instances of the built-in configs, by ``-tr`` name.

    Returns:
        ``nnUNetTrainer`` (plain U-Net, Dice + CE: nnU-Net's default), ``kiunet`` and ``uiunet`` (the custom
        architectures with the default loss), ``kiunet_minimal`` and ``uiunet_minimal`` (slimmer networks and
        batch size 2, for GPUs with little memory), ``blob_dice`` and ``region_dice`` (plain U-Net with the
        instance-aware and region-weighted Dice + CE losses).
    """
    return {
        "nnUNetTrainer": TrainerConfig(description="nnU-Net's default: plain U-Net from the plans, Dice + CE"),
        "kiunet": TrainerConfig(
            architecture=KIUNET,
            architecture_kwargs={"pool_type": "max"},
            description="KiU-Net (U-Net + overcomplete Ki-Net branch, cross-residual fusion), Dice + CE",
        ),
        "kiunet_minimal": TrainerConfig(
            architecture=KIUNET,
            architecture_kwargs={"pool_type": "max", "features_scale": 0.5, "kinet_features_per_stage": 8},
            batch_size=MINIMAL_BATCH_SIZE,
            description="KiU-Net at half width with an 8-channel Ki-Net branch, batch size 2, for small GPUs",
        ),
        "uiunet": TrainerConfig(
            architecture=UIUNET,
            description="UIU-Net (residual U-blocks in a U-Net, cross-attention fusion, fused side outputs), Dice + CE",
        ),
        "uiunet_minimal": TrainerConfig(
            architecture=UIUNET,
            architecture_kwargs={"features_scale": 0.5},
            batch_size=MINIMAL_BATCH_SIZE,
            description="UIU-Net at half width, batch size 2, for small GPUs",
        ),
        "blob_dice": TrainerConfig(
            loss=BLOB_LOSS,
            description="plain U-Net, Dice + CE + blob (per connected component) Dice",
        ),
        "region_dice": TrainerConfig(
            loss=REGION_LOSS,
            description="plain U-Net, Dice + CE + region-weighted Dice (boundary band and interior)",
        ),
    }
