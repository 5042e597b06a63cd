"""The training step: MONAI's ``SupervisedTrainer`` iteration, with the two things nnU-Net's step needs on top.

- :class:`NnUNetPrepareBatch` moves a batch of patches to the device: the image, the label (one tensor, or the
  list of deep-supervision targets), and, when augmentation runs on the training device, augments it there.
- :class:`NnUNetSupervisedTrainer` passes extra inputs of the loss that the loader computed (blob instances,
  region maps) to ``loss_function`` alongside the prediction and the target. Everything else (autocast, the grad
  scaler, backward, the optimiser step, MONAI's iteration events) is MONAI's own iteration; gradient clipping is
  the :class:`~monai_nnunet.training.handlers.GradientClipping` handler on ``BACKWARD_COMPLETED``.
- :func:`prepare_network` puts the network on the device, in ``DistributedDataParallel`` when a process group runs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.distributed as dist
from monai.engines import SupervisedTrainer
from monai.engines.utils import PrepareBatch
from torch import nn

from monai_nnunet.data import apply_per_sample

__all__ = ["NnUNetPrepareBatch", "NnUNetSupervisedTrainer", "full_resolution_output", "is_distributed",
           "prepare_network", "rank", "rank_batch_share", "split_batch"]


def _to(value: Any, device: torch.device | str | None, non_blocking: bool) -> Any:
    if isinstance(value, (list, tuple)):
        return [_to(v, device, non_blocking) for v in value]
    if isinstance(value, torch.Tensor):
        return value.to(device, non_blocking=non_blocking)
    return value


class NnUNetPrepareBatch(PrepareBatch):
    """``prepare_batch`` of the engines: ``(image, label)`` on the device from a batch of the patch loader.

    Args:
        device_transforms: a per-sample chain to run on the training device before the step (augmentation on the
            GPU, ``augmentation_device: device``); ``None``: the batch is already augmented.
        image_key, label_key: the batch's keys.

    Returns (when called):
        ``(image (B, C, *patch), label)`` where ``label`` is ``(B, 1, *patch)`` or the deep-supervision list.
    """

    def __init__(self, device_transforms: Callable | None = None, image_key: str = "image", label_key: str = "label"):
        self.device_transforms = device_transforms
        self.image_key = image_key
        self.label_key = label_key

    def __call__(self, batchdata: Mapping[str, Any], device: str | torch.device | None = None,
                 non_blocking: bool = False, **kwargs: Any) -> tuple[Any, Any]:
        if self.device_transforms is not None:
            batchdata = apply_per_sample(self.device_transforms, batchdata, [self.image_key, self.label_key],
                                         [self.image_key, self.label_key], device)
        return (_to(batchdata[self.image_key], device, non_blocking),
                _to(batchdata[self.label_key], device, non_blocking))


class NnUNetSupervisedTrainer(SupervisedTrainer):
    """MONAI's ``SupervisedTrainer`` whose loss also receives the loader's extra loss inputs.

    Args:
        loss_input_keys: batch keys passed to ``loss_function`` as keyword arguments of the same name (e.g.
            ``["instances"]`` for ``DC_and_Blob_CE_loss``); keys absent from a batch are left out.
        **kwargs: ``SupervisedTrainer``'s arguments.
    """

    def __init__(self, *args: Any, loss_input_keys: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.loss_input_keys = tuple(loss_input_keys)

    def _iteration(self, engine: SupervisedTrainer, batchdata: dict[str, Any]) -> dict:
        extras = {k: _to(batchdata[k], engine.state.device, engine.non_blocking)
                  for k in self.loss_input_keys if isinstance(batchdata, Mapping) and k in batchdata}
        if not extras:
            return super()._iteration(engine, batchdata)
        loss_function = engine.loss_function
        engine.loss_function = functools.partial(loss_function, **extras)
        try:
            return super()._iteration(engine, batchdata)
        finally:
            engine.loss_function = loss_function


def full_resolution_output(output: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(prediction, label)`` at full resolution from an evaluator's output (an Ignite ``Loss`` metric's
    ``output_transform``): the first entry of deep-supervision lists."""
    pred, label = output["pred"], output["label"]
    pred = pred[0] if isinstance(pred, (list, tuple)) else pred
    label = label[0] if isinstance(label, (list, tuple)) else label
    return pred, label


def is_distributed() -> bool:
    """Whether this process is one rank of an initialised process group with more than one rank."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if is_distributed() else 0


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


def prepare_network(network: nn.Module, device: str | torch.device) -> nn.Module:
    """The network on ``device``; wrapped in ``DistributedDataParallel`` when a process group runs.

    ``static_graph``: every iteration uses the same parameters (the lowest deep-supervision head has loss weight 0
    and is never used, every iteration alike).
    """
    device = torch.device(device)
    network = network.to(device)
    if is_distributed():
        network = nn.parallel.DistributedDataParallel(
            network, device_ids=[device.index] if device.type == "cuda" else None, static_graph=True)
    return network
