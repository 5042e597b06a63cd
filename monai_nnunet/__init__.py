"""monai_nnunet: nnU-Net v2's self-configuring segmentation pipeline as a MONAI extension."""

__version__ = "0.1.0"
