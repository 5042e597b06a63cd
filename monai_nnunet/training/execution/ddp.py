"""``nnUNetv2_train ... -num_gpus N``: starts N processes on this machine with torchrun's environment, so the run
is the same as ``torchrun --standalone --nproc_per_node N -m monai_nnunet train ...`` (each process joins the
process group in :func:`~monai_nnunet.training.distributed.init_distributed`). A rank that fails ends the run: the
other processes are stopped and the failing rank's message is raised here."""

from __future__ import annotations

import os
import socket
from typing import Any

import torch
import torch.multiprocessing as mp

from monai_nnunet.training.distributed import launched_world_size
from monai_nnunet.training.execution.run_training import run_training
from monai_nnunet.utils.errors import describe_error

__all__ = ["DistributedRunError", "run_ddp_training"]


class DistributedRunError(RuntimeError):
    """A rank of a multi-process run failed; the run was ended."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(local_rank: int, world_size: int, port: int, errors, training_kwargs: dict[str, Any]) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(local_rank),
                      WORLD_SIZE=str(world_size), LOCAL_RANK=str(local_rank), LOCAL_WORLD_SIZE=str(world_size))
    try:
        run_training(**training_kwargs)
    except BaseException as e:
        errors.put((local_rank, describe_error(e)))
        raise


def run_ddp_training(num_processes: int, **training_kwargs: Any) -> None:
    """Trains one run over ``num_processes`` ranks on this machine (one per GPU; gloo processes with
    ``device="cpu"``).

    Args:
        num_processes: the number of ranks (``-num_gpus``).
        training_kwargs: the arguments of :func:`~monai_nnunet.training.execution.run_training`.

    Raises:
        ValueError: more GPUs requested than visible, ``mps``, or ``-num_gpus`` inside a torchrun launch.
        DistributedRunError: a rank failed (with its message); the others were stopped.
    """
    world_size = int(num_processes)
    device = str(training_kwargs.get("device", "cuda"))
    if launched_world_size() > 1:
        raise ValueError("-num_gpus N under torchrun: torchrun has started the processes already; leave -num_gpus "
                         "out (torchrun's --nproc_per_node sets their number)")
    if device.startswith("cuda") and torch.cuda.device_count() < world_size:
        raise ValueError(f"-num_gpus {world_size} but only {torch.cuda.device_count()} CUDA device(s) are visible")
    if device == "mps":
        raise ValueError("-num_gpus > 1 needs -device cuda (or cpu for testing), not mps")
    errors = mp.get_context("spawn").SimpleQueue()
    try:
        mp.spawn(_worker, args=(world_size, _free_port(), errors, training_kwargs), nprocs=world_size, join=True)
    except (mp.ProcessRaisedException, mp.ProcessExitedException) as e:
        failed = errors.get() if not errors.empty() else (getattr(e, "error_index", "?"), str(e).strip())
        raise DistributedRunError(f"rank {failed[0]} of {world_size} failed, the run was ended: {failed[1]}") from None
