"""Compound losses: nnU-Net v2's Dice + CE and Dice + BCE, and Dice + CE with blob or region Dice."""

from __future__ import annotations

import torch
import torch.nn as nn
from torch.nn.modules.loss import _Loss

from monai_nnunet.losses._utils import (
    _recorded_arguments,
    _check_index_values,
    _check_label_values,
    _check_probs_input,
    _match_map,
    _softmax_channels,
    _zero_with_grad,
)
from monai_nnunet.losses.blob_dice import BlobDiceLoss
from monai_nnunet.losses.dice import SoftDiceLoss, _one_hot_range
from monai_nnunet.losses.region_dice import RegionDiceLoss

__all__ = [
    "RobustCrossEntropyLoss",
    "DC_and_CE_loss",
    "DC_and_BCE_loss",
    "DC_and_Blob_CE_loss",
    "DC_and_Region_CE_loss",
]


class RobustCrossEntropyLoss(nn.CrossEntropyLoss):
    """
    ``torch.nn.CrossEntropyLoss`` that takes nnU-Net's label maps (as nnU-Net v2's class of that name).

    ``input`` is logits (B, C, H, W[, D]); ``target`` an integer label map (B, 1, H, W[, D]) or
    (B, H, W[, D]) of any numeric dtype -- the channel axis is squeezed and the labels cast to
    int64. The logits are cast to float32, so the loss is safe under float16/bfloat16 autocast.
    Constructor arguments are those of ``torch.nn.CrossEntropyLoss``.
    """

    def __init__(
        self,
        weight: torch.Tensor | None = None,
        size_average: bool | None = None,
        ignore_index: int = -100,
        reduce: bool | None = None,
        reduction: str = "mean",
        label_smoothing: float = 0.0,
    ) -> None:
        """
        Args:
            weight, size_average, ignore_index, reduce, reduction, label_smoothing: as
                ``torch.nn.CrossEntropyLoss``; recorded in ``init_kwargs``.
        """
        super().__init__(weight, size_average, ignore_index, reduce, reduction, label_smoothing)
        self.init_kwargs = _recorded_arguments(locals())  # how to rebuild this loss (a run's bundle)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """
        Args:
            input: logits (B, C, H, W[, D]).
            target: label map (B, 1, H, W[, D]) or (B, H, W[, D]).

        Returns:
            the cross-entropy, reduced as ``reduction`` says.

        Raises:
            ValueError: when ``target`` has a channel axis of size other than 1.
        """
        if target.ndim == input.ndim:
            if target.shape[1] != 1:
                raise ValueError(
                    f"target must be a label map (B, 1, *spatial) or (B, *spatial), got shape {tuple(target.shape)}."
                )
            target = target[:, 0]
        return super().forward(input.float(), target.long())


def _copy_kwargs(kwargs: dict | None, name: str) -> dict:
    if kwargs is None:
        return {}
    if not isinstance(kwargs, dict):
        raise ValueError(f"{name} must be a dict of keyword arguments or None, got {type(kwargs).__name__}.")
    return dict(kwargs)


def _no_nonlin(kwargs: dict, name: str, owner: str, nonlin: str) -> dict:
    if "apply_nonlin" in kwargs:
        raise ValueError(f"{name} must not set apply_nonlin: {owner} applies the {nonlin} itself.")
    return kwargs


class DC_and_CE_loss(_Loss):
    """
    nnU-Net v2's default loss: ``weight_ce * CE + weight_dice * SoftDice`` on softmax outputs.

    ``input`` is logits (B, C, H, W[, D]) and ``target`` an integer label map (B, 1, H, W[, D])
    or (B, H, W[, D]) with values in ``[0, C)``. The Dice is :class:`SoftDiceLoss` (softmax,
    background dropped after it, smooth 1e-5 by default, so the Dice term lies in ``[-1, 0]``),
    the CE is :class:`RobustCrossEntropyLoss`.

    With ``ignore_label``, voxels carrying that label are excluded from both terms (Dice via a
    loss mask, CE via ``ignore_index``); a batch without any annotated voxel skips the CE (it
    would be 0/0) and gives a finite loss.

    Example (nnU-Net's trainer settings)::

        loss = DC_and_CE_loss({"batch_dice": True, "smooth": 1e-5, "do_bg": False}, {})
    """

    #: check target values on every call (a host synchronisation each); see ``set_value_checks``
    check_values: bool = True

    def __init__(
        self,
        soft_dice_kwargs: dict | None = None,
        ce_kwargs: dict | None = None,
        weight_ce: float = 1.0,
        weight_dice: float = 1.0,
        ignore_label: int | None = None,
    ) -> None:
        """
        Args:
            soft_dice_kwargs: keyword arguments of :class:`SoftDiceLoss` (``batch_dice``,
                ``do_bg``, ``smooth``, ``ddp``); the softmax is applied here, so not
                ``apply_nonlin``. None is ``{}``.
            ce_kwargs: keyword arguments of ``torch.nn.CrossEntropyLoss`` (``weight``,
                ``label_smoothing``, ...). None is ``{}``. The dict is copied, not modified.
            weight_ce: weight of the CE term; 0 skips computing it.
            weight_dice: weight of the Dice term; 0 skips computing it.
            ignore_label: label value of unannotated voxels, or None.

        Raises:
            ValueError: when a kwargs argument is not a dict or sets ``apply_nonlin``.
        """
        super().__init__()
        self.init_kwargs = _recorded_arguments(locals())  # how to rebuild this loss (a run's bundle)
        soft_dice_kwargs = _no_nonlin(
            _copy_kwargs(soft_dice_kwargs, "soft_dice_kwargs"), "soft_dice_kwargs", type(self).__name__, "softmax"
        )
        ce_kwargs = _copy_kwargs(ce_kwargs, "ce_kwargs")
        if ignore_label is not None:
            ce_kwargs["ignore_index"] = int(ignore_label)
        self.weight_dice = float(weight_dice)
        self.weight_ce = float(weight_ce)
        self.ignore_label = None if ignore_label is None else int(ignore_label)
        self.soft_dice_kwargs = soft_dice_kwargs
        self.ce = RobustCrossEntropyLoss(**ce_kwargs)
        self.dc = SoftDiceLoss(apply_nonlin=None, **soft_dice_kwargs)

    def _check_inputs(self, net_output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Check logits and label map; returns the label map as int64 (B, 1, *spatial)."""
        _check_probs_input(net_output, "net_output")
        num_classes = net_output.shape[1]
        if self.weight_dice != 0 and not self.dc.do_bg and num_classes < 2:
            raise ValueError(
                f"net_output must have at least 2 channels when do_bg=False (channel 0 is dropped), got {num_classes}."
            )
        target = _match_map(net_output, target, "target", (1,))
        if self.check_values:
            _check_label_values(target, num_classes, self.ignore_label)
        return target.long()

    def _dc_ce(
        self, net_output: torch.Tensor, probs: torch.Tensor | None, target: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(weighted CE + Dice, annotated-voxel mask or None) for checked inputs."""
        if self.ignore_label is not None:
            mask = target != self.ignore_label
            target_dice = torch.where(mask, target, torch.zeros_like(target))
        else:
            mask, target_dice = None, target

        result = _zero_with_grad(net_output)
        if self.weight_dice != 0:
            if probs is None:
                probs = _softmax_channels(net_output)
            result = result + self.weight_dice * self.dc._dice(probs, target_dice, mask)
        if self.weight_ce != 0:
            ce = self.ce(net_output, target)
            if mask is not None:
                # nnU-Net leaves the CE out when nothing is annotated (its mean would be 0/0); chosen on the device,
                # not with a host synchronisation (the CE's gradient is 0 there anyway)
                ce = torch.where(mask.any(), ce, torch.zeros((), dtype=ce.dtype, device=ce.device))
            result = result + self.weight_ce * ce
        return result, mask

    def forward(self, net_output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """
        Args:
            net_output: logits (B, C, H, W[, D]).
            target: label map (B, 1, H, W[, D]) or (B, H, W[, D]), values in ``[0, C)`` or
                ``ignore_label``.

        Returns:
            a scalar float32 tensor.

        Raises:
            ValueError: when ``net_output`` is not (B, C, *spatial), ``target`` does not match it
                in batch size or spatial shape, has more than one channel, or holds labels outside
                ``[0, C)`` other than ``ignore_label``.
        """
        target = self._check_inputs(net_output, target)
        return self._dc_ce(net_output, None, target)[0]


class DC_and_BCE_loss(_Loss):
    """
    nnU-Net v2's loss for region-based training: ``weight_ce * BCE + weight_dice * SoftDice`` on sigmoids.

    ``input`` is logits (B, R, H, W[, D]), one channel per region, each passed through a sigmoid
    (no softmax: regions may overlap). ``target`` is (B, R, H, W[, D]) with values in ``[0, 1]``
    (bool or numeric), one channel per region; with ``use_ignore_label`` it has one channel more,
    (B, R + 1, H, W[, D]), the last being the ignore mask (1 where unannotated).

    The Dice is :class:`SoftDiceLoss` with ``do_bg=True`` unless ``soft_dice_kwargs`` says
    otherwise (every channel is a region). As in nnU-Net v2, the BCE is the mean over all
    elements without ignore mask, and with it the sum over regions and annotated voxels divided
    by the number of annotated voxels.
    """

    #: check target values on every call (a host synchronisation each); see ``set_value_checks``
    check_values: bool = True

    def __init__(
        self,
        bce_kwargs: dict | None = None,
        soft_dice_kwargs: dict | None = None,
        weight_ce: float = 1.0,
        weight_dice: float = 1.0,
        use_ignore_label: bool = False,
    ) -> None:
        """
        Args:
            bce_kwargs: keyword arguments of ``torch.nn.BCEWithLogitsLoss`` (``pos_weight``, ...).
                None is ``{}``. The dict is copied, not modified.
            soft_dice_kwargs: keyword arguments of :class:`SoftDiceLoss`, not ``apply_nonlin``;
                ``do_bg`` defaults to True here.
            weight_ce: weight of the BCE term; 0 skips computing it.
            weight_dice: weight of the Dice term; 0 skips computing it.
            use_ignore_label: if True, the last target channel is the ignore mask.

        Raises:
            ValueError: when a kwargs argument is not a dict or sets ``apply_nonlin``.
        """
        super().__init__()
        self.init_kwargs = _recorded_arguments(locals())  # how to rebuild this loss (a run's bundle)
        bce_kwargs = _copy_kwargs(bce_kwargs, "bce_kwargs")
        dice_kwargs = _copy_kwargs(soft_dice_kwargs, "soft_dice_kwargs")
        soft_dice_kwargs = {"do_bg": True, **_no_nonlin(dice_kwargs, "soft_dice_kwargs", "DC_and_BCE_loss", "sigmoid")}
        if use_ignore_label:
            bce_kwargs["reduction"] = "none"
        self.weight_dice = float(weight_dice)
        self.weight_ce = float(weight_ce)
        self.use_ignore_label = bool(use_ignore_label)
        self.ce = nn.BCEWithLogitsLoss(**bce_kwargs)
        self.dc = SoftDiceLoss(apply_nonlin=None, **soft_dice_kwargs)

    def forward(self, net_output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """
        Args:
            net_output: logits (B, R, H, W[, D]).
            target: region target (B, R, H, W[, D]), or (B, R + 1, H, W[, D]) with
                ``use_ignore_label``, values in ``[0, 1]``.

        Returns:
            a scalar float32 tensor.

        Raises:
            ValueError: when ``net_output`` is not (B, R, *spatial), ``target`` does not match
                it in batch size, spatial shape or channel count, or holds values outside
                ``[0, 1]``; or ``do_bg`` is False with a single region channel.
        """
        _check_probs_input(net_output, "net_output")
        n_regions = net_output.shape[1]
        if self.weight_dice != 0 and not self.dc.do_bg and n_regions < 2:
            raise ValueError(
                f"net_output must have at least 2 channels when do_bg=False (channel 0 is dropped), got {n_regions}."
            )
        expected = n_regions + 1 if self.use_ignore_label else n_regions
        if not isinstance(target, torch.Tensor) or target.ndim != net_output.ndim:
            raise ValueError(
                f"target must be a region target (B, {expected}, *spatial)"
                + (" with the ignore mask as last channel" if self.use_ignore_label else "")
                + f" for net_output of shape {tuple(net_output.shape)}, got "
                + (f"shape {tuple(target.shape)}." if isinstance(target, torch.Tensor) else f"{type(target).__name__}.")
            )
        _match_map(net_output, target, "target", (expected,))
        lo, hi = _one_hot_range(target) if self.check_values else (0.0, 1.0)
        if lo < 0 or hi > 1:
            raise ValueError(f"target must hold region memberships in [0, 1], found values in [{lo:g}, {hi:g}].")

        if self.use_ignore_label:
            if target.dtype == torch.bool:
                mask = ~target[:, -1:]
            else:
                mask = (1 - target[:, -1:]).bool()
            target_regions = target[:, :-1]
        else:
            mask, target_regions = None, target

        result = _zero_with_grad(net_output)
        if self.weight_dice != 0:
            probs = torch.sigmoid(net_output.float())
            result = result + self.weight_dice * self.dc._dice(probs, target_regions, mask)
        if self.weight_ce != 0:
            target_float = target_regions.float()
            if mask is not None:
                ce_loss = (self.ce(net_output.float(), target_float) * mask).sum() / torch.clip(mask.sum(), min=1e-8)
            else:
                ce_loss = self.ce(net_output.float(), target_float)
            result = result + self.weight_ce * ce_loss
        return result


def _inherit(extra_kwargs: dict | None, name: str, soft_dice_kwargs: dict, owner: str) -> dict:
    """Kwargs of the extra Dice term: ``batch_dice`` and ``smooth`` default to those of the global Dice."""
    kwargs = _no_nonlin(_copy_kwargs(extra_kwargs, name), name, owner, "softmax")
    for key in ("batch_dice", "smooth"):
        if key in soft_dice_kwargs:
            kwargs.setdefault(key, soft_dice_kwargs[key])
    return kwargs


def _same_ignore(kwargs: dict, ignore_label: int | None, name: str) -> dict:
    if "ignore_label" in kwargs and kwargs["ignore_label"] != ignore_label:
        raise ValueError(
            f"{name}['ignore_label'] ({kwargs['ignore_label']}) must equal ignore_label ({ignore_label}); "
            "set ignore_label on the compound loss only."
        )
    kwargs["ignore_label"] = ignore_label
    return kwargs


class DC_and_Blob_CE_loss(DC_and_CE_loss):
    """
    Global Dice + CE + blob Dice: ``weight_ce * CE + weight_dice * SoftDice + weight_blob * BlobDice``.

    The first two terms are :class:`DC_and_CE_loss`, the third :class:`BlobDiceLoss`, all on the
    same softmax (computed once). ``batch_dice`` (and ``smooth``) of ``soft_dice_kwargs`` apply
    to the blob term too unless ``blob_kwargs`` sets them, so the document's example
    ``DC_and_Blob_CE_loss({'batch_dice': True}, {})`` uses batch Dice for both Dice terms.
    ``ignore_label`` voxels are left out of all three terms.

    ``forward(net_output, target, instances=None)``: pass the instance map of ``LabelToBlobsd``
    as ``instances`` to keep connected-component labelling out of the training step.
    """

    def __init__(
        self,
        soft_dice_kwargs: dict | None = None,
        ce_kwargs: dict | None = None,
        weight_ce: float = 1.0,
        weight_dice: float = 1.0,
        weight_blob: float = 1.0,
        blob_kwargs: dict | None = None,
        ignore_label: int | None = None,
    ) -> None:
        """
        Args:
            soft_dice_kwargs: keyword arguments of :class:`SoftDiceLoss` (not ``apply_nonlin``).
            ce_kwargs: keyword arguments of ``torch.nn.CrossEntropyLoss``.
            weight_ce: weight of the CE term; 0 skips it.
            weight_dice: weight of the global Dice term; 0 skips it.
            weight_blob: weight of the blob Dice term; 0 skips it.
            blob_kwargs: keyword arguments of :class:`BlobDiceLoss` (``include_background``,
                ``connectivity``, ``batch_dice``, ``smooth``), not ``apply_nonlin``.
            ignore_label: label value of unannotated voxels, or None.

        Raises:
            ValueError: when a kwargs argument is not a dict, sets ``apply_nonlin``, or
                ``blob_kwargs`` sets another ``ignore_label``.
        """
        super().__init__(soft_dice_kwargs, ce_kwargs, weight_ce, weight_dice, ignore_label)
        self.init_kwargs = _recorded_arguments(locals())  # how to rebuild this loss (a run's bundle)
        kwargs = _inherit(blob_kwargs, "blob_kwargs", self.soft_dice_kwargs, type(self).__name__)
        kwargs = _same_ignore(kwargs, self.ignore_label, "blob_kwargs")
        self.weight_blob = float(weight_blob)
        self.blob = BlobDiceLoss(apply_nonlin=None, **kwargs)

    def forward(  # type: ignore[override]
        self, net_output: torch.Tensor, target: torch.Tensor, instances: torch.Tensor | None = None
    ) -> torch.Tensor:
        """
        Args:
            net_output: logits (B, C, H, W[, D]).
            target: label map (B, 1, H, W[, D]) or (B, H, W[, D]).
            instances: optional instance map (B, 1, H, W[, D]) or (B, H, W[, D]), see
                :meth:`BlobDiceLoss.forward`.

        Returns:
            a scalar float32 tensor.

        Raises:
            ValueError: as :meth:`DC_and_CE_loss.forward`, and when ``instances`` does not match
                ``net_output`` or holds negative or non-integer ids.
        """
        target = self._check_inputs(net_output, target)
        max_id = None
        if self.weight_blob != 0 and instances is not None:
            instances = _match_map(net_output, instances, "instances", (1,))
            max_id = _check_index_values(instances, "instances")
        probs = _softmax_channels(net_output) if (self.weight_dice != 0 or self.weight_blob != 0) else None
        result, _ = self._dc_ce(net_output, probs, target)
        if self.weight_blob != 0:
            result = result + self.weight_blob * self.blob._blob_loss(probs, target, instances, max_id)
        return result


class DC_and_Region_CE_loss(DC_and_CE_loss):
    """
    Global Dice + CE + region Dice: ``weight_ce * CE + weight_dice * SoftDice + weight_region * RegionDice``.

    The first two terms are :class:`DC_and_CE_loss`, the third :class:`RegionDiceLoss`, all on
    the same softmax (computed once). ``batch_dice`` (and ``smooth``) of ``soft_dice_kwargs``
    apply to the region term too unless ``region_kwargs`` sets them. ``ignore_label`` voxels are
    left out of all three terms.

    ``forward(net_output, target, regions=None)``: pass the region map of ``LabelToRegionsd`` as
    ``regions`` to keep the region computation out of the training step.
    """

    def __init__(
        self,
        soft_dice_kwargs: dict | None = None,
        ce_kwargs: dict | None = None,
        weight_ce: float = 1.0,
        weight_dice: float = 1.0,
        weight_region: float = 1.0,
        region_kwargs: dict | None = None,
        ignore_label: int | None = None,
    ) -> None:
        """
        Args:
            soft_dice_kwargs: keyword arguments of :class:`SoftDiceLoss` (not ``apply_nonlin``).
            ce_kwargs: keyword arguments of ``torch.nn.CrossEntropyLoss``.
            weight_ce: weight of the CE term; 0 skips it.
            weight_dice: weight of the global Dice term; 0 skips it.
            weight_region: weight of the region Dice term; 0 skips it.
            region_kwargs: keyword arguments of :class:`RegionDiceLoss` (``regions``,
                ``region_weights``, ``boundary_width``, ``include_background``, ``connectivity``,
                ``batch_dice``, ``smooth``), not ``apply_nonlin``.
            ignore_label: label value of unannotated voxels, or None.

        Raises:
            ValueError: when a kwargs argument is not a dict, sets ``apply_nonlin``, or
                ``region_kwargs`` sets another ``ignore_label``; and as :class:`RegionDiceLoss`.
        """
        super().__init__(soft_dice_kwargs, ce_kwargs, weight_ce, weight_dice, ignore_label)
        self.init_kwargs = _recorded_arguments(locals())  # how to rebuild this loss (a run's bundle)
        kwargs = _inherit(region_kwargs, "region_kwargs", self.soft_dice_kwargs, type(self).__name__)
        kwargs = _same_ignore(kwargs, self.ignore_label, "region_kwargs")
        self.weight_region = float(weight_region)
        self.region = RegionDiceLoss(apply_nonlin=None, **kwargs)

    def forward(  # type: ignore[override]
        self, net_output: torch.Tensor, target: torch.Tensor, regions: torch.Tensor | None = None
    ) -> torch.Tensor:
        """
        Args:
            net_output: logits (B, C, H, W[, D]).
            target: label map (B, 1, H, W[, D]) or (B, H, W[, D]).
            regions: optional region map (B, 1 or C, H, W[, D]), see :meth:`RegionDiceLoss.forward`.

        Returns:
            a scalar float32 tensor.

        Raises:
            ValueError: as :meth:`DC_and_CE_loss.forward` and :meth:`RegionDiceLoss.forward`.
        """
        target = self._check_inputs(net_output, target)
        region_map, n_regions = (None, 0)
        if self.weight_region != 0:
            region_map, n_regions = self.region._check_regions(net_output, regions)
        probs = _softmax_channels(net_output) if (self.weight_dice != 0 or self.weight_region != 0) else None
        result, _ = self._dc_ce(net_output, probs, target)
        if self.weight_region != 0:
            result = result + self.weight_region * self.region._region_loss(probs, target, region_map, n_regions)
        return result
