"""Preprocessing as MONAI dictionary transforms.

The chain (``preprocessing_transforms``) is: load (ITK reader, nnU-Net axis order) -> transpose to the plans'
axis order -> crop to the nonzero region -> normalise -> resample to the target spacing -> sample foreground
locations for oversampling. Samples are dicts with ``image`` ``(C, Z, Y, X)`` float32, ``label`` ``(1, Z, Y, X)``
(absent for test cases) and ``properties`` (geometry and bookkeeping needed to write predictions back).
The same chain preprocesses training cases here and test cases at prediction time.
"""

from __future__ import annotations

from typing import Hashable, Mapping, Sequence

import numpy as np
from monai.config import KeysCollection
from monai.transforms import Compose, MapTransform

from monai_nnunet.dataset.io import read_images, read_segmentation
from monai_nnunet.preprocessing.cropping import crop_to_nonzero
from monai_nnunet.preprocessing.normalization import normalize_channel
from monai_nnunet.preprocessing.resampling import compute_new_shape, resample_data_or_seg_to_shape

__all__ = [
    "CropToNonzerod",
    "LoadNnunetCased",
    "NormalizeByPlansd",
    "ResampleToTargetSpacingd",
    "SampleClassLocationsd",
    "TransposeSpatialAxesd",
    "preprocessing_transforms",
    "sample_foreground_locations",
]

PROPERTIES = "properties"


class LoadNnunetCased(MapTransform):
    """Loads a case's channel files and label file into nnU-Net's axis order (z, y, x).

    Input: ``{"image": [file per channel], "label": file or None, "case_id": str}``.
    Output: ``image`` float32 ``(C, Z, Y, X)``, ``label`` int16 ``(1, Z, Y, X)``, ``properties`` with the geometry.

    Args:
        image_key: key of the channel file list.
        label_key: key of the label file (may be missing or None for test cases).
    """

    def __init__(self, image_key: str = "image", label_key: str = "label", allow_missing_keys: bool = True):
        super().__init__([image_key, label_key], allow_missing_keys)
        self.image_key, self.label_key = image_key, label_key

    def __call__(self, data: Mapping[Hashable, object]) -> dict:
        d = dict(data)
        case_id = d.get("case_id")
        image, props = read_images(d[self.image_key], case_id)
        props["case_id"] = case_id
        d[self.image_key] = image
        label_file = d.get(self.label_key)
        if label_file is not None:
            seg, _ = read_segmentation(label_file)
            if np.issubdtype(seg.dtype, np.floating):
                seg = np.rint(seg)
            d[self.label_key] = seg.astype(np.int16, copy=False)
        else:
            d.pop(self.label_key, None)
        d[PROPERTIES] = props
        return d


class TransposeSpatialAxesd(MapTransform):
    """Permutes the spatial axes of ``(C, Z, Y, X)`` arrays (plans' ``transpose_forward``), spacing with them."""

    def __init__(self, keys: KeysCollection, transpose_forward: Sequence[int], allow_missing_keys: bool = True):
        super().__init__(keys, allow_missing_keys)
        self.transpose_forward = [int(t) for t in transpose_forward]

    def __call__(self, data: Mapping[Hashable, object]) -> dict:
        d = dict(data)
        order = (0, *(t + 1 for t in self.transpose_forward))
        for key in self.key_iterator(d):
            d[key] = np.ascontiguousarray(np.transpose(d[key], order))
        props = dict(d[PROPERTIES])
        props["spacing_transposed"] = [props["spacing"][t] for t in self.transpose_forward]
        props["shape_before_cropping"] = list(d[self.first_key(d)].shape[1:])
        d[PROPERTIES] = props
        return d


class CropToNonzerod(MapTransform):
    """Crops image and label to the nonzero region; the label gets -1 outside it (a label is made if absent)."""

    def __init__(self, image_key: str = "image", label_key: str = "label"):
        super().__init__([image_key, label_key], allow_missing_keys=True)
        self.image_key, self.label_key = image_key, label_key

    def __call__(self, data: Mapping[Hashable, object]) -> dict:
        d = dict(data)
        image, seg, bbox = crop_to_nonzero(d[self.image_key], d.get(self.label_key))
        d[self.image_key], d[self.label_key] = image, seg
        props = dict(d[PROPERTIES])
        props["bbox_used_for_cropping"] = bbox
        props["shape_after_cropping_and_before_resampling"] = list(image.shape[1:])
        d[PROPERTIES] = props
        return d


class NormalizeByPlansd(MapTransform):
    """Normalises each image channel with the plans' scheme (before resampling, as nnU-Net does).

    Args:
        image_key: the image.
        label_key: the cropped label map (marks the nonzero region with values >= 0).
        normalization_schemes: one scheme name per channel.
        use_mask_for_norm: one flag per channel.
        intensity_properties: plans' ``foreground_intensity_properties_per_channel``.
    """

    def __init__(
        self,
        normalization_schemes: Sequence[str],
        use_mask_for_norm: Sequence[bool],
        intensity_properties: Mapping[str, dict],
        image_key: str = "image",
        label_key: str = "label",
    ):
        super().__init__([image_key], allow_missing_keys=False)
        self.schemes = list(normalization_schemes)
        self.use_mask = list(use_mask_for_norm)
        self.intensity_properties = {str(k): v for k, v in intensity_properties.items()}
        self.image_key, self.label_key = image_key, label_key

    def __call__(self, data: Mapping[Hashable, object]) -> dict:
        d = dict(data)
        image = d[self.image_key]
        if image.shape[0] != len(self.schemes):
            raise ValueError(
                f"case {d[PROPERTIES].get('case_id')}: {image.shape[0]} channel(s) but the plans normalise "
                f"{len(self.schemes)}"
            )
        seg = d.get(self.label_key)
        out = np.empty(image.shape, dtype=np.float32)
        for c in range(image.shape[0]):
            out[c] = normalize_channel(
                image[c].astype(np.float32), self.schemes[c], self.use_mask[c],
                None if seg is None else seg[0], self.intensity_properties.get(str(c), {}),
            )
        d[self.image_key] = out
        return d


class ResampleToTargetSpacingd(MapTransform):
    """Resamples image (spline) and label (per-label linear + argmax) to the configuration's spacing.

    Args:
        target_spacing: the configuration's spacing; a 2d configuration gives two values and keeps the
            spacing of the first (slice) axis.
        data_kwargs / seg_kwargs: the plans' ``resampling_fn_data_kwargs`` / ``resampling_fn_seg_kwargs``.
    """

    def __init__(
        self,
        target_spacing: Sequence[float],
        data_kwargs: Mapping | None = None,
        seg_kwargs: Mapping | None = None,
        image_key: str = "image",
        label_key: str = "label",
    ):
        super().__init__([image_key, label_key], allow_missing_keys=True)
        self.target_spacing = [float(s) for s in target_spacing]
        self.data_kwargs = dict(data_kwargs or {"is_seg": False, "order": 3, "order_z": 0, "force_separate_z": None})
        self.seg_kwargs = dict(seg_kwargs or {"is_seg": True, "order": 1, "order_z": 0, "force_separate_z": None})
        self.image_key, self.label_key = image_key, label_key

    def __call__(self, data: Mapping[Hashable, object]) -> dict:
        d = dict(data)
        props = dict(d[PROPERTIES])
        current = props["spacing_transposed"]
        target = self.target_spacing
        if len(target) == 2:  # 2d: the slice axis keeps its spacing
            target = [current[0], *target]
        image = d[self.image_key]
        new_shape = compute_new_shape(image.shape[1:], current, target)
        d[self.image_key] = resample_data_or_seg_to_shape(image, new_shape, current, target, **self.data_kwargs)
        if d.get(self.label_key) is not None:
            d[self.label_key] = resample_data_or_seg_to_shape(d[self.label_key], new_shape, current, target,
                                                              **self.seg_kwargs)
        props["target_spacing"] = target
        props["shape_after_resampling"] = [int(s) for s in new_shape]
        d[PROPERTIES] = props
        return d


def sample_foreground_locations(
    seg: np.ndarray,
    classes_or_regions: Sequence[int | Sequence[int]],
    seed: int = 1234,
    min_num_samples: int = 10000,
    min_percent_coverage: float = 0.01,
) -> dict:
    """Stored voxel positions per class (or region) for foreground oversampling, as nnU-Net samples them.

    Args:
        seg: label map ``(1, Z, Y, X)``.
        classes_or_regions: label values, or tuples of values for regions.
        seed: sampling seed.
        min_num_samples: at most this many positions per class, unless ``min_percent_coverage`` asks for more.
        min_percent_coverage: at least this fraction of a class's voxels.

    Returns:
        ``{class (int) or region (tuple): array (N, 4)}`` of indices into ``seg`` (channel index first).
    """
    rng = np.random.RandomState(seed)
    keys = [tuple(int(v) for v in c) if isinstance(c, (tuple, list)) else int(c) for c in classes_or_regions]
    wanted = sorted({v for k in keys for v in (k if isinstance(k, tuple) else (k,))})
    # one pass over the volume: positions of all wanted voxels, grouped by label with a single sort
    mask = np.isin(seg, wanted)
    coords = np.argwhere(mask)
    values = seg[mask]
    order = np.argsort(values, kind="stable")
    values, coords = values[order], coords[order]
    starts = np.searchsorted(values, wanted, side="left")
    stops = np.searchsorted(values, wanted, side="right")
    ranges = {v: (int(a), int(b)) for v, a, b in zip(wanted, starts, stops)}
    locations = {}
    for key in keys:
        members = [ranges[v] for v in (key if isinstance(key, tuple) else (key,)) if ranges[v][1] > ranges[v][0]]
        if not members:
            locations[key] = np.zeros((0, seg.ndim), dtype=np.int64)
            continue
        indices = np.concatenate([np.arange(a, b) for a, b in members])
        n = min(min_num_samples, len(indices))
        n = max(n, int(np.ceil(len(indices) * min_percent_coverage)))
        picked = indices[np.sort(rng.choice(len(indices), n, replace=False))]
        locations[key] = coords[picked].astype(np.int64)
    return locations


class SampleClassLocationsd(MapTransform):
    """Adds ``properties["class_locations"]``: sampled voxel positions per foreground class (or region).

    With an ignore label, one more entry samples uniformly over annotated voxels (all labels and the outside
    region), as nnU-Net does, so oversampling can target annotated areas.
    """

    def __init__(self, classes_or_regions: Sequence, all_labels: Sequence[int] | None = None,
                 has_ignore_label: bool = False, label_key: str = "label"):
        super().__init__([label_key], allow_missing_keys=True)
        self.classes = list(classes_or_regions)
        if has_ignore_label:
            self.classes.append(tuple([-1, *all_labels]))
        self.label_key = label_key

    def __call__(self, data: Mapping[Hashable, object]) -> dict:
        d = dict(data)
        if d.get(self.label_key) is not None:
            props = dict(d[PROPERTIES])
            props["class_locations"] = sample_foreground_locations(d[self.label_key], self.classes)
            d[PROPERTIES] = props
        return d


def preprocessing_transforms(plans, configuration, dataset, with_loading: bool = True) -> Compose:
    """The preprocessing chain of one configuration.

    Args:
        plans: a ``PlansManager``.
        configuration: a ``ConfigurationManager`` of it.
        dataset: the ``DatasetDescription`` (labels, ignore label).
        with_loading: start with ``LoadNnunetCased`` (False: the sample already holds loaded arrays).
    """
    chain = [LoadNnunetCased()] if with_loading else []
    chain += [
        TransposeSpatialAxesd(["image", "label"], plans.transpose_forward),
        CropToNonzerod(),
        NormalizeByPlansd(
            configuration.normalization_schemes,
            configuration.use_mask_for_norm,
            plans.foreground_intensity_properties_per_channel,
        ),
        ResampleToTargetSpacingd(
            configuration.spacing, configuration.resampling_fn_data_kwargs, configuration.resampling_fn_seg_kwargs
        ),
        SampleClassLocationsd(dataset.foreground_regions, dataset.all_labels, dataset.has_ignore_label),
    ]
    return Compose(chain, map_items=False)
