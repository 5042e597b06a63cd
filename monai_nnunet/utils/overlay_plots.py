"""``nnUNetv2_plot_overlay_pngs``: one PNG per training case, the slice with the most foreground with its labels
overlaid, as nnU-Net 2.8.1's ``nnunetv2/utilities/overlay_plots.py`` draws it.

The slice is chosen along the first axis (z of nnU-Net's (z, y, x) order; spacing is disregarded, as in nnU-Net) by
nnU-Net's ``select_slice_to_plot2`` rule. The image is rescaled to [0, 255] in grey; each label value ``v`` present in
the slice adds ``overlay_intensity`` times its colour (nnU-Net's colour cycle, by the rank of ``v`` among the slice's
values, background included) to its pixels; the result is rescaled to [0, 255] again and saved with matplotlib's
``imsave``. Cases come from the raw dataset (``--use_raw``) or the preprocessed cache of a configuration.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.image import imsave

from monai_nnunet import paths
from monai_nnunet.dataset.io import read_images, read_segmentation
from monai_nnunet.dataset.naming import resolve_dataset_name
from monai_nnunet.dataset.raw import raw_dataset
from monai_nnunet.planning.plans import PlansManager
from monai_nnunet.preprocessing.cache import case_ids_in_cache, load_case
from monai_nnunet.utils.files import atomic_path
from monai_nnunet.utils.parallel import WorkerPool, default_num_processes

__all__ = [
    "COLOR_CYCLE",
    "generate_overlay",
    "generate_overlays_from_preprocessed",
    "generate_overlays_from_raw",
    "hex_to_rgb",
    "plot_overlay",
    "select_slice_to_plot",
]

#: nnU-Net's colours: background (black), then one per label value in increasing order
COLOR_CYCLE = ("000000", "4363d8", "f58231", "3cb44b", "e6194B", "911eb4", "ffe119", "bfef45", "42d4f4", "f032e6",
               "000075", "9A6324", "808000", "800000", "469990")


def hex_to_rgb(value: str) -> tuple[int, int, int]:
    """``"4363d8"`` -> ``(67, 99, 216)``.

    Raises:
        ValueError: for anything but six hex digits.
    """
    if len(value) != 6:
        raise ValueError(f"expected six hex digits, got {value!r}")
    return tuple(int(value[i:i + 2], 16) for i in (0, 2, 4))  # type: ignore[return-value]


def generate_overlay(image: np.ndarray, segmentation: np.ndarray, mapping: Mapping[int, int] | None = None,
                     color_cycle: Sequence[str] = COLOR_CYCLE, overlay_intensity: float = 0.6) -> np.ndarray:
    """An RGB overlay of a label map on a 2D image, as nnU-Net's ``generate_overlay``.

    Args:
        image: ``(H, W)`` grey or ``(H, W, 1)``.
        segmentation: ``(H, W)`` label map.
        mapping: label value -> index into ``color_cycle``; default: the slice's values in increasing order.
        color_cycle: hex colours.
        overlay_intensity: how much of the colour is added (higher: brighter, less transparent).

    Returns:
        ``(H, W, 3)`` uint8.

    Raises:
        ValueError: for other shapes, or more label values than colours.
    """
    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim != 2:
        raise ValueError(f"only 2D images (H, W) or (H, W, 1) are supported, got shape {image.shape}")
    if segmentation.shape != image.shape:
        raise ValueError(f"image {image.shape} and segmentation {segmentation.shape} differ in shape")
    image = np.tile(image[:, :, None], (1, 1, 3))
    image = image - image.min()
    top = image.max()
    image = image / top * 255 if top > 0 else image  # a constant image stays black instead of NaN
    if mapping is None:
        mapping = {v: i for i, v in enumerate(np.unique(segmentation))}
    if max(mapping.values(), default=0) >= len(color_cycle):
        raise ValueError(f"{len(mapping)} label values but only {len(color_cycle)} colours")
    for value, index in mapping.items():
        image[segmentation == value] += overlay_intensity * np.array(hex_to_rgb(color_cycle[index]))
    top = image.max()
    image = image / top * 255 if top > 0 else image
    return image.astype(np.uint8)


def select_slice_to_plot(image: np.ndarray, segmentation: np.ndarray) -> int:
    """The first-axis slice of a ``(Z, Y, X)`` label map with the most foreground, by nnU-Net's
    ``select_slice_to_plot2``: each foreground value's voxels per slice are normalised (by the running total of
    the normalised table, as nnU-Net computes it) and the slice with the highest mean over values wins.

    Args:
        image: ``(Z, Y, X)``, unused (kept so the rule can be swapped, as in nnU-Net).
        segmentation: ``(Z, Y, X)`` label map.

    Returns:
        The slice index (0 when there is no foreground).
    """
    classes = [c for c in np.unique(segmentation) if c > 0]
    if not classes:
        return 0
    per_slice = np.zeros((segmentation.shape[0], len(classes)))
    for i, c in enumerate(classes):
        per_slice[:, i] = (segmentation == c).sum((1, 2))
        per_slice[:, i] /= per_slice.sum()
    return int(np.argmax(per_slice.mean(1)))


def _save_png(overlay: np.ndarray, output_file: str | os.PathLike) -> Path:
    with atomic_path(output_file) as tmp:
        imsave(tmp, overlay, format="png")  # what nnU-Net's plt.imsave calls
    return Path(output_file)


def _overlay_of_volume(image: np.ndarray, seg: np.ndarray, source: str, overlay_intensity: float) -> np.ndarray:
    if image.shape != seg.shape:
        raise ValueError(f"{source}: image {image.shape} and segmentation {seg.shape} differ in shape")
    if image.ndim != 3:
        raise ValueError(f"{source}: only 3D (or 1 x H x W) images are supported, got shape {image.shape}")
    z = select_slice_to_plot(image, seg)
    return generate_overlay(image[z], seg[z], overlay_intensity=overlay_intensity)


def plot_overlay(image_file: str | os.PathLike, segmentation_file: str | os.PathLike, output_file: str | os.PathLike,
                 overlay_intensity: float = 0.6) -> Path:
    """Writes the overlay PNG of one raw image (one channel file) and its label file.

    Raises:
        ImageReadError: a file is unreadable.
        ValueError: image and label differ in shape, or are not 3D.
    """
    image, _ = read_images([image_file])
    seg, _ = read_segmentation(segmentation_file)
    overlay = _overlay_of_volume(image[0], seg[0], str(segmentation_file), overlay_intensity)
    return _save_png(overlay, output_file)


def _plot_raw_job(job: tuple[str, str, str], overlay_intensity: float) -> Path:
    return plot_overlay(job[0], job[1], job[2], overlay_intensity)


def _plot_preprocessed_job(job: tuple[str, str, str], overlay_intensity: float, channel_idx: int) -> Path:
    folder, case_id, output_file = job
    data, seg, _ = load_case(folder, case_id, mmap=False)
    if channel_idx >= data.shape[0]:
        raise ValueError(f"-channel_idx {channel_idx}: the cache has {data.shape[0]} channel(s) "
                         f"(up to {data.shape[0] - 1})")
    seg = np.array(seg[0])
    seg[seg < 0] = 0  # the outside-the-nonzero-crop marker is background here
    overlay = _overlay_of_volume(np.asarray(data[channel_idx]), seg, f"{folder}/{case_id}", overlay_intensity)
    return _save_png(overlay, output_file)


def _run(jobs: list[tuple[str, str, str]], fn, extra: tuple, num_processes: int | None) -> list[Path]:
    written = []
    with WorkerPool(min(num_processes or default_num_processes(), max(1, len(jobs)))) as pool:
        for _, path in pool.map(fn, jobs, [Path(j[2]).stem for j in jobs], desc="Plotting", extra_args=extra,
                                show_progress=False):
            written.append(path)
    return sorted(written)


def generate_overlays_from_raw(dataset_name_or_id: int | str, output_folder: str | os.PathLike,
                               num_processes: int | None = None, channel_idx: int = 0,
                               overlay_intensity: float = 0.6) -> list[Path]:
    """One ``CASE.png`` per training case of the raw dataset (channel ``channel_idx``).

    Returns:
        The PNG files written.

    Raises:
        FileNotFoundError: a case's image or label is missing.
        ValueError: ``channel_idx`` is not a channel of the dataset.
    """
    dataset = raw_dataset(dataset_name_or_id)
    if not 0 <= channel_idx < dataset.description.num_channels:
        raise ValueError(f"-channel_idx {channel_idx}: {dataset.name} has {dataset.description.num_channels} "
                         f"channel(s)")
    output_folder = Path(output_folder)
    output_folder.mkdir(parents=True, exist_ok=True)
    jobs = []
    for case_id, case in dataset.training_cases().items():
        for f in (case.images[channel_idx], case.label):
            if f is None or not Path(f).is_file():
                raise FileNotFoundError(f"{f} is missing (case {case_id} of {dataset.name})")
        jobs.append((str(case.images[channel_idx]), str(case.label), str(output_folder / f"{case_id}.png")))
    return _run(jobs, _plot_raw_job, (overlay_intensity,), num_processes)


def generate_overlays_from_preprocessed(dataset_name_or_id: int | str, output_folder: str | os.PathLike,
                                        num_processes: int | None = None, channel_idx: int = 0,
                                        configuration: str | None = None, plans_identifier: str = "nnUNetPlans",
                                        overlay_intensity: float = 0.6) -> list[Path]:
    """One ``CASE.png`` per case of a configuration's preprocessed cache (default configuration: ``3d_fullres``
    when planned, else ``2d``).

    Returns:
        The PNG files written.

    Raises:
        FileNotFoundError: the dataset has not been preprocessed for that plans and configuration.
        LookupError: the plans have no such configuration.
    """
    name = resolve_dataset_name(dataset_name_or_id)
    folder = paths.nnunet_preprocessed() / name
    plans_file = folder / f"{plans_identifier}.json"
    if not plans_file.is_file():
        raise FileNotFoundError(f"{plans_file} does not exist: run preprocessing for {name} first")
    plans = PlansManager(plans_file)
    if configuration is None:
        configuration = "3d_fullres" if "3d_fullres" in plans.available_configurations else "2d"
    cache = folder / plans.get_configuration(configuration).data_identifier
    case_ids = case_ids_in_cache(cache) if cache.is_dir() else []
    if not case_ids:
        raise FileNotFoundError(f"{cache} holds no preprocessed cases: run nnUNetv2_preprocess -d {name} -c "
                                f"{configuration} -p {plans_identifier} first")
    output_folder = Path(output_folder)
    output_folder.mkdir(parents=True, exist_ok=True)
    jobs = [(str(cache), c, str(output_folder / f"{c}.png")) for c in case_ids]
    return _run(jobs, _plot_preprocessed_job, (overlay_intensity, channel_idx), num_processes)
