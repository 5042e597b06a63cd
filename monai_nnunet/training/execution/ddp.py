"""Multi-GPU training with PyTorch DDP: ``nnUNetv2_train ... -num_gpus N`` spawns one process per GPU (NCCL; gloo on
the CPU), or the run is started by ``torchrun`` (``WORLD_SIZE``/``RANK`` set), e.g. through the bundle's
``configs/multi_gpu_train.yaml``. Every rank trains on its share of the global batch (nnU-Net's split of the batch
and of the foreground oversampling); rank 0 writes logs, checkpoints and the final validation."""

from __future__ import annotations

import argparse
import os
import socket

import torch
import torch.distributed as dist

from monai_nnunet.training.engine import is_distributed, split_batch

__all__ = ["distributed_context", "rank_batch_share", "run_ddp_training"]


def distributed_context() -> tuple[bool, int, int]:
    """``(is_distributed, rank, world_size)`` of the current process."""
    if is_distributed():
        return True, dist.get_rank(), dist.get_world_size()
    return False, 0, 1


#: a rank's batch size and oversampling share (nnU-Net's ``_set_batch_size_and_oversample``)
rank_batch_share = split_batch


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world_size: int, port: int, args: argparse.Namespace) -> None:
    from monai_nnunet.training.execution.run_training import run_training

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world_size),
                      LOCAL_RANK=str(rank))
    use_cuda = args.device == "cuda"
    if use_cuda:
        torch.cuda.set_device(rank)
    dist.init_process_group("nccl" if use_cuda else "gloo", rank=rank, world_size=world_size)
    try:
        run_training(
            args.dataset, args.configuration, args.fold, trainer=args.tr, plans=args.p,
            device=f"cuda:{rank}" if use_cuda else "cpu", continue_training=args.continue_training,
            pretrained_weights=args.pretrained_weights, only_validation=args.val, validate_with_best=args.val_best,
            export_npz=args.npz, overwrite=args.overwrite, save_checkpoints=not args.disable_checkpointing,
            num_epochs=args.epochs,
            iterations_per_epoch=args.iterations_per_epoch, val_every=args.val_every, lr_schedule=args.lr_schedule,
            num_workers=args.num_workers,
        )
    finally:
        dist.destroy_process_group()


def run_ddp_training(args: argparse.Namespace) -> None:
    """Spawns ``args.num_gpus`` ranks on this machine and trains with DDP.

    Raises:
        ValueError: when more GPUs are requested than are visible.
    """
    world_size = int(args.num_gpus)
    if args.device == "cuda" and torch.cuda.device_count() < world_size:
        raise ValueError(f"-num_gpus {world_size} but only {torch.cuda.device_count()} CUDA device(s) are visible")
    if args.device == "mps":
        raise ValueError("-num_gpus > 1 needs -device cuda (or cpu for testing), not mps")
    torch.multiprocessing.spawn(_worker, args=(world_size, _free_port(), args), nprocs=world_size, join=True)
