"""Names kept for bundles exported by earlier versions (their ``inference.yaml`` names
``monai_nnunet.training.validation.WholeCaseInferer``)."""

from monai_nnunet.inference.whole_case import WholeCaseInferer
from monai_nnunet.training.metrics import dice_from_counts, segmentation_counts

__all__ = ["WholeCaseInferer", "dice_from_counts", "segmentation_counts"]
