"""Training data loading: batches of patches from the preprocessed cache, in background workers."""

from monai_nnunet.data.cases import WholeCaseDataset
from monai_nnunet.data.loader import (
    PatchBatchStream,
    PreprocessedCases,
    apply_per_sample,
    default_num_workers,
    make_patch_loader,
)

__all__ = ["PatchBatchStream", "PreprocessedCases", "WholeCaseDataset", "apply_per_sample", "default_num_workers",
           "make_patch_loader"]
