"""MONAI's ``DynUNet`` configured as nnU-Net's ``PlainConvUNet`` and returning nnU-Net's deep-supervision list.

Three things separate a stock ``DynUNet`` from nnU-Net's plain U-Net, and :class:`PlansDynUNet` changes only
those:

- deep supervision: ``DynUNet`` upsamples every head to full resolution and stacks them into one tensor; nnU-Net's
  loss wants a list of logits, each at its decoder stage's own resolution, highest resolution first. The heads
  are the same modules; only :meth:`PlansDynUNet.forward` differs.
- decoder kernels: the convolutions of ``DynUNet``'s decoder stage at resolution level ``l`` use the kernel of
  level ``l + 1``; nnU-Net's use level ``l``'s own kernel. Identical for isotropic kernels, not for plans such as
  ``[[1, 3, 3], [3, 3, 3], ...]``. :meth:`PlansDynUNet.get_upsamples` uses nnU-Net's.
- constructor: it takes the plans' ``arch_kwargs`` (nnU-Net's ``PlainConvUNet`` signature), so every network of
  this package is built the same way.

``DynUNet``'s encoder convolutions have no bias: nnU-Net's ``conv_bias`` is followed by instance normalisation,
which subtracts the per-channel mean, so such a bias has no effect and leaving it out is exact. The transposed
convolutions keep ``conv_bias`` (their output is concatenated and convolved with zero padding before any norm,
so that bias is not cancelled). Weights are initialised as nnU-Net's (He normal, slope 1e-2, zero biases).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, List

import torch
import torch.nn as nn
from monai.networks.blocks.dynunet_block import UnetUpBlock
from monai.networks.nets.dynunet import DynUNet, DynUNetSkipLayer
from torch.nn.modules.instancenorm import _InstanceNorm

from monai_nnunet.networks.config import describe_arguments
from monai_nnunet.networks.operators import resolve_operator
from monai_nnunet.networks.plans_architecture import spatial_dims_of
from monai_nnunet.networks.stage_plan import StagePlan, make_stage_plan

__all__ = ["PlansDynUNet"]

_LEAKY_SLOPE = 1e-2  # torch.nn.LeakyReLU's default, the one nnU-Net's plans rely on


class PlansDynUNet(DynUNet):
    """nnU-Net's plain U-Net as a MONAI ``DynUNet``, built from a plans ``architecture`` block.

    The arguments are those of nnU-Net's ``PlainConvUNet`` (the plans' ``arch_kwargs`` plus channels and
    deep supervision), with operators as classes; see :func:`monai_nnunet.networks.build_network` to build from a
    plans configuration directly.

    Args:
        input_channels: image channels.
        n_stages: resolution levels, bottleneck included; at least 3.
        features_per_stage: channels per stage.
        conv_op: ``nn.Conv2d`` or ``nn.Conv3d``.
        kernel_sizes: kernel per stage.
        strides: stride per stage (the first normally all ones).
        n_conv_per_stage: convolutions per encoder stage; must be 2 (``DynUNet``'s block).
        num_classes: output channels (segmentation heads).
        n_conv_per_stage_decoder: convolutions per decoder stage; must be 2.
        conv_bias: bias of the transposed convolutions (the biases before instance norm are exact no-ops and are
            left out).
        norm_op: an instance normalisation class (nnU-Net's default); its kwargs go to ``norm_op_kwargs``.
        norm_op_kwargs: e.g. ``{"eps": 1e-5, "affine": True}``.
        dropout_op: must be ``None`` (or a dropout with ``p == 0``); nnU-Net's plans never set one.
        dropout_op_kwargs: kwargs of the dropout.
        nonlin: ``nn.LeakyReLU`` (default slope 0.01) or ``nn.ReLU``.
        nonlin_kwargs: kwargs of the non-linearity.
        deep_supervision: initial value of the :attr:`deep_supervision` switch. The heads are always built (as
            nnU-Net builds its ``seg_layers``), so weights load whatever the switch.

    Forward:
        input ``(B, input_channels, H, W[, D])`` with each axis divisible by the product of the strides. In
        training mode with :attr:`deep_supervision` on, a list of ``n_stages - 1`` logits tensors
        ``(B, num_classes, H / s_l, W / s_l[, D / s_l])``, full resolution first, ``s_l`` the cumulative stride of
        level ``l``; otherwise one ``(B, num_classes, H, W[, D])`` tensor.

    Raises:
        ValueError: for plans this network cannot express (fewer than 3 stages, other than 2 convolutions per
            stage, a non-instance norm, dropout, another non-linearity).
    """

    def __init__(
        self,
        input_channels: int,
        n_stages: int,
        features_per_stage: int | Sequence[int],
        conv_op: type[nn.Module],
        kernel_sizes: int | Sequence[int | Sequence[int]],
        strides: int | Sequence[int | Sequence[int]],
        n_conv_per_stage: int | Sequence[int],
        num_classes: int,
        n_conv_per_stage_decoder: int | Sequence[int],
        conv_bias: bool = False,
        norm_op: type[nn.Module] | None = None,
        norm_op_kwargs: dict | None = None,
        dropout_op: type[nn.Module] | None = None,
        dropout_op_kwargs: dict | None = None,
        nonlin: type[nn.Module] | None = None,
        nonlin_kwargs: dict | None = None,
        deep_supervision: bool = False,
    ) -> None:
        init_kwargs = describe_arguments(locals())  # recorded in checkpoints: how to rebuild this network
        conv_op, norm_op, dropout_op, nonlin = (resolve_operator(k, v) for k, v in (
            ("conv_op", conv_op), ("norm_op", norm_op), ("dropout_op", dropout_op), ("nonlin", nonlin)))
        dims = spatial_dims_of(conv_op)
        plan = make_stage_plan(
            dims, n_stages, features_per_stage, kernel_sizes, strides, n_conv_per_stage, n_conv_per_stage_decoder
        )
        _check_expressible(plan)
        super().__init__(
            spatial_dims=dims,
            in_channels=int(input_channels),
            out_channels=int(num_classes),
            kernel_size=[list(k) for k in plan.kernel_sizes],
            strides=[list(s) for s in plan.strides],
            upsample_kernel_size=[list(s) for s in plan.strides[1:]],
            filters=list(plan.features),
            dropout=_dropout(dropout_op, dropout_op_kwargs),
            norm_name=_norm_name(norm_op, norm_op_kwargs),
            act_name=_act_name(nonlin, nonlin_kwargs),
            deep_supervision=True,
            deep_supr_num=plan.n_stages - 2,
            res_block=False,
            trans_bias=bool(conv_bias),
        )
        _make_skip_layers_scriptable(self.skip_layers)
        self.stage_plan: StagePlan = plan
        self.init_kwargs = init_kwargs
        self.num_classes = int(num_classes)
        self.deep_supervision = bool(deep_supervision)

    @property
    def deep_supervision(self) -> bool:
        """Whether training-mode forward returns the list of all decoder stages' logits."""
        return self.__dict__.get("_deep_supervision_on", False)

    @deep_supervision.setter
    def deep_supervision(self, enabled: bool) -> None:
        # DynUNet.__init__ assigns this before the skip layers exist; afterwards the lower heads are detached from
        # the skip layers while it is off, so no head is computed that nobody reads.
        self.__dict__["_deep_supervision_on"] = bool(enabled)
        skip = self.__dict__.get("_modules", {}).get("skip_layers")
        while isinstance(skip, DynUNetSkipLayer):
            if skip.super_head is not None:
                skip.heads = self.heads
                skip.write_heads = bool(enabled)
            skip = skip.next_layer

    def get_upsamples(self) -> nn.ModuleList:
        """Decoder stages, lowest resolution first, with nnU-Net's kernels (level ``l`` uses ``kernel_sizes[l]``)."""
        inp, out = self.filters[1:][::-1], self.filters[:-1][::-1]
        strides, kernel_size = self.strides[1:][::-1], self.kernel_size[:-1][::-1]
        return self.get_module_list(
            inp,
            out,
            kernel_size,
            strides,
            UnetUpBlock,
            self.upsample_kernel_size[::-1],
            trans_bias=self.trans_bias,
        )

    def forward_full_resolution(self, x: torch.Tensor) -> torch.Tensor:
        """The full-resolution logits ``(B, num_classes, *spatial)`` only (inference; TorchScript-compatible): the
        same modules as DynUNet's skip layers, called in the same order."""
        h = self.input_block(x)
        skips = [h]
        for down in self.downsamples:
            h = down(h)
            skips.append(h)
        h = self.bottleneck(h)
        for i, up in enumerate(self.upsamples):
            h = up(h, skips[len(skips) - 1 - i])
        return self.output_block(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        """Args: x ``(B, C_in, H, W[, D])``. Returns: logits, see the class docstring."""
        if not (self.training and self.deep_supervision):
            return self.forward_full_resolution(x)
        out = self.output_block(self.skip_layers(x))
        heads = list(self.heads)
        placeholder = torch.zeros(1)
        for i in range(len(self.heads)):  # the skip layers write here; keep no tensor of this pass alive
            self.heads[i] = placeholder
        return [out, *heads]


class _SkipLayer(DynUNetSkipLayer):
    """DynUNet's skip layer, TorchScript-compatible: the heads list always exists, a flag says whether to fill it
    (MONAI's ``Optional`` heads cannot be indexed in TorchScript)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        downout = self.downsample(x)
        nextout = self.next_layer(downout)
        upout = self.upsample(nextout, downout)
        if self.super_head is not None and self.write_heads and self.index > 0:
            self.heads[self.index - 1] = self.super_head(upout)
        return upout


# real types, not the strings of postponed annotations: TorchScript reads them
_SkipLayer.__annotations__ = {"heads": List[torch.Tensor], "write_heads": bool}


def _make_skip_layers_scriptable(skip: nn.Module) -> None:
    while isinstance(skip, DynUNetSkipLayer):
        skip.__class__ = _SkipLayer
        skip.write_heads = skip.super_head is not None and skip.heads is not None
        if skip.heads is None:
            skip.heads = []
        skip = skip.next_layer


def _check_expressible(plan: StagePlan) -> None:
    if plan.n_stages < 3:
        raise ValueError(f"PlansDynUNet needs at least 3 stages (DynUNet's minimum), the plans have {plan.n_stages}.")
    if set(plan.n_conv) != {2} or set(plan.n_conv_decoder) != {2}:
        raise ValueError(
            "PlansDynUNet (DynUNet's UnetBasicBlock) has exactly 2 convolutions per stage; the plans ask for "
            f"n_conv_per_stage={list(plan.n_conv)}, n_conv_per_stage_decoder={list(plan.n_conv_decoder)}."
        )


def _norm_name(norm_op: type[nn.Module] | None, norm_op_kwargs: dict | None) -> tuple[str, dict[str, Any]]:
    if not (isinstance(norm_op, type) and issubclass(norm_op, _InstanceNorm)):
        raise ValueError(
            f"PlansDynUNet supports instance normalisation (nnU-Net's default), got norm_op={norm_op!r}. "
            "The bias-free encoder convolutions are exact only before instance norm."
        )
    return ("instance", dict(norm_op_kwargs or {}))


def _act_name(nonlin: type[nn.Module] | None, nonlin_kwargs: dict | None) -> tuple[str, dict[str, Any]]:
    kwargs = dict(nonlin_kwargs or {})
    if nonlin is nn.LeakyReLU:
        kwargs.setdefault("negative_slope", _LEAKY_SLOPE)
        return ("leakyrelu", kwargs)
    if nonlin is nn.ReLU:
        return ("relu", kwargs)
    raise ValueError(f"PlansDynUNet supports nonlin torch.nn.LeakyReLU or torch.nn.ReLU, got {nonlin!r}.")


def _dropout(dropout_op: type[nn.Module] | None, dropout_op_kwargs: dict | None) -> None:
    p = float((dropout_op_kwargs or {}).get("p", 0.5 if dropout_op is not None else 0.0))
    if dropout_op is not None and p > 0:
        raise ValueError(
            "PlansDynUNet does not place dropout where nnU-Net does (DynUNet also drops after the transposed and "
            f"the output convolutions); the plans ask for dropout_op={dropout_op!r} with p={p}."
        )
    return None
