"""Cases to predict: input folders in the raw layout's naming, the preprocessing chain for prediction, a torch
``Dataset`` that preprocesses in DataLoader workers, and cached (already preprocessed) cases.

Prediction preprocesses exactly as training did (``monai_nnunet.preprocessing``: read with ITK in nnU-Net's axis
order, transpose, crop to nonzero, normalise, resample) minus what only training needs (label resampling, foreground
sampling).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.transforms import Compose, DeleteItemsd

from monai_nnunet.dataset.dataset_json import DatasetDescription
from monai_nnunet.dataset.raw import CaseFiles
from monai_nnunet.planning.plans import ConfigurationManager, PlansManager
from monai_nnunet.data.previous_stage import load_previous_stage_seg
from monai_nnunet.preprocessing.cache import load_case
from monai_nnunet.transforms.cascade import seg_to_one_hot
from monai_nnunet.preprocessing.transforms import (
    CropToNonzerod,
    LoadNnunetCased,
    NormalizeByPlansd,
    ResampleToTargetSpacingd,
    TransposeSpatialAxesd,
)

__all__ = [
    "InputCaseError",
    "PreprocessingDataset",
    "inference_preprocessing",
    "iter_preprocessed_cases",
    "list_input_cases",
    "unwrap_transform_error",
]


class InputCaseError(ValueError):
    """An input case is incomplete (missing or extra channel files) or an input folder holds no cases."""


def unwrap_transform_error(error: BaseException) -> BaseException:
    """The original exception behind MONAI's ``RuntimeError("applying transform ...")`` wrappers."""
    while (isinstance(error, RuntimeError) and str(error).startswith("applying transform")
           and error.__cause__ is not None):
        error = error.__cause__
    return error


def list_input_cases(
    inputs: str | os.PathLike | Sequence[Sequence[str | os.PathLike]],
    dataset: DatasetDescription,
) -> list[CaseFiles]:
    """The cases of an input folder (``CASE_0000<ending>``, ``CASE_0001<ending>``, ...) or of explicit file lists.

    Args:
        inputs: a folder in the raw layout's naming, or one list of channel files per case (channel order).
        dataset: the model's dataset description (channels, file ending).

    Returns:
        The cases, sorted by id, each with one file per channel.

    Raises:
        FileNotFoundError: when the folder does not exist.
        InputCaseError: when the folder holds no case, an image file that does not follow the naming, or a case
            that lacks a channel or has one too many; the message names the case and the files.
    """
    ending = dataset.file_ending
    n = dataset.num_channels
    channel_list = ", ".join(f"_{int(k):04d} ({v})" for k, v in dataset.channel_names.items())
    if not isinstance(inputs, (str, os.PathLike)):
        cases = []
        for files in inputs:
            files = [Path(f) for f in files]
            if not files:
                raise InputCaseError("an input case has no files")
            name = files[0].name
            case_id = name[: -len(ending) - 5] if name.endswith(ending) and len(name) > len(ending) + 5 else name
            if len(files) != n:
                raise InputCaseError(f"case {case_id}: {len(files)} file(s) given but the model takes {n} channel(s): "
                                     f"{channel_list}")
            missing = [str(f) for f in files if not f.is_file()]
            if missing:
                raise InputCaseError(f"case {case_id}: missing file(s) {missing}")
            cases.append(CaseFiles(case_id, tuple(files)))
        return sorted(cases, key=lambda c: c.case_id)
    folder = Path(inputs)
    if not folder.is_dir():
        raise FileNotFoundError(f"input folder {folder} does not exist")
    pattern = re.compile(r"^(.+)_(\d{4})" + re.escape(ending) + "$")
    found: dict[str, set[int]] = {}
    misnamed = []
    for name in sorted(os.listdir(folder)):
        match = pattern.match(name)
        if match:
            found.setdefault(match.group(1), set()).add(int(match.group(2)))
        elif name.endswith(ending) and not name.startswith("."):
            misnamed.append(name)
    if found and misnamed:  # an image that would silently not be predicted
        raise InputCaseError(
            f"{folder}: {len(misnamed)} image file(s) do not follow the naming CASE_XXXX{ending} (one file per "
            f"channel: {channel_list}) and would not be predicted: {', '.join(misnamed[:10])}"
            + (" ..." if len(misnamed) > 10 else "") + "; rename them or move them out of the folder")
    if not found:
        others = sorted(os.listdir(folder))[:5]
        raise InputCaseError(
            f"{folder} holds no input image named CASE_XXXX{ending} (one file per channel: {channel_list})"
            + (f"; found e.g. {others}" if others else "; the folder is empty")
        )
    cases = []
    for case_id in sorted(found):
        channels = found[case_id]
        missing = [f"{case_id}_{c:04d}{ending}" for c in range(n) if c not in channels]
        if missing:
            raise InputCaseError(
                f"case {case_id}: missing channel file(s) {', '.join(missing)} in {folder}; the model takes {n} "
                f"channel(s): {channel_list}"
            )
        extra = [f"{case_id}_{c:04d}{ending}" for c in sorted(channels) if c >= n]
        if extra:
            raise InputCaseError(
                f"case {case_id}: file(s) {', '.join(extra)} in {folder} name channels the model does not have; it "
                f"takes {n} channel(s): {channel_list}"
            )
        cases.append(CaseFiles(case_id, tuple(folder / f"{case_id}_{c:04d}{ending}" for c in range(n))))
    return cases


def inference_preprocessing(plans: PlansManager, configuration: ConfigurationManager, with_loading: bool = True,
                            keep_label: bool = False) -> Compose:
    """The training preprocessing of one configuration, for images without labels.

    Sample in: ``{"image": [channel files], "case_id": str}`` (or loaded arrays with ``with_loading=False``). Out:
    ``image`` float32 ``(C, Z, Y, X)`` in the preprocessed space and ``properties``. The nonzero mask made while
    cropping serves the normalisation and is then dropped.

    With ``keep_label`` the sample's ``label`` (a cascade stage: the previous stage's segmentation file) is
    preprocessed with the image as nnU-Net does (transposed, cropped with -1 outside the nonzero region, resampled
    as a segmentation) and kept: ``label`` ``(1, Z, Y, X)``.
    """
    chain = [LoadNnunetCased()] if with_loading else []
    chain += [
        TransposeSpatialAxesd(["image", "label"], plans.transpose_forward),
        CropToNonzerod(),
        NormalizeByPlansd(configuration.normalization_schemes, configuration.use_mask_for_norm,
                          plans.foreground_intensity_properties_per_channel),
        *([] if keep_label else [DeleteItemsd("label")]),
        ResampleToTargetSpacingd(configuration.spacing, configuration.resampling_fn_data_kwargs,
                                 configuration.resampling_fn_seg_kwargs),
    ]
    return Compose(chain, map_items=False)


class PreprocessingDataset(torch.utils.data.Dataset):
    """Preprocesses input cases one by one (for a ``DataLoader`` whose workers run ahead of inference).

    Each item is ``{"case_id", "data" (C, Z, Y, X) float32 tensor, "properties", "error"}``; a case that fails
    (unreadable file, channels of different geometry) comes back with ``data=None`` and ``error`` naming the case,
    so the caller can stop with that message instead of a worker traceback.

    Args:
        cases: the cases (from :func:`list_input_cases`).
        plans: plans dict (or manager).
        configuration_name: the configuration to preprocess for.
        previous_stage_files: a cascade stage: each case's previous-stage segmentation file, by case id; it is
            preprocessed with the image and appended as one-hot channels (one per ``one_hot_labels``).
        one_hot_labels: the labels of those channels (the dataset's foreground labels).
    """

    def __init__(self, cases: Sequence[CaseFiles], plans: PlansManager | Mapping[str, Any], configuration_name: str,
                 previous_stage_files: Mapping[str, str | os.PathLike] | None = None,
                 one_hot_labels: Sequence[int] = ()):
        self.cases = list(cases)
        self.plans = plans.plans if isinstance(plans, PlansManager) else dict(plans)
        self.configuration_name = configuration_name
        self.previous_stage_files = None if previous_stage_files is None else \
            {k: str(v) for k, v in previous_stage_files.items()}
        self.one_hot_labels = [int(v) for v in one_hot_labels]
        self._chain: Compose | None = None

    def __len__(self) -> int:
        return len(self.cases)

    def __getitem__(self, index: int) -> dict:
        case = self.cases[index]
        if self._chain is None:
            plans = PlansManager(self.plans)
            self._chain = inference_preprocessing(plans, plans.get_configuration(self.configuration_name),
                                                  keep_label=self.previous_stage_files is not None)
        item = {"image": [str(f) for f in case.images], "case_id": case.case_id}
        if self.previous_stage_files is not None:
            item["label"] = self.previous_stage_files[case.case_id]
        try:
            sample = self._chain(item)
        except Exception as raised:  # reported in the parent with the case name; never a worker traceback
            e = unwrap_transform_error(raised)
            message = str(e).splitlines()[0] if str(e) else type(e).__name__
            if case.case_id not in message:
                message = f"case {case.case_id}: {message}"
            return {"case_id": case.case_id, "data": None, "properties": None,
                    "error": f"{type(e).__name__}: {message}"}
        image = np.asarray(sample["image"], dtype=np.float32)
        if self.previous_stage_files is not None:
            image = np.concatenate([image, seg_to_one_hot(np.asarray(sample["label"])[0], self.one_hot_labels)])
        data = torch.from_numpy(np.ascontiguousarray(image))
        return {"case_id": case.case_id, "data": data, "properties": sample["properties"], "error": None}


def iter_preprocessed_cases(folder: str | os.PathLike, case_ids: Iterable[str],
                            previous_stage_folder: str | os.PathLike | None = None,
                            one_hot_labels: Sequence[int] = ()) -> Iterator[dict]:
    """Yields cached cases as ``{"case_id", "data" (C, Z, Y, X) float32, "properties"}`` (for final validation).

    Args:
        folder: a configuration's preprocessed folder (``.../nnUNetPlans_3d_fullres``).
        case_ids: the cases to read, in order.
        previous_stage_folder: a cascade stage: the previous stage's ``predicted_next_stage/<configuration>``
            folder; its segmentation is appended to ``data`` as one channel per ``one_hot_labels``.
        one_hot_labels: the labels of those channels.

    Raises:
        CacheError: when a case is not in the cache.
        FileNotFoundError: when a case has no previous-stage segmentation.
    """
    for case_id in case_ids:
        data, _, properties = load_case(folder, case_id)
        data = np.array(data, dtype=np.float32)
        if previous_stage_folder is not None:
            seg = load_previous_stage_seg(previous_stage_folder, case_id, data.shape[1:])
            data = np.concatenate([data, seg_to_one_hot(seg[0], one_hot_labels)])
        yield {"case_id": case_id, "data": data, "properties": properties}
