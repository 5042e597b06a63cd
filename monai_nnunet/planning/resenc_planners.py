"""nnU-Net v2's residual-encoder planners: ``ResEncUNetPlanner`` and the presets ``nnUNetPlannerResEncM``, ``-L``
and ``-XL``.

They follow ``nnunetv2.experiment_planning.experiment_planners.residual_unets.residual_encoder_unet_planners``
rule for rule: the plans name nnU-Net's ``ResidualEncoderUNet`` (``n_blocks_per_stage`` 1, 3, 4, 6, 6, ... residual
blocks per encoder stage, one convolution per decoder stage), the memory estimate is that network's feature-map
size, the patch shrinks while the estimate exceeds the reference (no batch-size-2 correction, unlike the plain
planner) and the presets fit the reference to 8, 24 and 40 GB with no cap on the share of the dataset one batch
covers. 2d and 3d_fullres keep the data identifiers ``nnUNetPlans_2d`` / ``nnUNetPlans_3d_fullres``, so the
preprocessed data of the plain plans is reused. ``monai_nnunet.networks.ResidualEncoderUNet`` builds the network.
"""

from __future__ import annotations

import warnings
from typing import Sequence

from monai_nnunet.dataset.dataset_json import DatasetDescription
from monai_nnunet.planning.planner import ExperimentPlanner
from monai_nnunet.planning.plans import unet_architecture
from monai_nnunet.planning.topology import estimate_resenc_feature_map_size

__all__ = ["RESENC_PRESETS", "ResEncUNetPlanner", "nnUNetPlannerResEncL", "nnUNetPlannerResEncM",
           "nnUNetPlannerResEncXL"]

RESIDUAL_ENCODER_UNET = "dynamic_network_architectures.architectures.unet.ResidualEncoderUNet"


class ResEncUNetPlanner(ExperimentPlanner):
    """Plans for nnU-Net's ``ResidualEncoderUNet`` at the plain planner's memory target (default 8 GB).

    Args: as :class:`~monai_nnunet.planning.ExperimentPlanner`; ``plans_name`` defaults to
    :attr:`default_plans_name` and ``gpu_memory_target_in_gb`` to :attr:`default_gpu_memory_target_in_gb`.
    """

    default_plans_name = "nnUNetResEncUNetPlans"
    default_gpu_memory_target_in_gb: float = 8
    network_class_name = RESIDUAL_ENCODER_UNET
    # nnU-Net: "really arbitrary and were set to reproduce default nnU-Net's configurations as much as possible"
    UNet_reference_val_3d = 680000000
    UNet_reference_val_2d = 135000000
    UNet_blocks_per_stage_encoder = (1, 3, 4, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6)
    UNet_blocks_per_stage_decoder = (1,) * 12

    def __init__(
        self,
        fingerprint: dict,
        dataset: DatasetDescription,
        dataset_name: str,
        plans_name: str | None = None,
        gpu_memory_target_in_gb: float | None = None,
        overwrite_target_spacing: Sequence[float] | None = None,
        suppress_transpose: bool = False,
        image_reader_writer: str = "SimpleITKIO",
    ):
        if gpu_memory_target_in_gb is None:
            gpu_memory_target_in_gb = self.default_gpu_memory_target_in_gb
        elif type(self) is not ResEncUNetPlanner and gpu_memory_target_in_gb != self.default_gpu_memory_target_in_gb:
            warnings.warn(f"{type(self).__name__} runs with gpu_memory_target_in_gb={gpu_memory_target_in_gb}, not "
                          f"its preset's {self.default_gpu_memory_target_in_gb:g}; use -overwrite_plans_name so the "
                          "plans do not pass for the preset's", stacklevel=2)
        super().__init__(fingerprint, dataset, dataset_name, plans_name or self.default_plans_name,
                         gpu_memory_target_in_gb, overwrite_target_spacing, suppress_transpose, image_reader_writer)

    def generate_data_identifier(self, configuration_name: str) -> str:
        """``nnUNetPlans_2d`` / ``nnUNetPlans_3d_fullres`` (the plain plans' data, reused), else
        ``{plans_name}_{configuration}``."""
        if configuration_name in ("2d", "3d_fullres"):
            return f"nnUNetPlans_{configuration_name}"
        return f"{self.plans_identifier}_{configuration_name}"

    def _architecture(self, dim: int, num_stages: int, kernel_sizes, strides, max_num_features: int) -> dict:
        return unet_architecture(
            self.network_class_name, dim, self._features_per_stage(num_stages, max_num_features), kernel_sizes,
            strides, self.UNet_blocks_per_stage_encoder[:num_stages],
            self.UNet_blocks_per_stage_decoder[: num_stages - 1], per_stage_key="n_blocks_per_stage",
        )

    def _estimate(self, patch_size, architecture: dict) -> int:
        kw = architecture["arch_kwargs"]
        return estimate_resenc_feature_map_size(
            patch_size, kw["features_per_stage"], kw["strides"], kw["n_blocks_per_stage"],
            kw["n_conv_per_stage_decoder"], len(self.dataset.raw["labels"]),
        )

    def _exceeds_reference(self, estimate: float, reference: float, ref_bs: int) -> bool:
        return estimate > reference


class nnUNetPlannerResEncM(ResEncUNetPlanner):  # noqa: N801 (nnU-Net's name)
    """ResEnc preset M: ~9-11 GB of GPU memory (RTX 2080 Ti, older Titans); plans ``nnUNetResEncUNetMPlans``."""

    default_plans_name = "nnUNetResEncUNetMPlans"
    default_gpu_memory_target_in_gb = 8
    UNet_reference_val_corresp_GB = 8
    UNet_reference_val_3d = 680000000
    UNet_reference_val_2d = 135000000
    max_dataset_covered = 1


class nnUNetPlannerResEncL(ResEncUNetPlanner):  # noqa: N801
    """ResEnc preset L: ~24 GB (RTX 4090, RTX 3090, Titan RTX, Quadro 6000); plans ``nnUNetResEncUNetLPlans``."""

    default_plans_name = "nnUNetResEncUNetLPlans"
    default_gpu_memory_target_in_gb = 24
    UNet_reference_val_corresp_GB = 24
    UNet_reference_val_3d = 2100000000
    UNet_reference_val_2d = 380000000
    max_dataset_covered = 1


class nnUNetPlannerResEncXL(ResEncUNetPlanner):  # noqa: N801
    """ResEnc preset XL: ~40 GB (A100 40GB, RTX 6000 Ada); plans ``nnUNetResEncUNetXLPlans``."""

    default_plans_name = "nnUNetResEncUNetXLPlans"
    default_gpu_memory_target_in_gb = 40
    UNet_reference_val_corresp_GB = 40
    UNet_reference_val_3d = 3600000000
    UNet_reference_val_2d = 560000000
    max_dataset_covered = 1


#: the planners by the names ``-pl`` takes
RESENC_PRESETS = {cls.__name__: cls for cls in (ResEncUNetPlanner, nnUNetPlannerResEncM, nnUNetPlannerResEncL,
                                                nnUNetPlannerResEncXL)}
