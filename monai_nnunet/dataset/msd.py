"""Convert a Medical Segmentation Decathlon task folder (``TaskXX_Name``) to the nnU-Net v2 raw layout.

3D images are copied byte for byte as ``CASE_0000.nii.gz``; 4D multi-channel images are split into one file per
channel (``_0000``, ``_0001``, ...) with the same affine and header. Labels are copied; dataset.json is rewritten
with nnU-Net v2's keys (``channel_names``, ``labels`` as name -> value, ``file_ending``).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from monai_nnunet.utils.files import load_json, save_json

__all__ = ["MSDConversionError", "convert_msd"]


class MSDConversionError(ValueError):
    """The input is not a Decathlon task folder, or the target exists."""


def _case_id(path: str) -> str:
    name = Path(path).name
    if not name.endswith(".nii.gz"):
        raise MSDConversionError(f"{path}: Decathlon images are expected to be .nii.gz")
    return name[: -len(".nii.gz")]


def _split_channels(source: Path, target_folder: Path, case_id: str, num_channels: int) -> None:
    import nibabel as nib
    import numpy as np

    from monai_nnunet.utils.files import atomic_path

    image = nib.load(str(source))
    if len(image.shape) == 3:
        if num_channels != 1:
            raise MSDConversionError(f"{source}: 3D image but dataset.json declares {num_channels} modalities")
        with atomic_path(target_folder / f"{case_id}_0000.nii.gz") as tmp:
            shutil.copyfile(source, tmp)
        return
    if len(image.shape) != 4 or image.shape[3] != num_channels:
        raise MSDConversionError(
            f"{source}: shape {image.shape} does not hold the {num_channels} modalities dataset.json declares"
        )
    data = np.asanyarray(image.dataobj)
    header = image.header.copy()
    header.set_data_shape(image.shape[:3])
    for c in range(num_channels):
        out = nib.Nifti1Image(np.ascontiguousarray(data[..., c]), image.affine, header)
        with atomic_path(target_folder / f"{case_id}_{c:04d}.nii.gz") as tmp:
            nib.save(out, str(tmp))


def convert_msd(task_folder: str | os.PathLike, output_root: str | os.PathLike, dataset_id: int | None = None) -> Path:
    """Converts ``TaskXX_Name`` into ``output_root/DatasetXXX_Name``.

    Args:
        task_folder: the Decathlon folder with ``dataset.json``, ``imagesTr``, ``labelsTr`` (``imagesTs`` optional).
        output_root: the ``nnUNet_raw`` folder.
        dataset_id: the new id (default: the task number).

    Returns:
        The new dataset folder.

    Raises:
        MSDConversionError: when the input is not a Decathlon task or the target already exists.
    """
    task_folder = Path(task_folder)
    match = re.match(r"^Task(\d+)_(.+)$", task_folder.name)
    if match is None:
        raise MSDConversionError(f"{task_folder}: expected a folder named TaskXX_Name (Decathlon layout)")
    meta_file = task_folder / "dataset.json"
    meta = load_json(meta_file)
    for key in ("modality", "labels", "training"):
        if key not in meta:
            raise MSDConversionError(f"{meta_file}: missing {key!r}; not a Decathlon dataset.json")
    dataset_id = int(match.group(1)) if dataset_id is None else int(dataset_id)
    if not 0 <= dataset_id <= 999:
        raise MSDConversionError(f"dataset id must be 0-999, got {dataset_id}")
    target = Path(output_root) / f"Dataset{dataset_id:03d}_{match.group(2)}"
    if target.exists():
        raise MSDConversionError(f"{target} already exists; remove it or pass another id")
    num_channels = len(meta["modality"])
    partial = target.with_name(f".{target.name}.partial")
    if partial.exists():
        shutil.rmtree(partial)
    for sub in ("imagesTr", "labelsTr"):
        (partial / sub).mkdir(parents=True)
    for entry in meta["training"]:
        image = task_folder / entry["image"]
        label = task_folder / entry["label"]
        case_id = _case_id(entry["image"])
        for f in (image, label):
            if not f.is_file():
                raise MSDConversionError(f"{f}: listed in {meta_file} but missing")
        _split_channels(image, partial / "imagesTr", case_id, num_channels)
        shutil.copyfile(label, partial / "labelsTr" / f"{case_id}.nii.gz")
    tests = [t if isinstance(t, str) else t.get("image") for t in meta.get("test", [])]
    tests = [t for t in tests if t and (task_folder / t).is_file()]
    if tests:
        (partial / "imagesTs").mkdir()
        for t in tests:
            _split_channels(task_folder / t, partial / "imagesTs", _case_id(t), num_channels)
    labels = {str(name): int(value) for value, name in meta["labels"].items()}
    if "background" not in labels:
        zero = [n for n, v in labels.items() if v == 0]
        if zero:
            labels = {("background" if v == 0 else n): v for n, v in labels.items()}
    dataset_json = {
        "channel_names": {str(k): v for k, v in meta["modality"].items()},
        "labels": dict(sorted(labels.items(), key=lambda kv: kv[1])),
        "numTraining": len(meta["training"]),
        "file_ending": ".nii.gz",
    }
    for key in ("name", "description", "reference", "licence", "release", "tensorImageSize"):
        if key in meta:
            dataset_json[key] = meta[key]
    save_json(dataset_json, partial / "dataset.json")
    partial.rename(target)
    return target
