"""Sharing trained models as nnU-Net v2 zips: export (``nnUNetv2_export_model_to_zip``) and a safe install
(``nnUNetv2_install_pretrained_model_from_zip``)."""

from monai_nnunet.model_sharing.export import DEFAULT_EXPORT_CONFIGURATIONS, ModelExportError, export_pretrained_model
from monai_nnunet.model_sharing.install import UnsafeZipError, check_zip_members, install_model_from_zip_file
from monai_nnunet.model_sharing.nnunet_checkpoint import is_nnunet_layout, nnunet_loadable_checkpoint

__all__ = [
    "DEFAULT_EXPORT_CONFIGURATIONS",
    "ModelExportError",
    "UnsafeZipError",
    "check_zip_members",
    "export_pretrained_model",
    "install_model_from_zip_file",
    "is_nnunet_layout",
    "nnunet_loadable_checkpoint",
]
