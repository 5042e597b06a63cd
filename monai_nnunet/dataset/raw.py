"""The nnU-Net raw layout: ``imagesTr/CASE_XXXX.ext``, ``labelsTr/CASE.ext``, optional ``imagesTs/``, ``dataset.json``."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from monai_nnunet import paths
from monai_nnunet.dataset.dataset_json import DatasetDescription, load_dataset_json
from monai_nnunet.dataset.naming import resolve_dataset_name

__all__ = ["CaseFiles", "RawDataset", "list_cases_in_folder", "raw_dataset"]


@dataclass(frozen=True)
class CaseFiles:
    """The files of one case: one image per channel (in channel order) and, for training cases, a label."""

    case_id: str
    images: tuple[Path, ...]
    label: Path | None = None


def _channel_pattern(file_ending: str) -> re.Pattern:
    return re.compile(r"^(.+)_(\d{4})" + re.escape(file_ending) + "$")


def list_cases_in_folder(folder: str | os.PathLike, file_ending: str, num_channels: int) -> dict[str, CaseFiles]:
    """Groups ``CASE_XXXX<file_ending>`` files of a folder into cases.

    Every case lists the files it should have for ``num_channels`` channels, whether they exist or not, so a
    missing channel surfaces as a missing file naming the case (see ``verify``).

    Returns:
        Case id -> ``CaseFiles``, sorted by case id.
    """
    folder = Path(folder)
    pattern = _channel_pattern(file_ending)
    case_ids = set()
    for name in os.listdir(folder):
        match = pattern.match(name)
        if match:
            case_ids.add(match.group(1))
    return {
        cid: CaseFiles(cid, tuple(folder / f"{cid}_{c:04d}{file_ending}" for c in range(num_channels)))
        for cid in sorted(case_ids)
    }


@dataclass
class RawDataset:
    """A dataset in the nnU-Net raw layout.

    Args:
        folder: the ``DatasetXXX_Name`` folder.
    """

    folder: Path

    def __post_init__(self) -> None:
        self.folder = Path(self.folder)
        if not self.folder.is_dir():
            raise FileNotFoundError(f"Raw dataset folder {self.folder} does not exist")
        self.description: DatasetDescription = load_dataset_json(self.folder / "dataset.json")

    @property
    def name(self) -> str:
        return self.folder.name

    def training_cases(self) -> dict[str, CaseFiles]:
        """Training cases with their image and label files.

        Uses the explicit ``dataset`` mapping of dataset.json when present (nnU-Net v2 allows it), else
        ``imagesTr``/``labelsTr``.

        Raises:
            FileNotFoundError: when ``imagesTr`` is missing.
        """
        desc = self.description
        explicit = desc.raw.get("dataset")
        if explicit:
            cases = {}
            for cid in sorted(explicit):
                entry = explicit[cid]
                images = tuple(self._resolve(p) for p in entry["images"])
                cases[cid] = CaseFiles(cid, images, self._resolve(entry["label"]))
            return cases
        images_dir = self.folder / "imagesTr"
        if not images_dir.is_dir():
            raise FileNotFoundError(f"{images_dir} does not exist: a raw dataset needs imagesTr/ and labelsTr/")
        cases = list_cases_in_folder(images_dir, desc.file_ending, desc.num_channels)
        labels_dir = self.folder / "labelsTr"
        return {
            cid: CaseFiles(cid, c.images, labels_dir / f"{cid}{desc.file_ending}") for cid, c in cases.items()
        }

    def test_cases(self) -> dict[str, CaseFiles]:
        """Cases of ``imagesTs`` (empty when the folder is absent)."""
        folder = self.folder / "imagesTs"
        if not folder.is_dir():
            return {}
        return list_cases_in_folder(folder, self.description.file_ending, self.description.num_channels)

    def _resolve(self, p: str) -> Path:
        p = Path(os.path.expandvars(p))
        return p if p.is_absolute() else (self.folder / p).resolve()


def raw_dataset(dataset: int | str) -> RawDataset:
    """Opens ``$nnUNet_raw/DatasetXXX_Name`` for a dataset id or name.

    Raises:
        MissingEnvironmentVariableError: when ``nnUNet_raw`` is unset.
        DatasetNotFoundError: when no dataset matches.
    """
    return RawDataset(paths.nnunet_raw() / resolve_dataset_name(dataset))
