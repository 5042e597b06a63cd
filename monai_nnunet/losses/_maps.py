"""Ground-truth instance (blob) and region maps, in NumPy with scikit-image / SciPy.

Used by the dictionary transforms ``LabelToBlobsd`` / ``LabelToRegionsd`` (data pipeline) and by
``BlobDiceLoss`` / ``RegionDiceLoss`` when no precomputed map is passed to ``forward``.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.measure import label as _sk_label

__all__ = ["label_blobs", "boundary_regions", "REGION_BOUNDARY", "REGION_INTERIOR"]

#: region id of the boundary band in maps made by :func:`boundary_regions`
REGION_BOUNDARY = 1
#: region id of everything off the boundary band (object core and background away from it)
REGION_INTERIOR = 2


def _check_connectivity(connectivity: int | None, ndim: int) -> int:
    if connectivity is None:
        return ndim
    if isinstance(connectivity, bool) or not isinstance(connectivity, (int, np.integer)):
        raise ValueError(f"connectivity must be None or an int in [1, {ndim}], got {connectivity!r}.")
    if not 1 <= int(connectivity) <= ndim:
        raise ValueError(
            f"connectivity must be in [1, {ndim}] for {ndim}D labels (None = {ndim}, full), got {connectivity}."
        )
    return int(connectivity)


def label_blobs(
    label: np.ndarray,
    connectivity: int | None = None,
    include_background: bool = False,
    ignore_label: int | None = None,
) -> np.ndarray:
    """
    Connected components ("blobs") of every class of a label map, one integer id per blob.

    Args:
        label: integer label map of spatial shape (H, W[, D]) (no channel axis).
        connectivity: neighbourhood of a component, the number of orthogonal hops (1 to ndim);
            None (default) is full connectivity: 8 in 2D, 26 in 3D.
        include_background: if True, the components of label 0 get ids too.
        ignore_label: voxels with this label belong to no blob.

    Returns:
        int32 array of the shape of ``label``: 0 where no blob, blob ids ``1..K`` (unique over
        all classes) elsewhere. Adjacent components of different classes get different ids.

    Raises:
        ValueError: when ``label`` has no spatial axis or ``connectivity`` is out of range.
    """
    label = np.asarray(label)
    if label.ndim < 1:
        raise ValueError(f"label must have at least one spatial axis, got shape {label.shape}.")
    conn = _check_connectivity(connectivity, label.ndim)
    work = label.astype(np.int64, copy=True)
    if include_background:
        work += 1  # skimage treats 0 as "no component"
    if ignore_label is not None:
        work[label == ignore_label] = 0
    out = _sk_label(work, background=0, connectivity=conn)
    return out.astype(np.int32, copy=False)


def boundary_regions(
    label: np.ndarray,
    num_classes: int,
    boundary_width: int = 1,
    connectivity: int | None = None,
    ignore_label: int | None = None,
) -> np.ndarray:
    """
    Per-class region maps: a boundary band around each class's ground-truth surface, and the rest.

    For class ``c`` with mask ``g = (label == c)``, the band is ``dilate^w(g) & ~erode^w(g)``:
    ``boundary_width`` voxels on each side of the surface (the erosion treats the image border as
    inside, so a structure cut by a patch edge gets no band along that edge). Region ids:
    ``1`` (:data:`REGION_BOUNDARY`) on the band, ``2`` (:data:`REGION_INTERIOR`) everywhere
    else -- the object's core *and* the background away from it, so that false positives far from
    the object still cost -- and ``0`` on ``ignore_label`` voxels. A class absent from ``label``
    is region 2 everywhere.

    Args:
        label: integer label map of spatial shape (H, W[, D]) (no channel axis).
        num_classes: number of classes C (the network's output channels).
        boundary_width: half-width of the band in voxels (>= 1).
        connectivity: structuring element of the morphology, in orthogonal hops (1 to ndim);
            None (default) is full connectivity (a 3x3[x3] cube).
        ignore_label: voxels with this label are region 0 (left out) in every channel.

    Returns:
        uint8 array (C, H, W[, D]).

    Raises:
        ValueError: for a bad ``num_classes``, ``boundary_width`` or ``connectivity``.
    """
    label = np.asarray(label)
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}.")
    if isinstance(boundary_width, bool) or not isinstance(boundary_width, (int, np.integer)) or boundary_width < 1:
        raise ValueError(f"boundary_width must be an int >= 1, got {boundary_width!r}.")
    if label.ndim < 1:
        raise ValueError(f"label must have at least one spatial axis, got shape {label.shape}.")
    conn = _check_connectivity(connectivity, label.ndim)
    structure = ndimage.generate_binary_structure(label.ndim, conn)
    out = np.full((int(num_classes),) + label.shape, REGION_INTERIOR, dtype=np.uint8)
    for c in range(int(num_classes)):
        gt = label == c
        if not gt.any():
            continue
        dilated = ndimage.binary_dilation(gt, structure=structure, iterations=int(boundary_width))
        eroded = ndimage.binary_erosion(gt, structure=structure, iterations=int(boundary_width), border_value=1)
        out[c][dilated & ~eroded] = REGION_BOUNDARY
    if ignore_label is not None:
        out[:, label == ignore_label] = 0
    return out
