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
from monai.engines import SupervisedTrainer
from monai.engines.utils import PrepareBatch
from torch import nn

from monai_nnunet.data import apply_per_sample
from monai_nnunet.networks.fast_kernels import channels_last as to_channels_last
from monai_nnunet.networks.fast_kernels import use_group_norm_kernels
from monai_nnunet.training.distributed import DistributedSetupError, is_distributed

__all__ = ["NnUNetPrepareBatch", "NnUNetSupervisedTrainer", "full_resolution_output", "prepare_network"]

_UNUSED_PARAMETER_ERROR = "Expected to have finished reduction in the prior iteration"


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
        cpu_bf16: bfloat16 autocast of the step on the CPU (opt-in; MONAI's ``amp`` is CUDA's float16 autocast).
        **kwargs: ``SupervisedTrainer``'s arguments.
    """

    def __init__(self, *args: Any, loss_input_keys: Sequence[str] = (), cpu_bf16: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.loss_input_keys = tuple(loss_input_keys)
        self.cpu_bf16 = bool(cpu_bf16)

    def _iteration(self, engine: SupervisedTrainer, batchdata: dict[str, Any]) -> dict:
        try:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.cpu_bf16):
                return self._step(engine, batchdata)
        except RuntimeError as e:
            if _UNUSED_PARAMETER_ERROR not in str(e):
                raise
            raise DistributedSetupError(
                "under DDP a parameter of the network got no gradient in the previous step: set "
                "ddp_find_unused_parameters: true in the run's train.yaml (or give every network output a non-zero "
                "loss weight)") from None

    def _step(self, engine: SupervisedTrainer, batchdata: dict[str, Any]) -> dict:
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


def prepare_network(network: nn.Module, device: str | torch.device, find_unused_parameters: bool = False,
                    channels_last: bool = False, group_norm_kernels: bool = False, compile: bool = False
                    ) -> nn.Module:
    """The network on ``device``, with the run's speed options; wrapped in ``DistributedDataParallel`` when a
    process group runs.

    Args:
        network: the network.
        device: this rank's device.
        find_unused_parameters: DDP's search for parameters without a gradient in a step (a little slower). Not
            needed when every parameter takes part in the loss: the deep-supervision loss of the run gives the
            lowest head nnU-Net's weight 1e-6 under DDP instead of 0 for that reason.
        channels_last: the channels-last memory format (the same numbers; faster convolutions on the CPU).
        group_norm_kernels: instance norm by the group-norm kernel (the same normalisation; see
            :mod:`monai_nnunet.networks.fast_kernels`).
        compile: ``torch.compile`` the (wrapped) network.
    """
    device = torch.device(device)
    network = network.to(device)
    if group_norm_kernels:
        use_group_norm_kernels(network)
    if channels_last:
        network = to_channels_last(network)
    if is_distributed():
        network = nn.parallel.DistributedDataParallel(
            network, device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=bool(find_unused_parameters))
    if compile:
        network = torch.compile(network)
    return network
