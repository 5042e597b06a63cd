"""Blob Dice: instance-aware Dice over the connected components of the ground truth."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch.nn.modules.loss import _Loss

from monai_nnunet.losses._maps import _check_connectivity, label_blobs
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

__all__ = ["BlobDiceLoss"]

# above this many (sample, instance id, class) bins, sparse instance ids are renumbered first
_MAX_DENSE_BINS = 1 << 24


class BlobDiceLoss(_Loss):
    """
    Instance-aware soft Dice ("blob loss", Kofler et al., IPMI 2023).

    Blobs are the connected components of each foreground class in the ground truth (full
    connectivity by default: 8 in 2D, 26 in 3D). For blob ``k`` of class ``c`` in sample ``b``,
    the class probability ``p_c`` is masked to the background of ``c`` plus that blob -- the
    other blobs of class ``c`` are zeroed -- and the Dice is taken against the blob:

        ``I_k = sum_{v in k} p_c(v)``, ``G_k = |k|``,
        ``P_k = I_k + sum_{v: label(v) != c} p_c(v)``  (false positives in the background still cost),
        ``dc_k = (2 I_k + smooth) / clip(P_k + G_k + smooth, 1e-8)``.

    ``batch_dice=False``: the mean of ``dc_k`` over the blobs of each sample, then over the
    samples that have at least one blob; ``batch_dice=True``: one mean over all blobs of the
    batch. The loss is ``-`` that mean (in ``[-1, 0]``, as :class:`SoftDiceLoss`); with no blob at
    all it is 0, still connected to the graph (all-zero gradients).

    All blob sums are taken in one pass as segment sums over (sample, instance id, class), so the
    cost does not grow with the number of blobs. Pass a precomputed instance map to ``forward``
    (see ``monai_nnunet.transforms.LabelToBlobsd``) to keep connected-component labelling in the
    data pipeline; without it the loss labels the components itself (on the CPU, with
    scikit-image), which is much slower.

    Example::

        loss = BlobDiceLoss()
        value = loss(logits, labels)                        # labels components itself
        value = loss(logits, labels, instances=instances)   # instances from LabelToBlobsd
    """

    def __init__(
        self,
        batch_dice: bool = False,
        include_background: bool = False,
        connectivity: int | None = None,
        smooth: float = 1e-5,
        ignore_label: int | None = None,
        apply_nonlin: Callable[[torch.Tensor], torch.Tensor] | str | None = "softmax",
    ) -> None:
        """
        Args:
            batch_dice: False: mean over the blobs of each sample, then over samples with blobs;
                True: one mean over all blobs of the batch.
            include_background: if True, the connected components of label 0 are blobs too.
            connectivity: neighbourhood used when the loss labels components itself, in
                orthogonal hops (1 to the number of spatial axes); None is full connectivity.
            smooth: added to numerator and denominator of every blob Dice (default 1e-5).
            ignore_label: label value of unannotated voxels; they belong to no blob and are left
                out of every sum (including the background).
            apply_nonlin: ``"softmax"`` (default, over channels, in float32), ``"sigmoid"``,
                ``None`` (``input`` already holds probabilities) or a callable.

        Raises:
            ValueError: for a negative ``smooth``, a bad ``connectivity`` or ``apply_nonlin``.
        """
        super().__init__()
        self.init_kwargs = _recorded_arguments(locals())  # how to rebuild this loss (a run's bundle)
        if float(smooth) < 0:
            raise ValueError(f"smooth must be non-negative, got {smooth}.")
        if connectivity is not None and (
            isinstance(connectivity, bool) or not isinstance(connectivity, int) or connectivity < 1
        ):
            raise ValueError(f"connectivity must be None or a positive int, got {connectivity!r}.")
        self.batch_dice = bool(batch_dice)
        self.include_background = bool(include_background)
        self.connectivity = connectivity
        self.smooth = float(smooth)
        self.ignore_label = ignore_label
        self.apply_nonlin = _resolve_nonlin(apply_nonlin)

    def forward(
        self, input: torch.Tensor, target: torch.Tensor, instances: torch.Tensor | None = None
    ) -> torch.Tensor:
        """
        Args:
            input: logits (B, C, H, W[, D]) (probabilities if ``apply_nonlin`` is None).
            target: integer label map (B, 1, H, W[, D]) or (B, H, W[, D]) with values in
                ``[0, C)`` (``ignore_label`` aside).
            instances: optional precomputed instance map (B, 1, H, W[, D]) or (B, H, W[, D]),
                non-negative integers, one id per blob (0 = no blob), e.g. from ``LabelToBlobsd``.
                A blob is the set of voxels sharing an id *and* a class, so ids need not be
                unique across classes or samples.

        Returns:
            a scalar float32 tensor.

        Raises:
            ValueError: when ``input`` is not (B, C, *spatial); ``target`` or ``instances`` do
                not match it in batch size, spatial shape or channel count; ``target`` holds
                labels outside ``[0, C)``; ``instances`` holds negative or non-integer ids; or
                ``connectivity`` exceeds the number of spatial axes.
        """
        _check_probs_input(input)
        target = _label_target(input, target, self.ignore_label)
        max_id = None
        if instances is not None:
            instances = _match_map(input, instances, "instances", (1,))
            max_id = _check_index_values(instances, "instances")
        elif self.connectivity is not None:
            _check_connectivity(self.connectivity, input.ndim - 2)
        probs = self.apply_nonlin(input) if self.apply_nonlin is not None else input
        return self._blob_loss(probs, target, instances, max_id)

    def _label_components(self, target: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Connected components of a (B, 1, *spatial) label map, computed on the CPU."""
        labels = target.detach().cpu().numpy()
        maps = np.stack(
            [
                label_blobs(labels[b, 0], self.connectivity, self.include_background, self.ignore_label)
                for b in range(labels.shape[0])
            ]
        )[:, None]
        return torch.as_tensor(maps, device=target.device).long(), int(maps.max(initial=0))

    def _blob_loss(
        self,
        probs: torch.Tensor,
        target: torch.Tensor,
        instances: torch.Tensor | None,
        max_id: int | None = None,
    ) -> torch.Tensor:
        """Blob loss from probabilities (B, C, *spatial) and a checked int64 target (B, 1, *spatial)."""
        b_size, n_cls = probs.shape[:2]
        probs = probs.float().reshape(b_size, n_cls, -1)
        lbl = target.reshape(b_size, -1)
        valid = None
        if self.ignore_label is not None:
            valid = lbl != self.ignore_label
            lbl = torch.where(valid, lbl, torch.zeros_like(lbl))

        if instances is None:
            inst, max_id = self._label_components(target)
        else:
            inst = instances
            if max_id is None:
                max_id = int(inst.max()) if inst.numel() else 0
        inst = inst.reshape(b_size, -1).long()
        keep = None if self.include_background else lbl > 0
        if valid is not None:
            keep = valid if keep is None else keep & valid
        if keep is not None:
            inst = torch.where(keep, inst, torch.zeros_like(inst))

        n_ids = max_id + 1
        if b_size * n_ids * n_cls > _MAX_DENSE_BINS:  # sparse ids: renumber 1..U (0 stays 0)
            uniq, inv = torch.unique(inst, return_inverse=True)
            inst = inv + (uniq[0] != 0).long()
            n_ids = int(uniq.numel()) + 1
        n_bins = n_ids * n_cls  # per sample

        # one segment per (instance id, class) and sample: a blob is the voxels sharing all three
        key = inst * n_cls + lbl
        p_true = probs.gather(1, lbl.unsqueeze(1)).squeeze(1)  # probability of each voxel's own class
        if valid is not None:
            p_true = p_true * valid
        intersect = _segment_sum(p_true, key, n_bins).view(b_size, n_ids, n_cls)
        with torch.no_grad():
            gt_size = _segment_count(key, n_bins).view(b_size, n_ids, n_cls)
            is_blob = gt_size > 0
            is_blob[:, 0] = False  # id 0: voxels in no blob

        # probability mass of class c outside the ground truth of c: the "background" every blob keeps
        p_out = probs.scatter(1, lbl.unsqueeze(1), 0.0)
        if valid is not None:
            p_out = p_out * valid.unsqueeze(1)
        outside = p_out.sum(2, dtype=torch.float32)  # (B, C)

        sum_pred = intersect + outside.unsqueeze(1)
        dc = (2 * intersect + self.smooth) / (sum_pred + gt_size + self.smooth).clamp_min(1e-8)
        dc = dc * is_blob

        if self.batch_dice:
            n_blobs = is_blob.sum()
            return -dc.sum() / n_blobs.clamp_min(1)
        per_sample_n = is_blob.sum((1, 2))
        per_sample = dc.sum((1, 2)) / per_sample_n.clamp_min(1)
        has_blob = per_sample_n > 0
        return -(per_sample * has_blob).sum() / has_blob.sum().clamp_min(1)
