"""Reading and writing images in nnU-Net's axis order.

Images are read with MONAI's ``LoadImage`` and its ITK reader in the reader's default index order (x, y, z),
then transposed explicitly to the numpy order SimpleITK gives, (z, y, x), spacing with them. That is the order
nnU-Net v2 plans, slices (2d) and trains in, so plans and weights move between the two tools unchanged.
``ITKReader(reverse_indexing=True)`` is not used: with MONAI 1.6.1 / itk 5.4.7 it returned corrupted voxel values
and left the spacing in (x, y, z) order.

Arrays returned here are ``(C, Z, Y, X)``; 2D images become ``(C, 1, Y, X)`` with spacing ``(999, sy, sx)``, as in
nnU-Net. The geometry needed to write a prediction back (ITK spacing, origin, direction, and MONAI's RAS affine) is
kept in the properties dict under nnU-Net's key names.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = [
    "GeometryMismatchError",
    "count_nonfinite_stored_values",
    "ImageReadError",
    "read_images",
    "read_segmentation",
    "write_image",
    "write_segmentation",
]

#: Spacing given to the (absent) slice axis of 2D images, as nnU-Net does.
SPACING_2D_SLICE_AXIS = 999.0

_LPS_TO_RAS_FLIP_AXES = 2  # the first two world axes change sign between LPS (ITK) and RAS (MONAI)


class ImageReadError(OSError):
    """An image file could not be read (missing, truncated, unsupported)."""


class GeometryMismatchError(ValueError):
    """Files of one case disagree in shape, spacing, origin or direction."""


_loader = None


def _gzip_payload_size(path: Path) -> int:
    """Decompressed size of a gzip file; raises ``ImageReadError`` if the stream is cut short or corrupt."""
    import gzip
    import zlib

    total = 0
    try:
        with gzip.open(path, "rb") as f:
            while chunk := f.read(1 << 22):
                total += len(chunk)
    except (EOFError, OSError, zlib.error) as e:
        raise ImageReadError(f"{path}: truncated or corrupt gzip stream ({e})") from e
    return total


def check_nifti_complete(path: Path) -> None:
    """Raises ``ImageReadError`` when a NIfTI file holds fewer voxel bytes than its header declares.

    ITK reads a truncated NIfTI without complaint (filling the rest with zeros), so this is checked here: ``.nii``
    by file size; ``.nii.gz`` by the gzip trailer's size field, confirmed by decompressing when it disagrees.
    """
    import nibabel as nib

    name = path.name.lower()
    if not (name.endswith(".nii") or name.endswith(".nii.gz")):
        return
    try:
        image = nib.load(str(path))
        expected = int(image.dataobj.offset) + int(np.prod(image.shape)) * image.get_data_dtype().itemsize
    except Exception as e:
        raise ImageReadError(f"{path}: not a readable NIfTI file ({type(e).__name__}: {e})") from e
    if name.endswith(".nii"):
        actual = path.stat().st_size
    else:
        with open(path, "rb") as f:
            f.seek(-4, os.SEEK_END)
            trailer = int.from_bytes(f.read(4), "little")
        if trailer == expected % (1 << 32):
            return
        actual = _gzip_payload_size(path)
    if actual < expected:
        raise ImageReadError(f"{path}: truncated file ({actual} bytes of data where the header needs {expected})")


def count_nonfinite_stored_values(path: Path) -> int:
    """NaN/inf voxels as stored in a NIfTI file (0 for other formats).

    ITK's NIfTI reader replaces NaN with 0 on reading, so NaN intensities are invisible in the loaded array; this
    reads the stored values with nibabel to find them.
    """
    import nibabel as nib

    name = path.name.lower()
    if not (name.endswith(".nii") or name.endswith(".nii.gz")):
        return 0
    image = nib.load(str(path))
    if not np.issubdtype(image.get_data_dtype(), np.floating):  # integers cannot hold NaN: no second read
        return 0
    return int((~np.isfinite(np.asanyarray(image.dataobj))).sum())


def _load_image_with_monai(path: Path):
    """Reads one file with MONAI's ``LoadImage`` + ``ITKReader``; returns (array in reader order, meta dict)."""
    global _loader
    if _loader is None:
        from monai.data import ITKReader
        from monai.transforms import LoadImage

        _loader = LoadImage(reader=ITKReader(), image_only=False, dtype=None)
    if not path.is_file():
        raise ImageReadError(f"{path}: file does not exist")
    check_nifti_complete(path)
    try:
        image, meta = _loader(str(path))
    except Exception as e:  # ITK raises RuntimeError for truncated/corrupt files, MONAI wraps others
        raise ImageReadError(f"{path}: could not be read ({type(e).__name__}: {str(e).splitlines()[0][:300]})") from e
    return np.asarray(image.array if hasattr(image, "array") else image), meta


def _geometry_from_ras_affine(ras_affine: np.ndarray) -> dict:
    """ITK spacing/origin/direction (LPS, ITK index order) from MONAI's RAS affine."""
    affine = np.array(ras_affine, dtype=np.float64)
    nd = affine.shape[0] - 1
    flip = np.ones(nd + 1)
    flip[: min(_LPS_TO_RAS_FLIP_AXES, nd)] = -1
    lps = np.diag(flip) @ affine
    spacing = np.linalg.norm(lps[:nd, :nd], axis=0)
    direction = lps[:nd, :nd] / spacing
    return {
        "spacing": tuple(float(s) for s in spacing),
        "origin": tuple(float(o) for o in lps[:nd, nd]),
        "direction": tuple(float(d) for d in direction.reshape(-1)),
    }


def _to_nnunet_order(array: np.ndarray, meta: dict, path: Path) -> tuple[np.ndarray, dict]:
    """(x, y[, z]) [+ channel] reader order -> (C, Z, Y, X); returns the array and its properties."""
    channel_dim = meta.get("original_channel_dim", "no_channel")
    if isinstance(channel_dim, (int, np.integer)) and not isinstance(channel_dim, bool):
        array = np.moveaxis(array, int(channel_dim), 0)
    else:
        array = array[None]
    ras_affine = np.asarray(meta["original_affine"], dtype=np.float64)
    nd = ras_affine.shape[0] - 1
    if array.ndim - 1 != nd:
        raise ImageReadError(f"{path}: {array.ndim - 1} spatial axes but a {nd}D geometry; unsupported image layout")
    # reverse the spatial axes: ITK index order (x, y, z) -> numpy order (z, y, x)
    array = np.transpose(array, (0, *range(nd, 0, -1)))
    geometry = _geometry_from_ras_affine(ras_affine)
    spacing = list(reversed(geometry["spacing"]))
    if nd == 2:
        array = array[:, None]
        spacing = [SPACING_2D_SLICE_AXIS, *spacing]
    elif nd != 3:
        raise ImageReadError(f"{path}: {nd}D images are not supported (2D and 3D are)")
    properties = {"spacing": spacing, "sitk_stuff": geometry, "affine": ras_affine.tolist(), "ndim": nd}
    return np.ascontiguousarray(array), properties


def _same_geometry(a: dict, b: dict) -> bool:
    ga, gb = a["sitk_stuff"], b["sitk_stuff"]
    return (
        np.allclose(ga["spacing"], gb["spacing"], rtol=1e-4, atol=1e-6)
        and np.allclose(ga["origin"], gb["origin"], rtol=1e-4, atol=1e-3)
        and np.allclose(ga["direction"], gb["direction"], atol=1e-4)
    )


def read_images(files: Sequence[str | os.PathLike], case_id: str | None = None) -> tuple[np.ndarray, dict]:
    """Reads the channel files of one case and stacks them.

    Args:
        files: one file per channel, in channel order.
        case_id: used in error messages.

    Returns:
        ``(data, properties)``: ``data`` float32 ``(C, Z, Y, X)``; ``properties`` with ``spacing`` (z, y, x),
        ``sitk_stuff`` (ITK spacing, origin, direction in ITK order), ``affine`` (RAS, as MONAI gives it).

    Raises:
        ImageReadError: a file is missing or unreadable.
        GeometryMismatchError: the channels differ in shape or geometry.
    """
    if not files:
        raise ValueError(f"case {case_id}: no image files given")
    arrays, props = [], None
    for f in files:
        path = Path(f)
        raw, meta = _load_image_with_monai(path)
        array, p = _to_nnunet_order(raw, meta, path)
        if props is not None:
            if array.shape[1:] != arrays[0].shape[1:]:
                raise GeometryMismatchError(
                    f"case {case_id}: {path.name} has shape {array.shape[1:]} but {Path(files[0]).name} has "
                    f"{arrays[0].shape[1:]} (z, y, x)"
                )
            if not _same_geometry(props, p):
                raise GeometryMismatchError(
                    f"case {case_id}: {path.name} and {Path(files[0]).name} differ in spacing, origin or direction: "
                    f"{p['sitk_stuff']} vs {props['sitk_stuff']}"
                )
        else:
            props = p
        arrays.append(array.astype(np.float32, copy=False))
    data = arrays[0] if len(arrays) == 1 else np.concatenate(arrays, axis=0)
    return data, props


def read_segmentation(file: str | os.PathLike) -> tuple[np.ndarray, dict]:
    """Reads a label map as ``(1, Z, Y, X)`` in its stored dtype (see ``read_images`` for the properties).

    Raises:
        ImageReadError: the file is missing, unreadable, or has more than one channel.
    """
    path = Path(file)
    raw, meta = _load_image_with_monai(path)
    seg, props = _to_nnunet_order(raw, meta, path)
    if seg.shape[0] != 1:
        raise ImageReadError(f"{path}: a label map must have one channel, found {seg.shape[0]}")
    return seg, props


def _itk_image(array_zyx: np.ndarray, properties: dict):
    import itk

    geometry = properties["sitk_stuff"]
    nd = len(geometry["spacing"])
    if nd == 2:
        if array_zyx.ndim == 3:
            if array_zyx.shape[0] != 1:
                raise ValueError(f"a 2D image needs shape (1, Y, X) or (Y, X), got {array_zyx.shape}")
            array_zyx = array_zyx[0]
    if array_zyx.ndim != nd:
        raise ValueError(f"array of shape {array_zyx.shape} does not fit a {nd}D geometry")
    image = itk.image_from_array(np.ascontiguousarray(array_zyx))
    image.SetSpacing([float(s) for s in geometry["spacing"]])
    image.SetOrigin([float(o) for o in geometry["origin"]])
    image.SetDirection(np.array(geometry["direction"], dtype=np.float64).reshape(nd, nd))
    return image


def write_image(array_zyx: np.ndarray, file: str | os.PathLike, properties: dict, compress: bool = True) -> None:
    """Writes an array in (Z, Y, X) order (or (Y, X) for 2D) with the geometry in ``properties["sitk_stuff"]``.

    The file is written to a temporary name and renamed, so readers never see a partial file.
    """
    import itk

    from monai_nnunet.utils.files import atomic_path

    with atomic_path(file) as tmp:
        itk.imwrite(_itk_image(array_zyx, properties), str(tmp), compression=compress)


def write_segmentation(seg_zyx: np.ndarray, file: str | os.PathLike, properties: dict) -> None:
    """Writes a label map (uint8 when it fits, else uint16) in the geometry of ``properties``."""
    seg_zyx = np.asarray(seg_zyx)
    if seg_zyx.min() < 0:
        raise ValueError(f"{file}: label maps must not contain negative values")
    dtype = np.uint8 if seg_zyx.max() < 256 else np.uint16
    write_image(seg_zyx.astype(dtype, copy=False), file, properties)
