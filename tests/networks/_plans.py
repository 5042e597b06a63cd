"""Small plans configurations (nnU-Net v2 layout, operator names as strings) for the network tests."""

from __future__ import annotations

import json
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def configuration(dim: int, features, kernels, strides, patch, conv_bias: bool = True) -> dict:
    """A plans configuration entry with a PlainConvUNet architecture block."""
    n = len(features)
    return {
        "patch_size": list(patch),
        "architecture": {
            "network_class_name": "dynamic_network_architectures.architectures.unet.PlainConvUNet",
            "arch_kwargs": {
                "n_stages": n,
                "features_per_stage": list(features),
                "conv_op": f"torch.nn.modules.conv.Conv{dim}d",
                "kernel_sizes": kernels,
                "strides": strides,
                "n_conv_per_stage": [2] * n,
                "n_conv_per_stage_decoder": [2] * (n - 1),
                "conv_bias": conv_bias,
                "norm_op": f"torch.nn.modules.instancenorm.InstanceNorm{dim}d",
                "norm_op_kwargs": {"eps": 1e-05, "affine": True},
                "dropout_op": None,
                "dropout_op_kwargs": None,
                "nonlin": "torch.nn.LeakyReLU",
                "nonlin_kwargs": {"inplace": True},
            },
            "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"],
        },
    }


# (name, configuration): small, fast plans covering 2D, isotropic 3D and anisotropic 3D
SMALL_2D = configuration(2, [4, 8, 12, 16], [[3, 3]] * 4, [[1, 1], [2, 2], [2, 2], [2, 2]], [16, 24])
SMALL_3D = configuration(3, [4, 8, 12], [[3, 3, 3]] * 3, [[1, 1, 1], [2, 2, 2], [2, 2, 2]], [8, 12, 8])
SMALL_3D_ANISO = configuration(
    3,
    [4, 6, 8, 12],
    [[1, 3, 3], [3, 3, 3], [3, 3, 3], [3, 3, 3]],
    [[1, 1, 1], [1, 2, 2], [2, 2, 2], [2, 2, 2]],
    [8, 16, 16],
)
SMALL_PLANS = [("2d", SMALL_2D), ("3d", SMALL_3D), ("3d_aniso", SMALL_3D_ANISO)]


def hippocampus(configuration_name: str) -> dict:
    """The Hippocampus configuration entry ('2d' or '3d_fullres') from the plans nnU-Net v2.8.1 wrote."""
    data = json.loads((FIXTURES / "hippocampus_configurations.json").read_text())
    return data["configurations"][configuration_name]


def expected_output_shapes(config: dict, batch: int, classes: int) -> list[tuple[int, ...]]:
    """nnU-Net's deep-supervision shapes: one per decoder level, full resolution first."""
    patch = config["patch_size"]
    strides = config["architecture"]["arch_kwargs"]["strides"]
    shapes, size = [], list(patch)
    for level in range(len(strides) - 1):
        size = [s // st for s, st in zip(size, strides[level])]
        shapes.append((batch, classes, *size))
    return shapes
