"""Plans files in nnU-Net v2's schema: access, configuration inheritance, and the legacy (pre-2.4) layout.

A plans file written by nnU-Net v2 itself loads here unchanged, and plans written here load in nnU-Net.
"""

from __future__ import annotations

import os
from copy import deepcopy
from pathlib import Path
from typing import Any

from monai_nnunet.utils.files import load_json

__all__ = ["ConfigurationManager", "PlansError", "PlansManager", "architecture_from_legacy", "load_plans",
           "plans_with_patch_size", "unet_architecture"]

_PLAIN_UNET = "dynamic_network_architectures.architectures.unet.PlainConvUNet"
_RESENC_UNET = "dynamic_network_architectures.architectures.residual_unet.ResidualEncoderUNet"


class PlansError(ValueError):
    """A plans file is malformed or lacks the requested configuration."""


_LEGACY_KEYS = ("UNet_class_name", "UNet_base_num_features", "unet_max_num_features", "n_conv_per_stage_encoder",
                "n_conv_per_stage_decoder", "pool_op_kernel_sizes", "conv_kernel_sizes", "patch_size")


def unet_architecture(network_class_name: str, dim: int, features_per_stage, kernel_sizes, strides,
                      n_conv_per_stage, n_conv_per_stage_decoder, per_stage_key: str = "n_conv_per_stage") -> dict:
    """An ``architecture`` block in nnU-Net v2's form (instance norm, LeakyReLU, convolution biases on)."""
    return {
        "network_class_name": network_class_name,
        "arch_kwargs": {
            "n_stages": len(features_per_stage),
            "features_per_stage": [int(f) for f in features_per_stage],
            "conv_op": f"torch.nn.modules.conv.Conv{dim}d",
            "kernel_sizes": [list(k) for k in kernel_sizes],
            "strides": [list(st) for st in strides],
            per_stage_key: list(n_conv_per_stage),
            "n_conv_per_stage_decoder": list(n_conv_per_stage_decoder),
            "conv_bias": True,
            "norm_op": f"torch.nn.modules.instancenorm.InstanceNorm{dim}d",
            "norm_op_kwargs": {"eps": 1e-05, "affine": True},
            "dropout_op": None,
            "dropout_op_kwargs": None,
            "nonlin": "torch.nn.LeakyReLU",
            "nonlin_kwargs": {"inplace": True},
        },
        "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"],
    }


def architecture_from_legacy(cfg) -> dict:
    """Rebuilds the ``architecture`` block from the plans layout nnU-Net v2 used before 2.4 (as its
    ``ConfigurationManager`` does).

    Raises:
        KeyError: when old-format keys are missing.
        PlansError: for an unknown network class or patch dimensionality.
    """
    missing = [k for k in _LEGACY_KEYS if k not in cfg]
    if missing:
        raise KeyError(f"old-format plans lack {missing}")
    unet_class = cfg["UNet_class_name"]
    network_class_name = {"PlainConvUNet": _PLAIN_UNET, "ResidualEncoderUNet": _RESENC_UNET}.get(unet_class)
    if network_class_name is None:
        raise PlansError(f"legacy plans name an unknown network class {unet_class!r}")
    n_stages = len(cfg["n_conv_per_stage_encoder"])
    dim = len(cfg["patch_size"])
    if dim not in (2, 3):
        raise PlansError(f"patch_size must have 2 or 3 axes, got {cfg['patch_size']}")
    features = [min(cfg["UNet_base_num_features"] * 2**i, cfg["unet_max_num_features"]) for i in range(n_stages)]
    return unet_architecture(
        network_class_name, dim, features, cfg["conv_kernel_sizes"], cfg["pool_op_kernel_sizes"],
        cfg["n_conv_per_stage_encoder"], cfg["n_conv_per_stage_decoder"],
        "n_conv_per_stage" if unet_class == "PlainConvUNet" else "n_blocks_per_stage",
    )


class ConfigurationManager:
    """One configuration (``2d``, ``3d_fullres``, ...) of a plans file, inheritance already resolved.

    Args:
        configuration: the configuration dict.
        name: its name in the plans (used in messages).
    """

    def __init__(self, configuration: dict, name: str = "configuration"):
        self.name = name
        self.configuration = deepcopy(configuration)
        if "architecture" not in self.configuration and "UNet_class_name" in self.configuration:
            self.configuration["architecture"] = architecture_from_legacy(self.configuration)
            for k in ("UNet_class_name", "UNet_base_num_features", "n_conv_per_stage_encoder",
                      "n_conv_per_stage_decoder", "num_pool_per_axis", "pool_op_kernel_sizes",
                      "conv_kernel_sizes", "unet_max_num_features"):
                self.configuration.pop(k, None)
        required = ("data_identifier", "batch_size", "patch_size", "spacing", "normalization_schemes",
                    "use_mask_for_norm", "architecture")
        missing = [k for k in required if k not in self.configuration]
        if missing:
            raise PlansError(f"configuration {name!r} lacks {missing}")

    def __getitem__(self, key: str) -> Any:
        return self.configuration[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.configuration.get(key, default)

    def __repr__(self) -> str:
        return f"ConfigurationManager({self.name!r}, {self.configuration!r})"

    data_identifier = property(lambda self: self.configuration["data_identifier"])
    preprocessor_name = property(lambda self: self.configuration.get("preprocessor_name", "DefaultPreprocessor"))
    batch_size = property(lambda self: int(self.configuration["batch_size"]))
    patch_size = property(lambda self: [int(p) for p in self.configuration["patch_size"]])
    median_image_size_in_voxels = property(lambda self: self.configuration.get("median_image_size_in_voxels"))
    spacing = property(lambda self: [float(s) for s in self.configuration["spacing"]])
    normalization_schemes = property(lambda self: list(self.configuration["normalization_schemes"]))
    use_mask_for_norm = property(lambda self: [bool(u) for u in self.configuration["use_mask_for_norm"]])
    architecture = property(lambda self: self.configuration["architecture"])
    network_arch_class_name = property(lambda self: self.configuration["architecture"]["network_class_name"])
    network_arch_init_kwargs = property(lambda self: self.configuration["architecture"]["arch_kwargs"])
    pool_op_kernel_sizes = property(lambda self: self.configuration["architecture"]["arch_kwargs"]["strides"])
    batch_dice = property(lambda self: bool(self.configuration.get("batch_dice", False)))
    previous_stage_name = property(lambda self: self.configuration.get("previous_stage"))
    resampling_fn_data_kwargs = property(lambda self: self.configuration.get("resampling_fn_data_kwargs", {}))
    resampling_fn_seg_kwargs = property(lambda self: self.configuration.get("resampling_fn_seg_kwargs", {}))
    resampling_fn_probabilities_kwargs = property(
        lambda self: self.configuration.get("resampling_fn_probabilities_kwargs", {})
    )

    @property
    def next_stage_names(self) -> list[str] | None:
        nxt = self.configuration.get("next_stage")
        return None if nxt is None else ([nxt] if isinstance(nxt, str) else list(nxt))

    @property
    def is_2d(self) -> bool:
        return len(self.configuration["patch_size"]) == 2


class PlansManager:
    """Read access to a plans file (nnU-Net v2 schema).

    Args:
        plans: a path to a plans JSON or the loaded dict.

    Raises:
        FileNotFoundError: when the file is missing.
        PlansError: when required keys are missing.
    """

    def __init__(self, plans: str | os.PathLike | dict):
        if isinstance(plans, dict):
            self.plans = deepcopy(plans)
            self.source = "plans"
        else:
            self.plans = load_json(plans)
            self.source = str(plans)
        missing = [k for k in ("dataset_name", "plans_name", "transpose_forward", "transpose_backward",
                               "configurations") if k not in self.plans]
        if missing:
            raise PlansError(f"{self.source}: missing key(s) {missing}")

    def _resolve(self, name: str, visited: tuple[str, ...] = ()) -> dict:
        configurations = self.plans["configurations"]
        if name not in configurations:
            raise PlansError(
                f"{self.source}: configuration {name!r} does not exist; available: {self.available_configurations}"
            )
        configuration = deepcopy(configurations[name])
        parent = configuration.pop("inherits_from", None)
        if parent is None:
            return configuration
        if parent in visited or parent == name:
            raise PlansError(f"{self.source}: circular inheritance {' -> '.join((*visited, name, parent))}")
        base = self._resolve(parent, (*visited, name))
        base.update(configuration)
        return base

    def get_configuration(self, name: str) -> ConfigurationManager:
        """Returns configuration ``name`` with ``inherits_from`` resolved."""
        return ConfigurationManager(self._resolve(name), name)

    dataset_name = property(lambda self: self.plans["dataset_name"])
    plans_name = property(lambda self: self.plans["plans_name"])
    transpose_forward = property(lambda self: [int(i) for i in self.plans["transpose_forward"]])
    transpose_backward = property(lambda self: [int(i) for i in self.plans["transpose_backward"]])
    original_median_spacing_after_transp = property(lambda self: self.plans.get("original_median_spacing_after_transp"))
    original_median_shape_after_transp = property(lambda self: self.plans.get("original_median_shape_after_transp"))
    available_configurations = property(lambda self: list(self.plans["configurations"]))

    @property
    def foreground_intensity_properties_per_channel(self) -> dict:
        if "foreground_intensity_properties_per_channel" in self.plans:
            return self.plans["foreground_intensity_properties_per_channel"]
        return self.plans.get("foreground_intensity_properties_by_modality", {})


def load_plans(path: str | os.PathLike) -> PlansManager:
    """Loads a plans JSON (ours or nnU-Net v2's)."""
    return PlansManager(Path(path))


def plans_with_patch_size(plans: dict, configuration: str, patch_size) -> dict:
    """The plans a model was trained with when its run changed the patch size: a copy of ``plans`` whose
    ``configuration`` has ``patch_size`` (the plans themselves when it is the planned one). Prediction slides the
    window the network was trained on, as nnU-Net's predictor does with the plans of a results folder.

    Args:
        plans: the plans dict.
        configuration: the configuration trained.
        patch_size: the run's patch size (``None``: the planned one).

    Raises:
        PlansError: the configuration does not exist, or the patch size has another number of axes.
    """
    if patch_size is None:
        return plans
    planned = PlansManager(plans).get_configuration(configuration).patch_size
    patch = [int(p) for p in patch_size]
    if len(patch) != len(planned):
        raise PlansError(f"patch_size {patch} has {len(patch)} axes but configuration {configuration} is "
                         f"{len(planned)}D")
    if patch == [int(p) for p in planned]:
        return plans
    changed = deepcopy(plans)
    changed["configurations"][configuration]["patch_size"] = patch
    return changed
