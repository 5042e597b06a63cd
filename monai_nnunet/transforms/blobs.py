"""Dictionary transform that adds a ground-truth instance (blob) map for ``BlobDiceLoss``."""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import numpy as np
import torch
from monai.config import KeysCollection, NdarrayOrTensor
from monai.transforms.transform import MapTransform
from monai.utils import convert_to_dst_type, convert_to_numpy, ensure_tuple_rep

from monai_nnunet.losses._maps import label_blobs

__all__ = ["LabelToBlobsd"]


class LabelToBlobsd(MapTransform):
    """
    Add the connected components ("blobs") of every class of a label map to the data dictionary.

    For each key, the channel-first label map (1, H, W[, D]) is labelled with scikit-image
    (full connectivity by default: 8 in 2D, 26 in 3D) and the instance map (1, H, W[, D]) --
    int32, 0 where no blob, ids ``1..K`` unique over classes -- is written to the matching entry
    of ``instance_keys`` (default ``"{key}_instances"``), with the type (and MetaTensor metadata)
    of the label. Pass it to ``BlobDiceLoss`` / ``DC_and_Blob_CE_loss`` as ``instances``, so that
    connected components are computed in the data loader, not in the training step.

    Place it after the spatial augmentation and cropping (components of the patch the network
    sees), or resample the instance map with nearest neighbour together with the label.

    Example::

        LabelToBlobsd(keys="label")  # adds data["label_instances"]
    """

    def __init__(
        self,
        keys: KeysCollection,
        instance_keys: KeysCollection | None = None,
        connectivity: int | None = None,
        include_background: bool = False,
        ignore_label: int | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        """
        Args:
            keys: keys of the label maps (1, H, W[, D]) to label.
            instance_keys: output keys, one per key; default ``"{key}_instances"``.
            connectivity: orthogonal hops that make voxels neighbours (1 to the number of spatial
                axes); None (default) is full connectivity.
            include_background: if True, the components of label 0 get ids too.
            ignore_label: voxels with this label belong to no blob.
            allow_missing_keys: don't raise an exception if a key is missing.

        Raises:
            ValueError: when ``instance_keys`` does not have one entry per key, or
                ``connectivity`` is not a positive int.
        """
        super().__init__(keys, allow_missing_keys)
        if instance_keys is None:
            instance_keys = tuple(f"{k}_instances" for k in self.keys)
        self.instance_keys = ensure_tuple_rep(instance_keys, len(self.keys))
        if connectivity is not None and (
            isinstance(connectivity, bool) or not isinstance(connectivity, int) or connectivity < 1
        ):
            raise ValueError(f"connectivity must be None or a positive int, got {connectivity!r}.")
        self.connectivity = connectivity
        self.include_background = include_background
        self.ignore_label = ignore_label

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        """
        Raises:
            ValueError: when a label is not channel-first with one channel, (1, H, W[, D]).
        """
        d = dict(data)
        for key, out_key in self.key_iterator(d, self.instance_keys):
            label = d[key]
            if not hasattr(label, "shape") or len(label.shape) < 2 or label.shape[0] != 1:
                raise ValueError(
                    f"data[{key!r}] must be a channel-first label map (1, H, W[, D]), "
                    f"got shape {tuple(getattr(label, 'shape', ()))}."
                )
            label_np = convert_to_numpy(label.detach() if isinstance(label, torch.Tensor) else label)
            inst = label_blobs(label_np[0], self.connectivity, self.include_background, self.ignore_label)[None]
            dtype = np.int32 if isinstance(label, np.ndarray) else torch.int32
            d[out_key] = convert_to_dst_type(inst, dst=label, dtype=dtype)[0]
        return d
