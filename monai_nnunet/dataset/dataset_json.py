"""``dataset.json``: channels, labels (or regions), ignore label, number of training cases, file ending."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Union

import numpy as np

from monai_nnunet.utils.files import load_json

__all__ = ["DatasetJsonError", "DatasetDescription", "check_consecutive_labels", "load_dataset_json"]

REQUIRED_KEYS = ("channel_names", "labels", "numTraining", "file_ending")

LabelOrRegion = Union[int, tuple]


class DatasetJsonError(ValueError):
    """``dataset.json`` is missing a key or declares labels nnU-Net cannot train on."""


@dataclass
class DatasetDescription:
    """The parsed content of a ``dataset.json``.

    Labels follow nnU-Net v2: ``labels`` maps names to integer values (``background`` must be 0), or to lists of
    values for region-based training (then ``regions_class_order`` is required). An ``ignore`` entry (or the
    ``ignore_label`` key) marks unannotated voxels; it must be the highest label value.
    """

    raw: dict
    source: str = "dataset.json"
    channel_names: dict = field(init=False)
    labels: dict = field(init=False)
    num_training: int = field(init=False)
    file_ending: str = field(init=False)
    regions_class_order: list | None = field(init=False)
    ignore_label: int | None = field(init=False)

    def __post_init__(self) -> None:
        d, src = self.raw, self.source
        if "channel_names" not in d and "modality" in d:
            d = dict(d)
            d["channel_names"] = d["modality"]  # nnU-Net v1 name, still accepted by v2
        missing = [k for k in REQUIRED_KEYS if k not in d]
        if missing:
            raise DatasetJsonError(f"{src}: missing required key(s) {missing}; required are {list(REQUIRED_KEYS)}")
        if not isinstance(d["channel_names"], Mapping) or not d["channel_names"]:
            raise DatasetJsonError(f"{src}: 'channel_names' must be a non-empty mapping like {{\"0\": \"CT\"}}")
        channel_keys = sorted(int(k) for k in d["channel_names"])
        if channel_keys != list(range(len(channel_keys))):
            raise DatasetJsonError(f"{src}: 'channel_names' keys must be 0..N-1, got {sorted(d['channel_names'])}")
        self.channel_names = {str(k): str(d["channel_names"][str(k)] if str(k) in d["channel_names"]
                                          else d["channel_names"][k]) for k in channel_keys}
        try:
            self.num_training = int(d["numTraining"])
        except (TypeError, ValueError):
            raise DatasetJsonError(f"{src}: 'numTraining' must be an integer, got {d['numTraining']!r}") from None
        self.file_ending = str(d["file_ending"])
        if not self.file_ending.startswith("."):
            raise DatasetJsonError(f"{src}: 'file_ending' must start with a dot (e.g. '.nii.gz'), got {self.file_ending!r}")
        self.labels = self._parse_labels(d["labels"], src)
        self.regions_class_order = d.get("regions_class_order")
        self.ignore_label = self._parse_ignore(d, src)
        if self.has_regions and self.regions_class_order is None:
            raise DatasetJsonError(f"{src}: labels declare regions (lists of values), so 'regions_class_order' is required")
        if self.has_regions and len(self.regions_class_order) != len(self.foreground_regions):
            raise DatasetJsonError(
                f"{src}: 'regions_class_order' has {len(self.regions_class_order)} entries but there are "
                f"{len(self.foreground_regions)} regions"
            )

    @staticmethod
    def _parse_labels(labels: Any, src: str) -> dict:
        if not isinstance(labels, Mapping) or not labels:
            raise DatasetJsonError(f"{src}: 'labels' must be a non-empty mapping of names to values")
        if "background" not in labels:
            raise DatasetJsonError(f"{src}: 'labels' must declare 'background': 0")
        parsed = {}
        for name, value in labels.items():
            if isinstance(value, (list, tuple)):
                if not value or not all(isinstance(v, int) or (isinstance(v, float) and v.is_integer()) for v in value):
                    raise DatasetJsonError(f"{src}: label {name!r} must be an integer or a list of integers, got {value!r}")
                parsed[name] = tuple(int(v) for v in value)
            elif isinstance(value, int) or (isinstance(value, float) and value.is_integer()) or (
                isinstance(value, str) and value.lstrip("-").isdigit()
            ):
                parsed[name] = int(value)
            else:
                raise DatasetJsonError(f"{src}: label {name!r} must be an integer or a list of integers, got {value!r}")
        if parsed["background"] != 0:
            raise DatasetJsonError(f"{src}: the background label must be 0, got {parsed['background']!r}")
        if any(v < 0 for r in parsed.values() for v in (r if isinstance(r, tuple) else (r,))):
            raise DatasetJsonError(f"{src}: label values must not be negative")
        return parsed

    def _parse_ignore(self, d: dict, src: str) -> int | None:
        in_labels = self.labels.get("ignore")
        in_key = d.get("ignore_label")
        if isinstance(in_labels, tuple):
            raise DatasetJsonError(f"{src}: the 'ignore' label must be a single integer, not a region")
        if in_key is not None:
            try:
                in_key = int(in_key)
            except (TypeError, ValueError):
                raise DatasetJsonError(f"{src}: 'ignore_label' must be an integer, got {in_key!r}") from None
        if in_labels is not None and in_key is not None and in_labels != in_key:
            raise DatasetJsonError(f"{src}: labels['ignore'] = {in_labels} but 'ignore_label' = {in_key}; they must agree")
        ignore = in_labels if in_labels is not None else in_key
        if ignore is not None:
            others = self.all_labels
            if others and ignore <= max(others):
                raise DatasetJsonError(
                    f"{src}: the ignore label ({ignore}) must be the highest label value; labels are {others}"
                )
        return ignore

    @property
    def num_channels(self) -> int:
        return len(self.channel_names)

    @property
    def has_regions(self) -> bool:
        return any(isinstance(v, tuple) and len(v) > 1 for k, v in self.labels.items() if k != "ignore")

    @property
    def has_ignore_label(self) -> bool:
        return self.ignore_label is not None

    @property
    def all_labels(self) -> list[int]:
        """Every declared label value except the ignore label, sorted."""
        values = set()
        for name, v in self.labels.items():
            if name == "ignore":
                continue
            values.update(v if isinstance(v, tuple) else (v,))
        return sorted(values)

    @property
    def foreground_labels(self) -> list[int]:
        return [v for v in self.all_labels if v != 0]

    @property
    def foreground_regions(self) -> list[LabelOrRegion]:
        """Regions (tuples of label values) for region-based training, else the foreground labels."""
        if not self.has_regions:
            return self.foreground_labels
        regions = []
        for name, v in self.labels.items():
            if name in ("ignore", "background"):
                continue
            regions.append(v if isinstance(v, tuple) else (v,))
        return regions

    @property
    def expected_label_values(self) -> list[int]:
        """Values a label file may contain: every declared label, plus the ignore label."""
        return self.all_labels + ([self.ignore_label] if self.has_ignore_label else [])

    @property
    def num_segmentation_heads(self) -> int:
        """Network outputs: one per region, or one per label including background."""
        return len(self.foreground_regions) if self.has_regions else len(self.all_labels)

    def label_names(self) -> dict[int, str]:
        """Maps each non-region label value to its name."""
        return {v: k for k, v in self.labels.items() if isinstance(v, int)}


def load_dataset_json(path: str | os.PathLike) -> DatasetDescription:
    """Loads and validates a ``dataset.json``.

    Raises:
        FileNotFoundError: when the file is absent.
        DatasetJsonError: when a key is missing or the labels are invalid; the message names the file.
    """
    path = Path(path)
    raw = load_json(path)
    if not isinstance(raw, dict):
        raise DatasetJsonError(f"{path}: expected a JSON object")
    return DatasetDescription(raw, source=str(path))


def check_consecutive_labels(description: DatasetDescription) -> list[int]:
    """Returns the label values that break the 0, 1, 2, ... sequence (empty when the labels are consecutive)."""
    labels = np.array(description.all_labels)
    return [int(v) for v, ok in zip(labels[1:], np.diff(labels) == 1) if not ok]
