"""Runtime helpers: memory figures."""

from monai_nnunet.training.runtime_utils.memory import memory_in_use_mb, reset_peak_memory

__all__ = ["memory_in_use_mb", "reset_peak_memory"]
