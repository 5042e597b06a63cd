"""Patch sampling over the preprocessed cache, as nnU-Net samples: random patches, and foreground-centred patches
for the oversampled share of each batch."""

from __future__ import annotations

import warnings
from typing import Hashable, Mapping, Sequence

import numpy as np
from monai.transforms import MapTransform, Randomizable

__all__ = ["RandPatchCropWithOversamplingd", "crop_and_pad", "is_oversampled_position"]


def is_oversampled_position(position: int, batch_size: int, oversample_foreground_percent: float) -> bool:
    """Whether sample ``position`` of a batch must contain foreground: nnU-Net forces the last
    ``batch_size - round(batch_size * (1 - oversample_foreground_percent))`` samples of every batch."""
    return not position < round(batch_size * (1 - oversample_foreground_percent))


def crop_and_pad(array: np.ndarray, bbox: Sequence[Sequence[int]], pad_value: float, dtype=None) -> np.ndarray:
    """Crops ``array[:, bbox]`` where the box may extend beyond the array; outside is ``pad_value``.

    Args:
        array: ``(C, *spatial)``, may be a memory map (only the needed region is read).
        bbox: ``[[start, stop], ...]`` per spatial axis; starts may be negative, stops beyond the shape.
        pad_value: value outside the array.
        dtype: output dtype (default: the array's).
    """
    shape = array.shape[1:]
    out = np.full((array.shape[0], *(b - a for a, b in bbox)), pad_value, dtype=dtype or array.dtype)
    src = tuple(slice(max(a, 0), min(b, s)) for (a, b), s in zip(bbox, shape))
    dst = tuple(slice(max(a, 0) - a, min(b, s) - a) for (a, b), s in zip(bbox, shape))
    if all(s.stop > s.start for s in src):
        out[(slice(None), *dst)] = array[(slice(None), *src)]
    return out


class RandPatchCropWithOversamplingd(Randomizable, MapTransform):
    """Crops a patch from a whole preprocessed case, nnU-Net's way.

    The patch is ``patch_size`` (usually enlarged for the later rotation/scaling, which crops back to the final size).
    Its corner is drawn so that the final patch can reach every border (padding of ``patch_size - final_patch_size``
    split on both sides). When ``data[force_fg_key]`` is true the patch is centred on a stored foreground voxel
    (``properties["class_locations"]``) of a randomly chosen class present in the case; with an ignore label, random
    patches are centred on annotated voxels. Outside the image the image is padded with 0 and the label with -1
    ("outside", later mapped to background or to the ignore label).

    Input: ``image`` ``(C, Z, Y, X)``, ``label`` ``(1, Z, Y, X)`` (memory maps are fine), ``properties``.
    Output: the same keys cropped to ``patch_size``; a 2D configuration (two-element patch) samples a slice and
    returns ``(C, Y, X)``.

    Args:
        keys: image and label keys (image first).
        patch_size: patch to cut, 2 or 3 values.
        final_patch_size: the network's patch (decides the border padding).
        has_ignore_label: the dataset has an ignore label (random patches then target annotated voxels).
        annotated_classes_key: the class_locations key holding annotated voxels (``(-1, *all_labels)``).
        force_fg_key: key of the flag that forces foreground.
        properties_key: key of the case properties.
    """

    def __init__(
        self,
        keys: Sequence[str],
        patch_size: Sequence[int],
        final_patch_size: Sequence[int],
        has_ignore_label: bool = False,
        annotated_classes_key: tuple | None = None,
        force_fg_key: str = "force_fg",
        properties_key: str = "properties",
        pad_values: Sequence[float] = (0, -1),
    ):
        MapTransform.__init__(self, keys)
        if len(patch_size) != len(final_patch_size) or len(patch_size) not in (2, 3):
            raise ValueError(f"patch_size {patch_size} and final_patch_size {final_patch_size} must both be 2D or 3D")
        self.is_2d = len(patch_size) == 2
        self.patch_size = np.array(([1] if self.is_2d else []) + [int(p) for p in patch_size])
        final = np.array(([1] if self.is_2d else []) + [int(p) for p in final_patch_size])
        self.need_to_pad = np.maximum(self.patch_size - final, 0)
        self.has_ignore_label = has_ignore_label
        self.annotated_classes_key = annotated_classes_key
        self.force_fg_key = force_fg_key
        self.properties_key = properties_key
        self.pad_values = list(pad_values) + [pad_values[-1]] * (len(self.keys) - len(pad_values))

    def _bounds(self, shape: Sequence[int]) -> tuple[list[int], list[int]]:
        need_to_pad = self.need_to_pad.copy()
        for d in range(len(shape)):
            if need_to_pad[d] + shape[d] < self.patch_size[d]:
                need_to_pad[d] = self.patch_size[d] - shape[d]
        lbs = [-int(need_to_pad[d]) // 2 for d in range(len(shape))]
        ubs = [int(shape[d] + need_to_pad[d] // 2 + need_to_pad[d] % 2 - self.patch_size[d]) for d in range(len(shape))]
        return lbs, ubs

    def _select_class(self, class_locations: Mapping, force_fg: bool):
        if not force_fg:  # random patch within annotated voxels (ignore label only)
            key = self.annotated_classes_key
            if key is None or len(class_locations.get(key, ())) == 0:
                warnings.warn("a case has no annotated voxels; sampling a random patch", stacklevel=3)
                return None
            return key
        eligible = [k for k, v in class_locations.items() if len(v) > 0]
        if self.annotated_classes_key in eligible and len(eligible) > 1:
            eligible.remove(self.annotated_classes_key)
        if not eligible:
            return None  # no foreground in this case: fall back to a random patch
        return eligible[self.R.randint(len(eligible))]

    def bbox(self, shape: Sequence[int], force_fg: bool, class_locations: Mapping | None) -> list[list[int]]:
        """The patch box ``[[start, stop], ...]`` for a case of spatial ``shape``."""
        lbs, ubs = self._bounds(shape)
        selected = None
        if force_fg or self.has_ignore_label:
            if class_locations is None:
                raise ValueError("foreground oversampling needs properties['class_locations'] from preprocessing")
            selected = self._select_class(class_locations, force_fg)
        if selected is None:
            starts = [self.R.randint(lbs[d], ubs[d] + 1) for d in range(len(shape))]
        else:
            voxels = class_locations[selected]
            voxel = voxels[self.R.randint(len(voxels))]
            starts = [max(lbs[d], int(voxel[d + 1]) - int(self.patch_size[d]) // 2) for d in range(len(shape))]
        return [[s, s + int(p)] for s, p in zip(starts, self.patch_size)]

    def randomize(self, data=None) -> None:  # the randomness is drawn in __call__ (it depends on the case)
        pass

    def __call__(self, data: Mapping[Hashable, object]) -> dict:
        d = dict(data)
        first = d[self.keys[0]]
        properties = d.get(self.properties_key, {})
        box = self.bbox(first.shape[1:], bool(d.get(self.force_fg_key, False)), properties.get("class_locations"))
        for key, pad in zip(self.key_iterator(d), self.pad_values):
            dtype = np.float32 if key == self.keys[0] else np.int16
            patch = crop_and_pad(d[key], box, pad, dtype=dtype)
            d[key] = patch[:, 0] if self.is_2d else patch
        d["patch_bbox"] = box
        return d
