"""nnU-Net v2's default experiment planner: fingerprint -> plans (2d, 3d_fullres, and 3d_lowres/cascade when needed).

Target spacing, transposition, patch size, network topology, batch size and normalisation follow
``nnunetv2.experiment_planning.experiment_planners.default_experiment_planner.ExperimentPlanner`` rule for rule,
with the same constants, so the plans (and therefore networks and weights) equal nnU-Net's. The plans name
nnU-Net's network class (``PlainConvUNet``); ``monai_nnunet.networks`` builds MONAI's DynUNet from it.
"""

from __future__ import annotations

from copy import deepcopy
from typing import Sequence

import numpy as np

from monai_nnunet.dataset.dataset_json import DatasetDescription
from monai_nnunet.planning.plans import unet_architecture
from monai_nnunet.planning.topology import estimate_feature_map_size, get_pool_and_conv_props
from monai_nnunet.preprocessing.normalization import scheme_for_channel_name
from monai_nnunet.preprocessing.resampling import ANISO_THRESHOLD, compute_new_shape

__all__ = ["ANISO_THRESHOLD", "ExperimentPlanner", "compute_new_shape", "merge_with_existing_plans"]


class ExperimentPlanner:
    """Plans the configurations of a dataset from its fingerprint.

    Args:
        fingerprint: content of ``dataset_fingerprint.json``.
        dataset: the parsed ``dataset.json``.
        dataset_name: ``DatasetXXX_Name``.
        plans_name: the plans identifier (``nnUNetPlans``); data identifiers are ``{plans_name}_{config}``.
        gpu_memory_target_in_gb: memory budget the patch and batch size are fitted to (nnU-Net's default 8).
        overwrite_target_spacing: fixed 3d_fullres target spacing (z, y, x order of the raw data), or None.
        suppress_transpose: keep the axes in their stored order.
        image_reader_writer: name written into the plans for nnU-Net's reader registry.
    """

    UNet_base_num_features = 32
    UNet_reference_val_3d = 560000000
    UNet_reference_val_2d = 85000000
    UNet_reference_val_corresp_GB = 8
    UNet_reference_val_corresp_bs_2d = 12
    UNet_reference_val_corresp_bs_3d = 2
    UNet_featuremap_min_edge_length = 4
    UNet_blocks_per_stage_encoder = (2,) * 14
    UNet_blocks_per_stage_decoder = (2,) * 13
    UNet_min_batch_size = 2
    UNet_max_features_2d = 512
    UNet_max_features_3d = 320
    max_dataset_covered = 0.05
    lowres_creation_threshold = 0.25
    network_class_name = "dynamic_network_architectures.architectures.unet.PlainConvUNet"
    preprocessor_name = "DefaultPreprocessor"
    default_plans_name = "nnUNetPlans"  # when -overwrite_plans_name is not given
    default_gpu_memory_target_in_gb: float = 8  # when -gpu_memory_target is not given

    def __init__(
        self,
        fingerprint: dict,
        dataset: DatasetDescription,
        dataset_name: str,
        plans_name: str = "nnUNetPlans",
        gpu_memory_target_in_gb: float = 8,
        overwrite_target_spacing: Sequence[float] | None = None,
        suppress_transpose: bool = False,
        image_reader_writer: str = "SimpleITKIO",
    ):
        self.fingerprint = fingerprint
        self.dataset = dataset
        self.dataset_name = dataset_name
        self.plans_identifier = plans_name
        self.gpu_memory_target_in_gb = float(gpu_memory_target_in_gb)
        if self.gpu_memory_target_in_gb <= 0:
            raise ValueError(f"gpu_memory_target_in_gb must be positive, got {gpu_memory_target_in_gb}")
        if overwrite_target_spacing is not None:
            overwrite_target_spacing = [float(s) for s in overwrite_target_spacing]
            if len(overwrite_target_spacing) != 3 or min(overwrite_target_spacing) <= 0:
                raise ValueError(f"overwrite_target_spacing needs three positive values, got {overwrite_target_spacing}")
        self.overwrite_target_spacing = overwrite_target_spacing
        self.suppress_transpose = suppress_transpose
        self.image_reader_writer = image_reader_writer
        if not fingerprint.get("spacings"):
            raise ValueError(f"the fingerprint of {dataset_name} lists no cases")

    # ----------------------------------------------------------------------------------------------- spacing
    def determine_fullres_target_spacing(self) -> np.ndarray:
        """Median spacing; for strongly anisotropic data the low-resolution axis uses its 10th percentile."""
        if self.overwrite_target_spacing is not None:
            return np.array(self.overwrite_target_spacing)
        spacings = np.vstack(self.fingerprint["spacings"])
        sizes = self.fingerprint["shapes_after_crop"]
        target = np.percentile(spacings, 50, 0)
        target_size = np.percentile(np.vstack(sizes), 50, 0)
        worst_spacing_axis = int(np.argmax(target))
        other_axes = [i for i in range(len(target)) if i != worst_spacing_axis]
        other_spacings = [target[i] for i in other_axes]
        other_sizes = [target_size[i] for i in other_axes]
        has_aniso_spacing = target[worst_spacing_axis] > (ANISO_THRESHOLD * max(other_spacings))
        has_aniso_voxels = target_size[worst_spacing_axis] * ANISO_THRESHOLD < min(other_sizes)
        if has_aniso_spacing and has_aniso_voxels:
            target_spacing_of_that_axis = np.percentile(spacings[:, worst_spacing_axis], 10)
            if target_spacing_of_that_axis < max(other_spacings):
                target_spacing_of_that_axis = max(max(other_spacings), target_spacing_of_that_axis) + 1e-5
            target[worst_spacing_axis] = target_spacing_of_that_axis
        return target

    def determine_transpose(self) -> tuple[list[int], list[int]]:
        """Puts the axis with the coarsest target spacing first (2d then slices along it)."""
        if self.suppress_transpose:
            return [0, 1, 2], [0, 1, 2]
        target_spacing = self.determine_fullres_target_spacing()
        max_spacing_axis = int(np.argmax(target_spacing))
        remaining = [i for i in range(3) if i != max_spacing_axis]
        forward = [max_spacing_axis] + remaining
        backward = [int(np.argwhere(np.array(forward) == i)[0][0]) for i in range(3)]
        return forward, backward

    def determine_normalization_scheme_and_whether_mask_is_used_for_norm(self) -> tuple[list[str], list[bool]]:
        schemes = [scheme_for_channel_name(n) for n in self.dataset.channel_names.values()]
        if self.fingerprint["median_relative_size_after_cropping"] < (3 / 4.0):
            use_mask = [s.masks_outside_to_zero for s in schemes]
        else:
            use_mask = [False] * len(schemes)
        return [s.name for s in schemes], use_mask

    # ------------------------------------------------------------------------------------------ configuration
    def _features_per_stage(self, num_stages: int, max_num_features: int) -> tuple[int, ...]:
        return tuple(min(max_num_features, self.UNet_base_num_features * 2**i) for i in range(num_stages))

    def _architecture(self, dim: int, num_stages: int, kernel_sizes, strides, max_num_features: int) -> dict:
        return unet_architecture(
            self.network_class_name, dim, self._features_per_stage(num_stages, max_num_features), kernel_sizes,
            strides, self.UNet_blocks_per_stage_encoder[:num_stages], self.UNet_blocks_per_stage_decoder[: num_stages - 1],
        )

    def _estimate(self, patch_size, architecture: dict) -> int:
        kw = architecture["arch_kwargs"]
        # nnU-Net sizes the output layer by the number of entries in dataset.json's labels
        return estimate_feature_map_size(
            patch_size, kw["features_per_stage"], kw["strides"], kw["n_conv_per_stage"],
            kw["n_conv_per_stage_decoder"], len(self.dataset.raw["labels"]),
        )

    def _exceeds_reference(self, estimate: float, reference: float, ref_bs: int) -> bool:
        """Whether the patch must shrink: the estimate at batch size 2 exceeds the memory reference."""
        return (estimate / ref_bs * 2) > reference

    def get_plans_for_configuration(
        self, spacing, median_shape, data_identifier: str, approximate_n_voxels_dataset: float
    ) -> dict:
        """One configuration: patch size and topology fitted to the memory target, then the batch size."""
        spacing = np.asarray(spacing, dtype=np.float64)
        if not np.all(spacing > 0):
            raise ValueError(f"spacing must be > 0, got {spacing}")
        dim = len(spacing)
        max_num_features = self.UNet_max_features_2d if dim == 2 else self.UNet_max_features_3d
        tmp = 1 / spacing
        if dim == 3:
            initial_patch_size = [round(i) for i in tmp * (256**3 / np.prod(tmp)) ** (1 / 3)]
        else:
            initial_patch_size = [round(i) for i in tmp * (2048**2 / np.prod(tmp)) ** (1 / 2)]
        initial_patch_size = np.array([min(i, j) for i, j in zip(initial_patch_size, median_shape[:dim])])

        _, strides, kernel_sizes, patch_size, must_be_divisible_by = get_pool_and_conv_props(
            spacing, initial_patch_size, self.UNet_featuremap_min_edge_length, 999999
        )
        architecture = self._architecture(dim, len(strides), kernel_sizes, strides, max_num_features)
        estimate = self._estimate(patch_size, architecture)

        reference = (self.UNet_reference_val_2d if dim == 2 else self.UNet_reference_val_3d) * (
            self.gpu_memory_target_in_gb / self.UNet_reference_val_corresp_GB
        )
        ref_bs = self.UNet_reference_val_corresp_bs_2d if dim == 2 else self.UNet_reference_val_corresp_bs_3d
        while self._exceeds_reference(estimate, reference, ref_bs):
            # shrink the axis that is largest relative to the median shape, one divisibility step at a time
            axis = np.argsort([i / j for i, j in zip(patch_size, median_shape[:dim])])[-1]
            patch_size = list(patch_size)
            shrunk = deepcopy(patch_size)
            shrunk[axis] -= must_be_divisible_by[axis]
            _, _, _, _, must_be_divisible_by = get_pool_and_conv_props(
                spacing, shrunk, self.UNet_featuremap_min_edge_length, 999999
            )
            patch_size[axis] -= must_be_divisible_by[axis]
            _, strides, kernel_sizes, patch_size, must_be_divisible_by = get_pool_and_conv_props(
                spacing, patch_size, self.UNet_featuremap_min_edge_length, 999999
            )
            architecture = self._architecture(dim, len(strides), kernel_sizes, strides, max_num_features)
            estimate = self._estimate(patch_size, architecture)

        batch_size = round((reference / estimate) * ref_bs)
        bs_corresponding_to_5_percent = round(
            approximate_n_voxels_dataset * self.max_dataset_covered / np.prod(patch_size, dtype=np.float64)
        )
        batch_size = max(min(batch_size, bs_corresponding_to_5_percent), self.UNet_min_batch_size)

        normalization_schemes, use_mask = self.determine_normalization_scheme_and_whether_mask_is_used_for_norm()
        resampling = "resample_data_or_seg_to_shape"
        return {
            "data_identifier": data_identifier,
            "preprocessor_name": self.preprocessor_name,
            "batch_size": int(batch_size),
            "patch_size": [int(p) for p in patch_size],
            "median_image_size_in_voxels": [m.item() if hasattr(m, "item") else m for m in median_shape],
            "spacing": [float(s) for s in spacing],
            "normalization_schemes": normalization_schemes,
            "use_mask_for_norm": use_mask,
            "resampling_fn_data": resampling,
            "resampling_fn_seg": resampling,
            "resampling_fn_data_kwargs": {"is_seg": False, "order": 3, "order_z": 0, "force_separate_z": None},
            "resampling_fn_seg_kwargs": {"is_seg": True, "order": 1, "order_z": 0, "force_separate_z": None},
            "resampling_fn_probabilities": resampling,
            "resampling_fn_probabilities_kwargs": {"is_seg": False, "order": 1, "order_z": 0, "force_separate_z": None},
            "architecture": architecture,
        }

    def generate_data_identifier(self, configuration_name: str) -> str:
        return f"{self.plans_identifier}_{configuration_name}"

    def plan_experiment(self) -> dict:
        """Returns the plans dict (not written; see ``write_plans``)."""
        transpose_forward, transpose_backward = self.determine_transpose()
        fullres_spacing = self.determine_fullres_target_spacing()
        fullres_spacing_transposed = fullres_spacing[transpose_forward]
        new_shapes = [
            compute_new_shape(shape, spacing, fullres_spacing)
            for spacing, shape in zip(self.fingerprint["spacings"], self.fingerprint["shapes_after_crop"])
        ]
        new_median_shape = np.median(new_shapes, 0)
        new_median_shape_transposed = new_median_shape[transpose_forward]
        approximate_n_voxels_dataset = float(
            np.prod(new_median_shape_transposed, dtype=np.float64) * self.dataset.num_training
        )

        plan_3d_fullres = plan_3d_lowres = None
        if new_median_shape_transposed[0] != 1:  # 3d only for 3d data
            plan_3d_fullres = self.get_plans_for_configuration(
                fullres_spacing_transposed, new_median_shape_transposed,
                self.generate_data_identifier("3d_fullres"), approximate_n_voxels_dataset,
            )
            plan_3d_lowres = self._plan_lowres(plan_3d_fullres, new_median_shape_transposed)
            plan_3d_fullres["batch_dice"] = plan_3d_lowres is not None
            if plan_3d_lowres is not None:
                plan_3d_lowres["batch_dice"] = False

        plan_2d = self.get_plans_for_configuration(
            fullres_spacing_transposed[1:], new_median_shape_transposed[1:],
            self.generate_data_identifier("2d"), approximate_n_voxels_dataset,
        )
        plan_2d["batch_dice"] = True

        median_spacing = np.median(self.fingerprint["spacings"], 0)[transpose_forward]
        median_shape = np.median(self.fingerprint["shapes_after_crop"], 0)[transpose_forward]
        plans = {
            "dataset_name": self.dataset_name,
            "plans_name": self.plans_identifier,
            "original_median_spacing_after_transp": [float(i) for i in median_spacing],
            "original_median_shape_after_transp": [int(round(i)) for i in median_shape],
            "image_reader_writer": self.image_reader_writer,
            "transpose_forward": [int(i) for i in transpose_forward],
            "transpose_backward": [int(i) for i in transpose_backward],
            "configurations": {"2d": plan_2d},
            "experiment_planner_used": type(self).__name__,
            "label_manager": "LabelManager",
            "foreground_intensity_properties_per_channel": self.fingerprint[
                "foreground_intensity_properties_per_channel"
            ],
        }
        if plan_3d_lowres is not None:
            plans["configurations"]["3d_lowres"] = plan_3d_lowres
            plans["configurations"]["3d_lowres"]["next_stage"] = "3d_cascade_fullres"
        if plan_3d_fullres is not None:
            plans["configurations"]["3d_fullres"] = plan_3d_fullres
            if plan_3d_lowres is not None:
                plans["configurations"]["3d_cascade_fullres"] = {
                    "inherits_from": "3d_fullres",
                    "previous_stage": "3d_lowres",
                }
        return plans

    def _plan_lowres(self, plan_3d_fullres: dict, new_median_shape_transposed: np.ndarray) -> dict | None:
        """A coarser 3d configuration when the fullres patch covers less than 25% of the median image."""
        fullres_spacing = np.array(plan_3d_fullres["spacing"])
        median_num_voxels = np.prod(new_median_shape_transposed, dtype=np.float64)
        num_voxels_in_patch = np.prod(plan_3d_fullres["patch_size"], dtype=np.float64)
        plan_3d_lowres = None
        lowres_spacing = deepcopy(fullres_spacing)
        spacing_increase_factor = 1.03
        while num_voxels_in_patch / median_num_voxels < self.lowres_creation_threshold:
            max_spacing = max(lowres_spacing)
            if np.any((max_spacing / lowres_spacing) > 2):
                lowres_spacing[(max_spacing / lowres_spacing) > 2] *= spacing_increase_factor
            else:
                lowres_spacing *= spacing_increase_factor
            median_num_voxels = np.prod(fullres_spacing / lowres_spacing * new_median_shape_transposed, dtype=np.float64)
            plan_3d_lowres = self.get_plans_for_configuration(
                lowres_spacing,
                tuple(round(i) for i in fullres_spacing / lowres_spacing * new_median_shape_transposed),
                self.generate_data_identifier("3d_lowres"),
                float(np.prod(median_num_voxels) * self.dataset.num_training),
            )
            num_voxels_in_patch = np.prod(plan_3d_lowres["patch_size"], dtype=np.int64)
        if np.prod(new_median_shape_transposed, dtype=np.float64) / median_num_voxels < 2:
            plan_3d_lowres = None  # not coarse enough to be worth a cascade
        return plan_3d_lowres


def merge_with_existing_plans(plans: dict, existing: dict | None) -> dict:
    """Keeps configurations of an existing plans file that this planner does not produce (custom ones)."""
    if not existing:
        return plans
    merged = deepcopy(plans)
    for name, cfg in existing.get("configurations", {}).items():
        if name not in merged["configurations"]:
            merged["configurations"][name] = cfg
    return merged
