"""Network topology from spacing and patch size, and the feature-map-size estimate behind the batch size.

Both follow nnU-Net v2 (``get_pool_and_conv_props`` and ``PlainConvUNet.compute_conv_feature_map_size``) to the
voxel, so plans made here equal nnU-Net's. The feature-map estimate is computed arithmetically instead of by
instantiating a network, which makes planning near-instant.
"""

from __future__ import annotations

from copy import deepcopy
from typing import Sequence

import numpy as np

__all__ = ["estimate_feature_map_size", "estimate_resenc_feature_map_size", "get_pool_and_conv_props", "pad_shape"]


def pad_shape(shape: Sequence[int], must_be_divisible_by: Sequence[int]) -> np.ndarray:
    """Rounds each axis of ``shape`` up to a multiple of ``must_be_divisible_by``."""
    shape = np.asarray(shape)
    div = np.asarray(must_be_divisible_by)
    padded = shape + div - shape % div
    padded = np.where(shape % div == 0, padded - div, padded)
    return padded.astype(int)


def get_pool_and_conv_props(
    spacing: Sequence[float], patch_size: Sequence[int], min_feature_map_size: int, max_numpool: int
) -> tuple[list[int], tuple, tuple, tuple, np.ndarray]:
    """Pooling and convolution kernel sizes for a U-Net, nnU-Net v2's rules.

    An axis is downsampled while its feature map stays at least ``2 * min_feature_map_size`` and its spacing is
    within a factor 2 of the finest spacing, so anisotropic axes are pooled later. Kernels are 1 on an axis until
    its spacing is within a factor 2 of the finest, then 3.

    Args:
        spacing: target spacing per axis.
        patch_size: initial patch size per axis.
        min_feature_map_size: smallest edge length of the bottleneck feature map.
        max_numpool: most poolings per axis.

    Returns:
        ``(num_pool_per_axis, strides, kernel_sizes, patch_size, must_be_divisible_by)`` with strides and
        kernel sizes one entry per stage (the first stride is all ones), and the patch size padded to a multiple
        of ``must_be_divisible_by``.
    """
    dim = len(spacing)
    current_spacing = list(deepcopy(spacing))
    current_size = list(deepcopy(patch_size))
    pool_op_kernel_sizes = [[1] * dim]
    conv_kernel_sizes = []
    num_pool_per_axis = [0] * dim
    kernel_size = [1] * dim

    while True:
        valid_axes = [i for i in range(dim) if current_size[i] >= 2 * min_feature_map_size]
        if len(valid_axes) < 1:
            break
        min_spacing_of_valid = min(current_spacing[i] for i in valid_axes)
        valid_axes = [i for i in valid_axes if current_spacing[i] / min_spacing_of_valid < 2]
        valid_axes = [i for i in valid_axes if num_pool_per_axis[i] < max_numpool]
        if len(valid_axes) == 1 and current_size[valid_axes[0]] < 3 * min_feature_map_size:
            break
        if len(valid_axes) < 1:
            break
        for d in range(dim):
            if kernel_size[d] != 3 and current_spacing[d] / min(current_spacing) < 2:
                kernel_size[d] = 3
        pool = [1] * dim
        for v in valid_axes:
            pool[v] = 2
            num_pool_per_axis[v] += 1
            current_spacing[v] *= 2
            current_size[v] = np.ceil(current_size[v] / 2)
        pool_op_kernel_sizes.append(pool)
        conv_kernel_sizes.append(deepcopy(kernel_size))

    must_be_divisible_by = 2 ** np.array(num_pool_per_axis)
    patch_size = pad_shape(patch_size, must_be_divisible_by)
    conv_kernel_sizes.append([3] * dim)  # bottleneck
    to_tuple = lambda lst: tuple(tuple(int(v) for v in row) for row in lst)  # noqa: E731
    return (
        num_pool_per_axis,
        to_tuple(pool_op_kernel_sizes),
        to_tuple(conv_kernel_sizes),
        tuple(int(p) for p in patch_size),
        must_be_divisible_by,
    )


def estimate_feature_map_size(
    patch_size: Sequence[int],
    features_per_stage: Sequence[int],
    strides: Sequence[Sequence[int]],
    n_conv_per_stage: Sequence[int],
    n_conv_per_stage_decoder: Sequence[int],
    num_classes: int,
) -> int:
    """Sum of the convolution output sizes of a plain U-Net without deep supervision (nnU-Net's VRAM proxy).

    Args:
        patch_size: input spatial size.
        features_per_stage: channels of each encoder stage.
        strides: stride of each encoder stage (first is usually all ones).
        n_conv_per_stage: convolutions per encoder stage.
        n_conv_per_stage_decoder: convolutions per decoder stage (lowest first).
        num_classes: output channels of the segmentation layer.

    Returns:
        The number of output activations, as ``PlainConvUNet.compute_conv_feature_map_size`` counts them.
    """
    n_stages = len(features_per_stage)
    total = 0
    size = list(patch_size)
    for s in range(n_stages):
        size = [i // j for i, j in zip(size, strides[s])]
        total += int(n_conv_per_stage[s]) * int(features_per_stage[s]) * int(np.prod(size, dtype=np.int64))
    return total + _decoder_feature_map_size(patch_size, features_per_stage, strides, n_conv_per_stage_decoder,
                                             num_classes)


def estimate_resenc_feature_map_size(
    patch_size: Sequence[int],
    features_per_stage: Sequence[int],
    strides: Sequence[Sequence[int]],
    n_blocks_per_stage: Sequence[int],
    n_conv_per_stage_decoder: Sequence[int],
    num_classes: int,
) -> int:
    """The same VRAM proxy for nnU-Net's ``ResidualEncoderUNet`` (``BasicBlockD`` residual encoder).

    The stem convolution, then per encoder stage two convolutions per residual block plus the first block's 1x1
    projection when it changes the channels or the resolution, then the plain U-Net decoder.

    Args:
        patch_size: input spatial size.
        features_per_stage: channels of each encoder stage.
        strides: stride of each encoder stage.
        n_blocks_per_stage: residual blocks per encoder stage.
        n_conv_per_stage_decoder: convolutions per decoder stage (lowest first).
        num_classes: output channels of the segmentation layer.

    Returns:
        The number of output activations, as ``ResidualEncoderUNet.compute_conv_feature_map_size`` counts them.
    """
    size = [int(i) for i in patch_size]
    total = int(features_per_stage[0]) * int(np.prod(size, dtype=np.int64))  # stem
    channels = int(features_per_stage[0])
    for s, (features, n_blocks) in enumerate(zip(features_per_stage, n_blocks_per_stage)):
        after = [i // j for i, j in zip(size, strides[s])]
        voxels = int(np.prod(after, dtype=np.int64))
        total += 2 * int(features) * voxels * int(n_blocks)
        if channels != int(features) or after != size:
            total += int(features) * voxels  # projection of the first block's skip
        size, channels = after, int(features)
    return total + _decoder_feature_map_size(patch_size, features_per_stage, strides, n_conv_per_stage_decoder,
                                             num_classes)


def _decoder_feature_map_size(patch_size, features_per_stage, strides, n_conv_per_stage_decoder,
                              num_classes: int) -> int:
    """Decoder part of nnU-Net's estimate (``UNetDecoder.compute_conv_feature_map_size``, no deep supervision)."""
    n_stages = len(features_per_stage)
    total = 0
    size = list(patch_size)
    skip_sizes = []
    for s in range(n_stages - 1):
        size = [i // j for i, j in zip(size, strides[s])]
        skip_sizes.append(size)
    for s in range(n_stages - 1):
        skip = int(np.prod(skip_sizes[-(s + 1)], dtype=np.int64))
        channels = int(features_per_stage[-(s + 2)])
        total += int(n_conv_per_stage_decoder[s]) * channels * skip  # conv blocks
        total += channels * skip  # transposed convolution
        if s == n_stages - 2:
            total += num_classes * skip  # segmentation layer (no deep supervision)
    return total
