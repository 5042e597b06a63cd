"""Memory per epoch: peak GPU memory on CUDA, resident memory of the process on the CPU."""

from __future__ import annotations

import resource

import torch

__all__ = ["memory_in_use_mb", "reset_peak_memory"]


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def memory_in_use_mb(device: torch.device) -> float:
    """Peak allocated GPU memory since the last reset (CUDA), else this process's current resident set (MiB)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * resource.getpagesize() / 2**20
    except OSError:  # not Linux: the peak is what the OS reports
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
