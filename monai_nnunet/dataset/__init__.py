"""Raw datasets in the nnU-Net layout: dataset.json, reading/writing images, verification, fingerprint, splits."""

from monai_nnunet.dataset.dataset_json import DatasetDescription, DatasetJsonError, load_dataset_json
from monai_nnunet.dataset.naming import DatasetNotFoundError, resolve_dataset_name
from monai_nnunet.dataset.raw import CaseFiles, RawDataset, raw_dataset

__all__ = [
    "CaseFiles",
    "DatasetDescription",
    "DatasetJsonError",
    "DatasetNotFoundError",
    "RawDataset",
    "load_dataset_json",
    "raw_dataset",
    "resolve_dataset_name",
]
