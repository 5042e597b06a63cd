"""Plans of one dataset reused for another: the first step of pretraining and fine-tuning.

As nnU-Net v2's ``move_plans_between_datasets``: the source plans are copied as they are (network topology, patch
size, batch size, target spacing, normalisation schemes and the source's foreground intensity statistics, so images
are normalised exactly as during pretraining), with the target's dataset name, the new plans name, data identifiers
renamed to the new plans name (``nnUNetPlans_3d_fullres`` -> ``nnUNetPlans_pretrained_3d_fullres``) so the target's
own preprocessed data is not overwritten, and the reader that fits the target's files. The result is
``$nnUNet_preprocessed/TARGET/<target_plans>.json``; preprocess the target with it
(``nnUNetv2_preprocess -d TARGET -plans_name <target_plans>``) and fine-tune with
``nnUNetv2_train TARGET CONFIG FOLD -p <target_plans> -pretrained_weights .../checkpoint_final.pth``.
"""

from __future__ import annotations

import warnings
from copy import deepcopy
from pathlib import Path

from monai_nnunet import paths
from monai_nnunet.dataset.dataset_json import load_dataset_json
from monai_nnunet.dataset.naming import resolve_dataset_name
from monai_nnunet.planning.plans import PlansError, PlansManager
from monai_nnunet.utils.files import load_json, save_json

__all__ = ["move_plans_between_datasets", "renamed_data_identifier"]

_NATURAL_IMAGE_ENDINGS = (".png", ".bmp", ".tif", ".tiff", ".jpg", ".jpeg")


def renamed_data_identifier(identifier: str, source_plans: str, target_plans: str) -> str:
    """``nnUNetPlans_3d_fullres`` -> ``nnUNetPlans_pretrained_3d_fullres`` (nnU-Net's rule: replace the source plans
    prefix, or prepend ``target_`` when the identifier does not start with it)."""
    if identifier.startswith(source_plans):
        return target_plans + identifier[len(source_plans):]
    return f"{target_plans}_{identifier}"


def move_plans_between_datasets(
    source_dataset: int | str,
    target_dataset: int | str,
    source_plans_identifier: str,
    target_plans_identifier: str | None = None,
) -> Path:
    """Copies ``SOURCE/<source_plans>.json`` to ``TARGET/<target_plans>.json`` in ``nnUNet_preprocessed``.

    Args:
        source_dataset: id or name of the dataset the plans were made for (it must have been planned).
        target_dataset: id or name of the dataset to use them for (its raw ``dataset.json`` must exist).
        source_plans_identifier: e.g. ``"nnUNetPlans"``.
        target_plans_identifier: e.g. ``"nnUNetPlans_pretrained"``; default: the source's (which would replace
            the target's own plans of that name, hence a warning).

    Returns:
        The written plans file.

    Raises:
        FileNotFoundError: the source plans or the target's raw ``dataset.json`` are missing.
        PlansError: the target's images have a different number of channels than the plans normalise.
    """
    source_name = resolve_dataset_name(source_dataset)
    target_name = resolve_dataset_name(target_dataset)
    target_plans_identifier = target_plans_identifier or source_plans_identifier
    source_file = paths.nnunet_preprocessed() / source_name / f"{source_plans_identifier}.json"
    if not source_file.is_file():
        folder = source_file.parent
        existing = sorted(p.stem for p in folder.glob("*.json") if p.stem not in ("dataset", "dataset_fingerprint",
                                                                                   "splits_final")) \
            if folder.is_dir() else []
        raise FileNotFoundError(
            f"source plans {source_file} do not exist; plan the source first (nnUNetv2_plan_and_preprocess -d "
            f"{source_name}). Plans of {source_name}: {', '.join(existing) if existing else '(none)'}"
        )
    target_json = paths.nnunet_raw() / target_name / "dataset.json"
    if not target_json.is_file():
        raise FileNotFoundError(f"{target_json} does not exist: the target dataset must be in nnUNet_raw")
    target = load_dataset_json(target_json)
    plans = deepcopy(load_json(source_file))
    PlansManager(plans)  # validates the schema
    for name, cfg in plans["configurations"].items():
        schemes = cfg.get("normalization_schemes")
        if schemes is not None and len(schemes) != target.num_channels:
            raise PlansError(
                f"{source_file.name} ({source_name}) normalises {len(schemes)} channel(s) in configuration {name}, "
                f"but {target_name} has {target.num_channels} ({target.channel_names}); plans (and pretrained "
                "weights) only move between datasets with the same input channels"
            )
    plans["dataset_name"] = target_name
    plans["plans_name"] = target_plans_identifier
    if target_plans_identifier != source_plans_identifier:
        for cfg in plans["configurations"].values():
            if "data_identifier" in cfg:
                cfg["data_identifier"] = renamed_data_identifier(cfg["data_identifier"], source_plans_identifier,
                                                                 target_plans_identifier)
    plans["image_reader_writer"] = ("NaturalImage2DIO" if target.file_ending.lower() in _NATURAL_IMAGE_ENDINGS
                                    else "SimpleITKIO")
    output = paths.nnunet_preprocessed() / target_name / f"{target_plans_identifier}.json"
    if output.is_file() and target_plans_identifier == source_plans_identifier:
        warnings.warn(f"{output} is replaced by the plans of {source_name}; give -tp a new name (e.g. "
                      f"{source_plans_identifier}_pretrained) to keep the target's own plans", stacklevel=2)
    save_json(plans, output)
    return output
