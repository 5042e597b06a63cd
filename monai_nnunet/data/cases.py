"""Whole cases of the preprocessed cache, for the case-level validation during training."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from monai_nnunet.data.previous_stage import load_previous_stage_seg
from monai_nnunet.preprocessing.cache import load_case

__all__ = ["WholeCaseDataset"]


class WholeCaseDataset(Dataset):
    """``{"image": (C, Z, Y, X) float32, "label": (1, Z, Y, X) int16, "case_id": str}`` per case of a
    configuration's cache (a ``DataLoader`` with ``batch_size=1`` adds the batch axis).

    Args:
        folder: the configuration's cache folder.
        case_ids: the cases, in order (e.g. the fold's validation cases).
        previous_stage_folder: a cascade stage: the previous stage's ``predicted_next_stage/<configuration>``
            folder; samples then also hold ``seg_prev`` ``(1, Z, Y, X)`` int16.
        transform: applied to each sample (a cascade stage: ``MoveSegAsOneHotToImaged``).
    """

    def __init__(self, folder: str | os.PathLike, case_ids: Sequence[str],
                 previous_stage_folder: str | os.PathLike | None = None, transform: Callable | None = None):
        self.folder = Path(folder)
        self.case_ids = list(case_ids)
        self.previous_stage_folder = None if previous_stage_folder is None else Path(previous_stage_folder)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.case_ids)

    def __getitem__(self, index: int) -> dict:
        case_id = self.case_ids[index]
        data, seg, _ = load_case(self.folder, case_id)
        sample = {"image": torch.from_numpy(np.array(data, dtype=np.float32)),
                  "label": torch.from_numpy(np.array(seg, dtype=np.int16)), "case_id": case_id}
        if self.previous_stage_folder is not None:
            sample["seg_prev"] = torch.from_numpy(load_previous_stage_seg(self.previous_stage_folder, case_id,
                                                                          data.shape[1:]))
        return self.transform(sample) if self.transform is not None else sample
