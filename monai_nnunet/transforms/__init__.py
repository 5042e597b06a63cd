"""MONAI transforms of monai_nnunet."""

from monai_nnunet.transforms.blobs import LabelToBlobsd
from monai_nnunet.transforms.regions import LabelToRegionsd

__all__ = ["LabelToBlobsd", "LabelToRegionsd"]
