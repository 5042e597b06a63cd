"""Region Dice: Dice per ground-truth region (boundary band / interior, or any region map), weighted."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.nn.modules.loss import _Loss

from monai_nnunet.losses._maps import _check_connectivity, boundary_regions
from monai_nnunet.losses._utils import (
    _recorded_arguments,
    _check_index_values,
    _check_probs_input,
    _label_target,
    _match_map,
    _resolve_nonlin,
    _segment_count,
    _segment_sum,
)

__all__ = ["RegionDiceLoss"]

_REGION_MODES = ("boundary", "given")


class RegionDiceLoss(_Loss):
    """
    Soft Dice per ground-truth region, combined as a weighted mean over regions.

    For every class ``c`` (foreground only unless ``include_background``), the image is split
    into regions, and the Dice of ``p_c`` against the ground truth ``g_c`` is taken inside each
    region ``r`` alone:

        ``I = sum_{v in r} p_c g_c``, ``P = sum_{v in r} p_c``, ``G = sum_{v in r} g_c``,
        ``dc_{c,r} = (2 I + smooth) / clip(P + G + smooth, 1e-8)``.

    Regions are given by an integer region map (0 = in no region, ``1..R`` region ids):

    - ``regions="boundary"`` (default): per class, region 1 is the boundary band
      ``boundary_width`` voxels wide on each side of the ground-truth surface, region 2 the rest
      of the image -- the object's interior and the background away from it, so false positives
      far from the object still cost (see ``monai_nnunet.transforms.LabelToRegionsd``). Default
      ``region_weights`` are ``(2, 1)``: boundary errors cost twice as much.
    - ``regions="given"``: ``forward`` must receive a region map, either one map shared by all
      classes (B, 1, *spatial) or one per class (B, C, *spatial).

    A map passed to ``forward`` is used in either mode, so regions can be computed in the data
    pipeline; without one, ``"boundary"`` computes them itself on the CPU (SciPy morphology),
    which is much slower.

    The loss is ``-sum(w_r dc_{b,c,r}) / sum(w_r)`` over the (sample, class, region) terms whose
    region is non-empty (with ``batch_dice``, sums are pooled over the batch first and the terms
    are (class, region)); it lies in ``[-1, 0]`` and is 0 when no region is present. All region
    sums are segment sums taken in one pass.

    Example::

        loss = RegionDiceLoss(boundary_width=2)
        value = loss(logits, labels, regions=regions)  # regions from LabelToRegionsd
    """

    def __init__(
        self,
        regions: str = "boundary",
        region_weights: Sequence[float] | None = None,
        boundary_width: int = 1,
        include_background: bool = False,
        smooth: float = 1e-5,
        batch_dice: bool = False,
        connectivity: int | None = None,
        ignore_label: int | None = None,
        apply_nonlin: Callable[[torch.Tensor], torch.Tensor] | str | None = "softmax",
    ) -> None:
        """
        Args:
            regions: ``"boundary"`` (boundary band and interior, computed if not passed to
                ``forward``) or ``"given"`` (``forward`` must receive a region map).
            region_weights: weight of region id ``r`` at position ``r - 1``; its length is the
                number of region ids. Default: ``(2.0, 1.0)`` for ``"boundary"``, 1 for every
                region id present for ``"given"``.
            boundary_width: half-width in voxels of the boundary band (``"boundary"``), >= 1.
            include_background: if True, class 0 gets regions and Dice terms too.
            smooth: added to numerator and denominator of every Dice (default 1e-5).
            batch_dice: if True, pool I, P, G over the batch before the Dice.
            connectivity: structuring element of the boundary morphology in orthogonal hops
                (1 to the number of spatial axes); None is full connectivity.
            ignore_label: label value of unannotated voxels; they are left out of every region.
            apply_nonlin: ``"softmax"`` (default, over channels, in float32), ``"sigmoid"``,
                ``None`` (``input`` already holds probabilities) or a callable.

        Raises:
            ValueError: for an unknown ``regions`` mode, negative or all-zero ``region_weights``,
                ``region_weights`` of the wrong length for ``"boundary"``, ``boundary_width < 1``,
                a negative ``smooth`` or a bad ``connectivity`` / ``apply_nonlin``.
        """
        super().__init__()
        self.init_kwargs = _recorded_arguments(locals())  # how to rebuild this loss (a run's bundle)
        if regions not in _REGION_MODES:
            raise ValueError(f"regions must be one of {_REGION_MODES}, got {regions!r}.")
        if isinstance(boundary_width, bool) or not isinstance(boundary_width, int) or boundary_width < 1:
            raise ValueError(f"boundary_width must be an int >= 1, got {boundary_width!r}.")
        if float(smooth) < 0:
            raise ValueError(f"smooth must be non-negative, got {smooth}.")
        if connectivity is not None and (
            isinstance(connectivity, bool) or not isinstance(connectivity, int) or connectivity < 1
        ):
            raise ValueError(f"connectivity must be None or a positive int, got {connectivity!r}.")
        if region_weights is None and regions == "boundary":
            region_weights = (2.0, 1.0)
        if region_weights is not None:
            weights = [float(w) for w in region_weights]
            if len(weights) == 0 or any(w < 0 for w in weights) or not any(w > 0 for w in weights):
                raise ValueError(
                    f"region_weights must be a non-empty sequence of non-negative numbers, at least one > 0, "
                    f"got {region_weights!r}."
                )
            if regions == "boundary" and len(weights) != 2:
                raise ValueError(
                    f"region_weights must have 2 entries (boundary, interior) for regions='boundary', got {weights}."
                )
            self.register_buffer("region_weights", torch.tensor(weights, dtype=torch.float32), persistent=False)
        else:
            self.region_weights = None  # type: ignore[assignment]
        self.regions = regions
        self.boundary_width = int(boundary_width)
        self.include_background = bool(include_background)
        self.smooth = float(smooth)
        self.batch_dice = bool(batch_dice)
        self.connectivity = connectivity
        self.ignore_label = ignore_label
        self.apply_nonlin = _resolve_nonlin(apply_nonlin)

    def forward(
        self, input: torch.Tensor, target: torch.Tensor, regions: torch.Tensor | None = None
    ) -> torch.Tensor:
        """
        Args:
            input: logits (B, C, H, W[, D]) (probabilities if ``apply_nonlin`` is None).
            target: integer label map (B, 1, H, W[, D]) or (B, H, W[, D]) with values in
                ``[0, C)`` (``ignore_label`` aside).
            regions: optional integer region map, (B, 1, H, W[, D]) shared by all classes or
                (B, C, H, W[, D]) one per class (channel c for class c, as ``LabelToRegionsd``
                writes); 0 = no region, ``1..R`` region ids (R = ``len(region_weights)`` when set).

        Returns:
            a scalar float32 tensor.

        Raises:
            ValueError: when ``input`` is not (B, C, *spatial); ``target`` or ``regions`` do not
                match it in batch size, spatial shape or channel count; ``target`` holds labels
                outside ``[0, C)``; ``regions`` holds ids outside ``[0, R]``; or ``regions`` is
                missing with ``regions="given"``.
        """
        _check_probs_input(input)
        target = _label_target(input, target, self.ignore_label)
        region_map, n_regions = self._check_regions(input, regions)
        probs = self.apply_nonlin(input) if self.apply_nonlin is not None else input
        return self._region_loss(probs, target, region_map, n_regions)

    def _check_regions(self, input: torch.Tensor, regions: torch.Tensor | None) -> tuple[torch.Tensor | None, int]:
        n_weights = None if self.region_weights is None else int(self.region_weights.numel())
        if regions is None:
            if self.regions == "given":
                raise ValueError("regions must be passed to forward when RegionDiceLoss(regions='given').")
            if self.connectivity is not None:
                _check_connectivity(self.connectivity, input.ndim - 2)
            return None, 2
        num_classes = input.shape[1]
        regions = _match_map(input, regions, "regions", (1, num_classes))
        upper = None if n_weights is None else n_weights + 1
        max_id = _check_index_values(regions, "regions", upper)
        if regions.is_floating_point() or regions.dtype == torch.bool:
            regions = regions.long()  # integer maps stay as they are (uint8 from LabelToRegionsd)
        return regions, (n_weights if n_weights is not None else max(max_id, 1))

    def _boundary_maps(self, target: torch.Tensor, num_classes: int) -> torch.Tensor:
        """Boundary / interior maps (B, C, *spatial) from a (B, 1, *spatial) label map, on the CPU."""
        labels = target.detach().cpu().numpy()
        maps = np.stack(
            [
                boundary_regions(labels[b, 0], num_classes, self.boundary_width, self.connectivity, self.ignore_label)
                for b in range(labels.shape[0])
            ]
        )
        return torch.as_tensor(maps, device=target.device)  # uint8

    def _region_loss(
        self, probs: torch.Tensor, target: torch.Tensor, regions: torch.Tensor | None, n_regions: int
    ) -> torch.Tensor:
        """Region loss from probabilities (B, C, *spatial), a checked int64 target and region map."""
        b_size, n_cls = probs.shape[:2]
        if regions is None:
            regions = self._boundary_maps(target, n_cls)
        probs = probs.float().reshape(b_size, n_cls, -1)
        regions = regions.reshape(b_size, regions.shape[1], -1)  # integer ids, any integer dtype
        lbl = target.reshape(b_size, -1)
        if self.ignore_label is not None:
            valid = lbl != self.ignore_label
            lbl = torch.where(valid, lbl, torch.zeros_like(lbl))
            regions = torch.where(valid.unsqueeze(1), regions, torch.zeros_like(regions))

        first = 0 if self.include_background else 1
        n_used = n_cls - first  # classes that get Dice terms
        n_ids = n_regions + 1  # region ids 0..R, 0 dropped at the end
        shared = regions.shape[1] == 1

        # predicted mass per (sample, class, region): one segment sum over all voxels of the used classes
        reg_used = regions if shared else regions[:, first:]
        sum_pred = _segment_sum(probs[:, first:], reg_used, n_ids)  # (B, n_used, n_ids)

        # intersection and ground-truth volume: each voxel goes to its own class's segment
        reg_own = regions[:, 0] if shared else regions.gather(1, lbl.unsqueeze(1)).squeeze(1)
        if first:
            reg_own = torch.where(lbl >= first, reg_own, torch.zeros_like(reg_own))
        cls_used = (lbl - first).clamp_min_(0) if first else lbl
        key_own = torch.add(reg_own, cls_used * n_ids)  # (B, N) ids in [0, n_used * n_ids)
        p_true = probs.gather(1, lbl.unsqueeze(1)).squeeze(1)
        intersect = _segment_sum(p_true, key_own, n_used * n_ids)
        with torch.no_grad():
            sum_gt = _segment_count(key_own, n_used * n_ids)
            if n_regions <= 16:  # region sizes by comparison on the (small-dtype) map: cheaper than a scatter
                size = torch.stack([(reg_used == r).sum(-1) for r in range(1, n_ids)], -1).float()
            else:
                size = _segment_count(reg_used, n_ids)[..., 1:]
            size = size.expand(b_size, n_used, n_regions)

        shape = (b_size, n_used, n_ids)
        intersect, sum_pred, sum_gt = (t.view(shape)[..., 1:] for t in (intersect, sum_pred, sum_gt))
        if self.batch_dice:
            intersect, sum_pred, sum_gt, size = (t.sum(0) for t in (intersect, sum_pred, sum_gt, size))

        dc = (2 * intersect + self.smooth) / (sum_pred + sum_gt + self.smooth).clamp_min(1e-8)
        if self.region_weights is not None:
            weights = self.region_weights.to(dc.device)
        else:
            weights = torch.ones(n_regions, dtype=torch.float32, device=dc.device)
        weights = weights * (size > 0)
        return -(dc * weights).sum() / weights.sum().clamp_min(1e-12)
