"""Dictionary transform that adds ground-truth region maps (boundary band / interior) for ``RegionDiceLoss``."""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import numpy as np
import torch
from monai.config import KeysCollection, NdarrayOrTensor
from monai.transforms.transform import MapTransform
from monai.utils import convert_to_dst_type, convert_to_numpy, ensure_tuple_rep

from monai_nnunet.losses._maps import boundary_regions

__all__ = ["LabelToRegionsd"]


class LabelToRegionsd(MapTransform):
    """
    Add per-class boundary / interior region maps of a label map to the data dictionary.

    For each key, the channel-first label map (1, H, W[, D]) gives a region map
    (``num_classes``, H, W[, D]), uint8, channel ``c`` for class ``c``: 1 on the band
    ``boundary_width`` voxels wide on each side of the class's ground-truth surface, 2 everywhere
    else (the object's interior and the background away from it), 0 on ``ignore_label`` voxels.
    It is written to the matching entry of ``region_keys`` (default ``"{key}_regions"``), with the
    type (and MetaTensor metadata) of the label. Pass it to ``RegionDiceLoss`` /
    ``DC_and_Region_CE_loss`` as ``regions``, so the morphology runs in the data loader, not in the
    training step.

    Place it after the spatial augmentation and cropping, as for ``LabelToBlobsd``.

    Example::

        LabelToRegionsd(keys="label", num_classes=3, boundary_width=2)  # adds data["label_regions"]
    """

    def __init__(
        self,
        keys: KeysCollection,
        num_classes: int,
        region_keys: KeysCollection | None = None,
        boundary_width: int = 1,
        connectivity: int | None = None,
        ignore_label: int | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        """
        Args:
            keys: keys of the label maps (1, H, W[, D]).
            num_classes: number of classes C (the network's output channels); labels must be in
                ``[0, C)`` (``ignore_label`` aside).
            region_keys: output keys, one per key; default ``"{key}_regions"``.
            boundary_width: half-width of the boundary band in voxels (>= 1).
            connectivity: structuring element of the morphology in orthogonal hops (1 to the number
                of spatial axes); None (default) is full connectivity.
            ignore_label: voxels with this label are region 0 (left out) in every channel.
            allow_missing_keys: don't raise an exception if a key is missing.

        Raises:
            ValueError: for a bad ``num_classes``, ``boundary_width`` or ``connectivity``, or when
                ``region_keys`` does not have one entry per key.
        """
        super().__init__(keys, allow_missing_keys)
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive int, got {num_classes!r}.")
        if isinstance(boundary_width, bool) or not isinstance(boundary_width, int) or boundary_width < 1:
            raise ValueError(f"boundary_width must be an int >= 1, got {boundary_width!r}.")
        if connectivity is not None and (
            isinstance(connectivity, bool) or not isinstance(connectivity, int) or connectivity < 1
        ):
            raise ValueError(f"connectivity must be None or a positive int, got {connectivity!r}.")
        if region_keys is None:
            region_keys = tuple(f"{k}_regions" for k in self.keys)
        self.region_keys = ensure_tuple_rep(region_keys, len(self.keys))
        self.num_classes = num_classes
        self.boundary_width = boundary_width
        self.connectivity = connectivity
        self.ignore_label = ignore_label

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        """
        Raises:
            ValueError: when a label is not channel-first with one channel, (1, H, W[, D]), or holds
                values outside ``[0, num_classes)`` other than ``ignore_label``.
        """
        d = dict(data)
        for key, out_key in self.key_iterator(d, self.region_keys):
            label = d[key]
            if not hasattr(label, "shape") or len(label.shape) < 2 or label.shape[0] != 1:
                raise ValueError(
                    f"data[{key!r}] must be a channel-first label map (1, H, W[, D]), "
                    f"got shape {tuple(getattr(label, 'shape', ()))}."
                )
            label_np = convert_to_numpy(label.detach() if isinstance(label, torch.Tensor) else label)[0]
            values = label_np if self.ignore_label is None else label_np[label_np != self.ignore_label]
            bad = values.size and (
                values.min() < 0 or values.max() >= self.num_classes or np.any(values != np.round(values))
            )
            if bad:
                raise ValueError(
                    f"data[{key!r}] must hold integer labels in [0, {self.num_classes}) "
                    + (f"(ignore_label={self.ignore_label} aside) " if self.ignore_label is not None else "")
                    + f"for num_classes={self.num_classes}, found values in [{values.min():g}, {values.max():g}]."
                )
            regions = boundary_regions(
                label_np, self.num_classes, self.boundary_width, self.connectivity, self.ignore_label
            )
            d[out_key] = convert_to_dst_type(
                regions, dst=label, dtype=np.uint8 if isinstance(label, np.ndarray) else torch.uint8
            )[0]
        return d
