"""``configs/metadata.json`` for a run or an exported model: versions, channels, labels and metrics filled in."""

from __future__ import annotations

import json
import math
from typing import Any, Mapping

from monai_nnunet.bundle import TEMPLATE_BUNDLE
from monai_nnunet.dataset.dataset_json import DatasetDescription
from monai_nnunet.planning.plans import ConfigurationManager

__all__ = ["SCHEMA_FILE", "accepted_spatial_shape", "build_metadata"]

#: The metadata schema shipped with the package, for offline ``monai.bundle verify_metadata --filepath``.
SCHEMA_FILE = TEMPLATE_BUNDLE.parent / "schema" / "meta_schema.json"

_MODALITY = {"ct": ("CT", "hounsfield"), "mri": ("MR", "magnitude"), "mr": ("MR", "magnitude"),
             "t1": ("MR", "magnitude"), "t2": ("MR", "magnitude"), "flair": ("MR", "magnitude")}


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"


def accepted_spatial_shape(configuration: ConfigurationManager) -> list[str]:
    """The input sizes the network accepts, per axis, in MONAI's metadata notation: multiples of the product of the
    plans' strides along the axis, from twice that product up (``"8*(n+1)"``: 16, 24, ...), so the lowest stage has
    more than one voxel for instance norm."""
    strides = configuration.pool_op_kernel_sizes
    products = [math.prod(int(s[axis]) for s in strides) for axis in range(len(configuration.patch_size))]
    return [f"{p}*(n+1)" for p in products]


def build_metadata(dataset_json: Mapping[str, Any], configuration_name: str, eval_metrics: Mapping | None = None,
                   description: str | None = None, version: str | None = None,
                   configuration: ConfigurationManager | None = None) -> dict:
    """The metadata of a bundle for a model trained on ``dataset_json`` (nnU-Net v2's dataset.json).

    Args:
        dataset_json: the dataset's dataset.json content.
        configuration_name: the plans configuration (written into the description).
        eval_metrics: e.g. ``{"mean_dice": 0.89, "dice_Anterior": 0.88}``.
        description: replaces the template's description when given.
        version: bundle version (default: the template's).
        configuration: the plans configuration: ``network_data_format`` then states the input sizes the network
            accepts and its output, the logits of every segmentation head (what ``verify_net_in_out`` checks).

    Returns:
        the metadata dict.
    """
    import monai
    import numpy
    import torch

    meta = json.loads((TEMPLATE_BUNDLE / "configs" / "metadata.json").read_text())
    dataset = DatasetDescription(dict(dataset_json))
    name = str(dataset_json.get("name", "dataset"))
    meta["name"] = f"nnU-Net {configuration_name} model for {name}"
    if version is not None:
        meta["version"] = version
        meta["changelog"] = {version: meta["changelog"].get(version, "exported by monai-nnunet"), **meta["changelog"]}
    meta["monai_version"] = monai.__version__
    meta["pytorch_version"] = torch.__version__.split("+")[0]
    meta["numpy_version"] = numpy.__version__
    meta["required_packages_version"] = {
        pkg: _version(pkg) for pkg in ("monai-nnunet", "pytorch-ignite", "itk", "nibabel", "scikit-image", "scipy")
    }
    if description:
        meta["description"] = description
    meta["data_source"] = str(dataset_json.get("reference", dataset_json.get("description", name)))
    meta["image_classes"] = ", ".join(f"{k}: {v}" for k, v in dataset.channel_names.items())
    label_names = {v: k for k, v in dataset.labels.items() if isinstance(v, int) and k != "ignore"}
    meta["label_classes"] = ", ".join(f"{v}: {k}" for v, k in sorted(label_names.items()))
    meta["pred_classes"] = meta["label_classes"]
    if eval_metrics:
        meta["eval_metrics"] = {k: float(v) for k, v in eval_metrics.items()}
    first = next(iter(dataset.channel_names.values())).casefold()
    modality, fmt = _MODALITY.get(first, ("MR" if "mr" in first else "image", "magnitude"))
    image = meta["network_data_format"]["inputs"]["image"]
    image.update(num_channels=dataset.num_channels, modality=modality, format=fmt,
                 channel_def={str(k): v for k, v in dataset.channel_names.items()})
    pred = meta["network_data_format"]["outputs"]["pred"]
    pred.update(channel_def={str(v): k for v, k in sorted(label_names.items())},
                value_range=[min(label_names), max(label_names)] if label_names else [])
    if configuration is not None:
        shape = accepted_spatial_shape(configuration)
        image.update(spatial_shape=shape, is_patch_data=True)
        # network_def's output: the logits of each head at the input's size (the segmentation is their argmax)
        heads = dataset.num_segmentation_heads
        names = [f"region {r}" for r in dataset.foreground_regions] if dataset.has_regions else \
            [label_names.get(i, str(i)) for i in range(heads)]
        pred.update(type="probabilities", format="logits", num_channels=heads, spatial_shape=shape, dtype="float32",
                    value_range=[], is_patch_data=True, channel_def={str(i): n for i, n in enumerate(names)})
    return meta
