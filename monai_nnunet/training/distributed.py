"""One run over several processes (PyTorch DDP), started by ``torchrun`` or by ``-num_gpus N``.

Both launchers give every process torchrun's environment (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``,
``MASTER_ADDR``/``MASTER_PORT``); :func:`init_distributed` initialises the process group from it: NCCL on CUDA with
the device ``cuda:LOCAL_RANK``, gloo on the CPU. Global rank 0 is the only writer of the run's files.

Collectives wait at most ``MONAI_NNUNET_DDP_TIMEOUT`` seconds (default 1800) for the other ranks, so a rank that
dies where its launcher cannot see it (another machine) ends the run instead of leaving it waiting forever.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Sequence
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from monai_nnunet.utils.devices import resolve_device

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "DistributedSetupError",
    "barrier",
    "gather_objects",
    "distributed_device",
    "init_distributed",
    "is_distributed",
    "launched_world_size",
    "mean_over_ranks",
    "rank",
    "rank_batch_share",
    "rank_share",
    "shutdown_distributed",
    "split_batch",
    "world_size",
]

DEFAULT_TIMEOUT_S = 1800.0
T = TypeVar("T")


class DistributedSetupError(RuntimeError):
    """The process group cannot be set up from this process's environment."""


def launched_world_size() -> int:
    """``WORLD_SIZE`` of the launcher's environment (1 when the process was not started as one of several).

    Raises:
        DistributedSetupError: when ``WORLD_SIZE`` is not a positive integer.
    """
    value = os.environ.get("WORLD_SIZE", "1")
    try:
        size = int(value)
    except ValueError:
        size = 0
    if size < 1:
        raise DistributedSetupError(f"WORLD_SIZE={value!r} in the environment is not a positive integer")
    return size


def is_distributed() -> bool:
    """Whether this process is one rank of an initialised process group with more than one rank."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's global rank (0 without a process group)."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """The number of ranks of the run (1 without a process group)."""
    return dist.get_world_size() if is_distributed() else 1


def _timeout_s() -> float:
    value = os.environ.get("MONAI_NNUNET_DDP_TIMEOUT", str(DEFAULT_TIMEOUT_S))
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if seconds <= 0:
        raise DistributedSetupError(f"MONAI_NNUNET_DDP_TIMEOUT={value!r} is not a positive number of seconds")
    return seconds


def _local_rank() -> int:
    value = os.environ.get("LOCAL_RANK")
    if value is None:
        raise DistributedSetupError("WORLD_SIZE > 1 but LOCAL_RANK is not set: start the run with torchrun (or "
                                    "-num_gpus N), which sets both")
    return int(value)


def distributed_device(device: str | torch.device | None) -> torch.device:
    """The device this rank trains on: ``cuda`` becomes ``cuda:LOCAL_RANK`` when the run has several processes.

    Raises:
        DeviceUnavailableError: when the device is not available here.
        DistributedSetupError: when a rank's GPU does not exist.
    """
    resolved = resolve_device(device)
    if resolved.type != "cuda" or launched_world_size() == 1:
        return resolved
    local = _local_rank()
    if local >= torch.cuda.device_count():
        raise DistributedSetupError(f"LOCAL_RANK {local} but only {torch.cuda.device_count()} CUDA device(s) are "
                                    f"visible on this machine: start at most that many processes per machine")
    return torch.device("cuda", local)


def init_distributed(device: str | torch.device | None = None, required: bool = False) -> bool:
    """Initialises the process group from torchrun's environment when ``WORLD_SIZE`` > 1 (once per process).

    NCCL when ``device`` is CUDA (``torch.cuda.set_device(LOCAL_RANK)`` first), gloo otherwise; rendezvous through
    ``MASTER_ADDR``/``MASTER_PORT`` (``env://``), as torchrun and SLURM-started torchrun set them.

    Args:
        device: the run's device (``"cuda"``, ``"cpu"``, ...).
        required: refuse to run as a single process (the multi-GPU overlay).

    Returns:
        whether this process is one rank of several.

    Raises:
        DistributedSetupError: ``required`` without a launcher, or an incomplete launcher environment.
    """
    size = launched_world_size()
    if size == 1:
        if required:
            raise DistributedSetupError("configs/multi_gpu_train.yaml is for several processes: start it with "
                                        "torchrun --nproc_per_node N -m monai.bundle run ... (WORLD_SIZE is not set)")
        return False
    if dist.is_initialized():
        return dist.get_world_size() > 1
    missing = [k for k in ("RANK", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise DistributedSetupError(f"WORLD_SIZE={size} but {', '.join(missing)} not set: start the run with torchrun "
                                    f"(or -num_gpus N)")
    run_device = distributed_device(device)
    timeout = datetime.timedelta(seconds=_timeout_s())
    if run_device.type == "cuda":
        torch.cuda.set_device(run_device)
        dist.init_process_group("nccl", timeout=timeout)
    else:
        dist.init_process_group("gloo", timeout=timeout)
    return True


def shutdown_distributed() -> None:
    """Destroys the process group (if this process initialised one)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    """Waits until every rank arrives (nothing without a process group)."""
    if is_distributed():
        dist.barrier()


def mean_over_ranks(value: float) -> float:
    """The mean of ``value`` over the ranks (the value itself without a process group). Every rank must call it."""
    if not is_distributed():
        return float(value)
    backend = dist.get_backend()
    device = torch.device("cuda", torch.cuda.current_device()) if backend == "nccl" else torch.device("cpu")
    tensor = torch.tensor([float(value)], dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return float(tensor.item()) / dist.get_world_size()


def rank_share(items: Sequence[T]) -> list[T]:
    """This rank's share of ``items`` (every ``world_size``-th, from its rank): the ranks together see each item
    once. Every item without a process group, and on every rank when there are fewer items than ranks (each rank
    then sees all of them, so means over the ranks are unchanged)."""
    items = list(items)
    if len(items) < world_size():
        return items
    return items[rank()::world_size()]


def split_batch(global_batch_size: int, oversample_foreground_percent: float, rank: int, world_size: int
                ) -> tuple[int, float]:
    """One rank's batch size and oversampling share, so the ranks together sample as one batch would (nnU-Net's
    ``_set_batch_size_and_oversample``).

    Raises:
        ValueError: when the batch is smaller than the number of ranks.
    """
    if global_batch_size < world_size:
        raise ValueError(f"batch size {global_batch_size} is smaller than the number of processes ({world_size})")
    sizes = [global_batch_size // world_size] * world_size
    sizes = [s + 1 if (s * world_size + i) < global_batch_size else s for i, s in enumerate(sizes)]
    low = float(sum(sizes[:rank])) / global_batch_size
    high = float(sum(sizes[: rank + 1])) / global_batch_size
    if high < 1 - oversample_foreground_percent:
        share = 0.0
    elif low > 1 - oversample_foreground_percent:
        share = 1.0
    else:
        share = 1 - (((1 - oversample_foreground_percent) - low) / (high - low))
    return sizes[rank], float(share)


def rank_batch_share(global_batch_size: int, oversample_foreground_percent: float) -> tuple[int, float]:
    """This process's batch size and foreground-oversampling share: the whole batch in a single process,
    :func:`split_batch` under DDP."""
    if not is_distributed():
        return int(global_batch_size), float(oversample_foreground_percent)
    return split_batch(int(global_batch_size), float(oversample_foreground_percent), dist.get_rank(),
                       dist.get_world_size())


def gather_objects(value: Any) -> list[Any]:
    """``value`` of every rank, in rank order (``[value]`` without a process group). Every rank must call it."""
    if not is_distributed():
        return [value]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, value)
    return out
