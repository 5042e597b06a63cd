"""Logits in the preprocessed space -> a segmentation file in the input's own geometry (nnU-Net's export).

Steps (as nnU-Net v2's ``export_prediction_from_logits``): resample the logits from the configuration's spacing to
the cropped original shape with the plans' probabilities resampling (linear; out-of-plane nearest for anisotropic
data) -> softmax (sigmoid for regions) -> argmax (regions: ``regions_class_order`` painted in order where a
region's probability exceeds 0.5) -> put back into the uncropped volume -> undo the plans' transpose -> write with the
input's spacing, origin and direction. ``save_probabilities`` adds ``CASE.npz`` (``probabilities``: ``(K, Z, Y, X)``
in the input's array order, background 1 outside the crop box) and ``CASE.pkl`` (the properties), the files
``nnUNetv2_ensemble`` averages.

Everything here is NumPy (no torch), so it runs in forked export workers without touching torch's thread pools.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from monai_nnunet.utils.properties import save_properties
from monai_nnunet.dataset.dataset_json import DatasetDescription
from monai_nnunet.dataset.io import write_segmentation
from monai_nnunet.planning.plans import ConfigurationManager, PlansManager
from monai_nnunet.preprocessing.resampling import resample_data_or_seg_to_shape
from monai_nnunet.utils.files import atomic_path

__all__ = [
    "convert_logits_to_original_geometry",
    "export_prediction",
    "logits_to_probabilities",
    "probabilities_to_segmentation",
    "resample_logits_to_cropped_shape",
    "uncrop",
]

_DEFAULT_PROBABILITIES_KWARGS = {"is_seg": False, "order": 1, "order_z": 0, "force_separate_z": None}


def _as_dataset(dataset: DatasetDescription | Mapping[str, Any]) -> DatasetDescription:
    return dataset if isinstance(dataset, DatasetDescription) else DatasetDescription(dict(dataset))


def _as_plans(plans: PlansManager | Mapping[str, Any]) -> PlansManager:
    return plans if isinstance(plans, PlansManager) else PlansManager(dict(plans))


def _as_configuration(plans: PlansManager, configuration: ConfigurationManager | str) -> ConfigurationManager:
    return configuration if isinstance(configuration, ConfigurationManager) else plans.get_configuration(configuration)


def _to_numpy(array: Any) -> np.ndarray:
    if hasattr(array, "detach"):  # a torch tensor
        array = array.detach().cpu().float().numpy()
    return np.asarray(array, dtype=np.float32)


def resample_logits_to_cropped_shape(
    logits: np.ndarray, properties: Mapping[str, Any], configuration: ConfigurationManager
) -> np.ndarray:
    """Resamples ``(K, Z, Y, X)`` logits from the configuration's spacing to the cropped original shape.

    Args:
        logits: logits in the preprocessed space (float32).
        properties: the case's preprocessing properties (``spacing_transposed``,
            ``shape_after_cropping_and_before_resampling``, ``target_spacing``).
        configuration: the configuration (its ``resampling_fn_probabilities_kwargs`` are used).

    Returns:
        ``(K, *shape_after_cropping_and_before_resampling)`` float32.
    """
    original_spacing = [float(s) for s in properties["spacing_transposed"]]
    current = properties.get("target_spacing")
    if current is None:
        current = configuration.spacing
        if len(current) == 2:  # 2d: the slice axis kept its spacing
            current = [original_spacing[0], *current]
    kwargs = dict(configuration.resampling_fn_probabilities_kwargs or _DEFAULT_PROBABILITIES_KWARGS)
    kwargs["is_seg"] = False
    shape = [int(s) for s in properties["shape_after_cropping_and_before_resampling"]]
    return resample_data_or_seg_to_shape(logits, shape, [float(c) for c in current], original_spacing, **kwargs)


def logits_to_probabilities(logits: np.ndarray, dataset: DatasetDescription) -> np.ndarray:
    """Softmax over the channel axis, or a sigmoid per channel for region-based models.

    Args:
        logits: ``(K, ...)``.
        dataset: decides regions or labels.

    Returns:
        Probabilities ``(K, ...)`` float32.
    """
    logits = np.asarray(logits, dtype=np.float32)
    if dataset.has_regions:
        return (1.0 / (1.0 + np.exp(-logits))).astype(np.float32, copy=False)
    shifted = logits - logits.max(axis=0, keepdims=True)
    np.exp(shifted, out=shifted)
    shifted /= shifted.sum(axis=0, keepdims=True)
    return shifted


def _label_dtype(dataset: DatasetDescription) -> type:
    return np.uint8 if max(dataset.all_labels, default=0) < 256 else np.uint16


def probabilities_to_segmentation(probabilities: np.ndarray, dataset: DatasetDescription) -> np.ndarray:
    """Label map from probabilities (or logits, for label-based models: the argmax is the same).

    Label-based: argmax over channels, channel ``i`` being label ``all_labels[i]``. Region-based: each region's
    ``regions_class_order`` value painted, in order, where its probability exceeds 0.5.

    Args:
        probabilities: ``(K, ...)``.
        dataset: the dataset description.

    Returns:
        The label map ``(...)`` (uint8, or uint16 for labels above 255).

    Raises:
        ValueError: when ``K`` is not the number of segmentation heads.
    """
    heads = dataset.num_segmentation_heads
    if probabilities.shape[0] != heads:
        raise ValueError(f"expected {heads} channels (segmentation heads), got array of shape {probabilities.shape}")
    dtype = _label_dtype(dataset)
    if dataset.has_regions:
        seg = np.zeros(probabilities.shape[1:], dtype=dtype)
        for i, value in enumerate(dataset.regions_class_order):
            seg[probabilities[i] > 0.5] = value
        return seg
    labels = np.asarray(dataset.all_labels)
    index = probabilities.argmax(axis=0)
    if np.array_equal(labels, np.arange(len(labels))):
        return index.astype(dtype)
    return labels[index].astype(dtype)


def uncrop(array: np.ndarray, bbox: Sequence[Sequence[int]], shape_before_cropping: Sequence[int],
           background: np.ndarray | float = 0) -> np.ndarray:
    """Puts a cropped array back into the uncropped volume.

    Args:
        array: ``(..., Z', Y', X')``, the crop.
        bbox: ``[[start, stop], ...]`` per spatial axis (the preprocessing's ``bbox_used_for_cropping``).
        shape_before_cropping: spatial shape of the uncropped volume.
        background: fill value outside the box; an array ``(C,)`` fills each leading channel with its own value.

    Returns:
        ``(..., Z, Y, X)`` of ``array``'s dtype.
    """
    spatial = len(bbox)
    lead = array.shape[: array.ndim - spatial]
    out = np.empty((*lead, *[int(s) for s in shape_before_cropping]), dtype=array.dtype)
    if np.ndim(background) == 0:
        out[...] = background
    else:
        out[...] = np.asarray(background, dtype=array.dtype).reshape(*lead, *([1] * spatial))
    slicer = tuple(slice(int(a), int(b)) for a, b in bbox)
    out[(..., *slicer)] = array
    return out


def convert_logits_to_original_geometry(
    logits: Any,
    properties: Mapping[str, Any],
    plans: PlansManager | Mapping[str, Any],
    configuration: ConfigurationManager | str,
    dataset: DatasetDescription | Mapping[str, Any],
    return_probabilities: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Logits in the preprocessed space -> label map (and probabilities) in the input's array geometry.

    Args:
        logits: ``(K, Z', Y', X')`` (NumPy array or torch tensor), the preprocessed case's logits.
        properties: the case's preprocessing properties.
        plans: the plans (``transpose_backward``).
        configuration: the configuration (or its name).
        dataset: the dataset description (labels or regions).
        return_probabilities: also return the probabilities.

    Returns:
        The label map ``(Z, Y, X)`` in the input's (SimpleITK) array order, and with ``return_probabilities`` the
        probabilities ``(K, Z, Y, X)`` in the same order (background 1 outside the crop box for label models).
    """
    plans = _as_plans(plans)
    configuration = _as_configuration(plans, configuration)
    dataset = _as_dataset(dataset)
    resampled = resample_logits_to_cropped_shape(_to_numpy(logits), properties, configuration)
    bbox = properties["bbox_used_for_cropping"]
    shape = properties["shape_before_cropping"]
    backward = plans.transpose_backward
    if return_probabilities:
        probabilities = logits_to_probabilities(resampled, dataset)
        seg = probabilities_to_segmentation(probabilities, dataset)
        fill = np.zeros(probabilities.shape[0], dtype=np.float32)
        if not dataset.has_regions:
            fill[0] = 1.0
        probabilities = uncrop(probabilities, bbox, shape, fill)
        probabilities = np.ascontiguousarray(probabilities.transpose([0, *(b + 1 for b in backward)]))
    else:
        seg = probabilities_to_segmentation(resampled, dataset) if not dataset.has_regions else \
            probabilities_to_segmentation(logits_to_probabilities(resampled, dataset), dataset)
    seg = np.ascontiguousarray(uncrop(seg, bbox, shape, 0).transpose(backward))
    return (seg, probabilities) if return_probabilities else seg


def export_prediction(
    logits: Any,
    properties: Mapping[str, Any],
    plans: PlansManager | Mapping[str, Any],
    configuration: ConfigurationManager | str,
    dataset: DatasetDescription | Mapping[str, Any],
    output_file_truncated: str | os.PathLike,
    save_probabilities: bool = False,
) -> Path:
    """Writes one case's segmentation (and optionally probabilities) in the input's geometry.

    Args:
        logits: ``(K, Z', Y', X')`` logits in the preprocessed space.
        properties: the case's preprocessing properties (``sitk_stuff`` gives the geometry of the written file).
        plans, configuration, dataset: see :func:`convert_logits_to_original_geometry`.
        output_file_truncated: output path without the file ending (``.../CASE``); the dataset's ``file_ending``
            is appended.
        save_probabilities: also write ``CASE.npz`` (``probabilities``) and the properties as ``CASE.json`` (read by
            this package's ensembling) and ``CASE.pkl`` (nnU-Net's format, for nnU-Net's tools).

    Returns:
        The segmentation file.
    """
    dataset = _as_dataset(dataset)
    result = convert_logits_to_original_geometry(logits, properties, plans, configuration, dataset,
                                                 return_probabilities=save_probabilities)
    truncated = str(output_file_truncated)
    if save_probabilities:
        seg, probabilities = result
        with atomic_path(truncated + ".npz") as tmp:
            np.savez_compressed(tmp, probabilities=probabilities)
        kept = {k: v for k, v in properties.items() if k != "class_locations"}
        save_properties(truncated + ".json", kept)  # what nnUNetv2_ensemble here reads
        with atomic_path(truncated + ".pkl") as tmp:  # for nnU-Net's own ensembling; never read by this package
            with open(tmp, "wb") as f:
                pickle.dump(kept, f, protocol=pickle.HIGHEST_PROTOCOL)
    else:
        seg = result
    output = Path(truncated + dataset.file_ending)
    write_segmentation(seg, output, properties)
    return output
