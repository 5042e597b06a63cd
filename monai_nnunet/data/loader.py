"""Batches of training patches from the preprocessed cache, nnU-Net's sampling, in background workers.

Every batch draws ``batch_size`` cases with replacement; the last ``batch_size - round(batch_size * (1 - p))``
samples are centred on foreground (``p`` = oversample_foreground_percent, 0.33). Cases are read through memory maps
(only the patch is read from disk). ``PatchBatchStream`` is an ``IterableDataset`` yielding whole batches, so a
``torch.utils.data.DataLoader`` with ``batch_size=None`` runs it in ``num_workers`` processes, each producing
complete batches (as nnU-Net's augmenter does), with bounded prefetching, pinned memory on CUDA and
deterministic streams for a given seed. A failure inside a worker names the case; a worker killed by the OS stops
the loader with PyTorch's "worker exited unexpectedly" error instead of a hang.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from monai_nnunet.data.previous_stage import load_previous_stage_seg, missing_previous_stage_cases
from monai_nnunet.preprocessing.cache import load_case
from monai_nnunet.transforms.sampling import is_oversampled_position

__all__ = ["PatchBatchStream", "PreprocessedCases", "apply_per_sample", "default_num_workers", "make_patch_loader"]


def default_num_workers() -> int:
    """``nnUNet_n_proc_DA`` when set, else one worker per CPU core but one (kept for the training process), at
    most 12."""
    if os.environ.get("nnUNet_n_proc_DA"):
        return max(0, int(os.environ["nnUNet_n_proc_DA"]))
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 1
    return max(1, min(12, cpus - 1))


class PreprocessedCases:
    """Cases of one configuration's cache, read lazily (memory-mapped ``.npy`` or ``.npz``).

    Args:
        folder: the configuration's cache folder.
        case_ids: the cases to use (e.g. a fold's training cases).
        previous_stage_folder: a cascade stage: the previous stage's ``predicted_next_stage/<configuration>``
            folder; every sample then also holds ``seg_prev`` ``(1, Z, Y, X)`` int16, that segmentation (nnU-Net's
            ``folder_with_segs_from_previous_stage``).

    Raises:
        ValueError: no cases.
        FileNotFoundError: a case is missing from the cache or from ``previous_stage_folder``.
    """

    def __init__(self, folder: str | os.PathLike, case_ids: Sequence[str],
                 previous_stage_folder: str | os.PathLike | None = None):
        self.folder = Path(folder)
        self.case_ids = list(case_ids)
        self.previous_stage_folder = None if previous_stage_folder is None else Path(previous_stage_folder)
        if not self.case_ids:
            raise ValueError(f"no cases given for {self.folder}")
        missing = [c for c in self.case_ids if not (self.folder / f"{c}.json").is_file()
                   and not (self.folder / f"{c}.pkl").is_file()]
        if missing:
            raise FileNotFoundError(
                f"{len(missing)} case(s) are not in the preprocessed cache {self.folder}: {missing[:5]}; "
                f"run nnUNetv2_preprocess for this configuration"
            )
        if self.previous_stage_folder is not None:
            missing = missing_previous_stage_cases(self.previous_stage_folder, self.case_ids)
            if missing:
                raise FileNotFoundError(f"{len(missing)} case(s) have no segmentation of the previous stage in "
                                        f"{self.previous_stage_folder}: {missing[:5]}")

    def __len__(self) -> int:
        return len(self.case_ids)

    def load(self, case_id: str) -> dict:
        data, seg, properties = load_case(self.folder, case_id)
        sample = {"image": data, "label": seg, "properties": properties, "case_id": case_id}
        if self.previous_stage_folder is not None:
            sample["seg_prev"] = load_previous_stage_seg(self.previous_stage_folder, case_id, data.shape[1:])
        return sample


def _collate(samples: list[dict], keys: Sequence[str]) -> dict:
    batch = {"keys": [s["case_id"] for s in samples]}
    for key in keys:
        first = samples[0][key]
        if isinstance(first, (list, tuple)):
            batch[key] = [torch.stack([torch.as_tensor(s[key][i]) for s in samples]) for i in range(len(first))]
        else:
            batch[key] = torch.stack([torch.as_tensor(s[key]) for s in samples])
    return batch


class PatchBatchStream(IterableDataset):
    """An endless stream of batches ``{"image": (B, C, *patch), "label": (B, 1, *patch) or a list per deep
    supervision output, "keys": [case ids], ...}``.

    Args:
        cases: the cases to draw from.
        batch_size: samples per batch.
        transforms: per-sample chain, starting with the patch crop (``RandPatchCropWithOversamplingd``).
        oversample_foreground_percent: share of each batch forced to contain foreground (0.33).
        seed: base seed; worker ``w`` uses ``seed + 1000 * w + 7919 * epoch`` (streams are reproducible; ``epoch`` is
            the attribute of that name, 0 unless set).
        output_keys: sample keys collated into the batch (``image``, ``label`` and any extra targets).
        probabilistic_oversampling: force foreground per sample with probability ``p`` instead of by position.
    """

    def __init__(
        self,
        cases: PreprocessedCases,
        batch_size: int,
        transforms: Callable[[dict], dict],
        oversample_foreground_percent: float = 0.33,
        seed: int = 12345,
        output_keys: Sequence[str] = ("image", "label"),
        probabilistic_oversampling: bool = False,
    ):
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0 <= oversample_foreground_percent <= 1:
            raise ValueError(f"oversample_foreground_percent must be in [0, 1], got {oversample_foreground_percent}")
        self.cases = cases
        self.batch_size = batch_size
        self.transforms = transforms
        self.oversample_foreground_percent = oversample_foreground_percent
        self.seed = seed
        self.output_keys = tuple(output_keys)
        self.probabilistic_oversampling = probabilistic_oversampling
        #: part of every pass's seed: set it (e.g. to the epoch) before a pass for a fresh but reproducible draw
        self.epoch = 0

    def _force_fg(self, rng: np.random.RandomState, position: int) -> bool:
        if self.probabilistic_oversampling:
            return bool(rng.uniform() < self.oversample_foreground_percent)
        return is_oversampled_position(position, self.batch_size, self.oversample_foreground_percent)

    def make_batch(self, rng: np.random.RandomState) -> dict:
        """One batch drawn with ``rng`` (case choice) and the transforms' own random state."""
        from monai.data import get_track_meta, set_track_meta

        track_meta = get_track_meta()
        set_track_meta(False)  # patches need no MetaTensor bookkeeping (several times faster)
        try:
            return self._make_batch(rng)
        finally:
            set_track_meta(track_meta)

    def _make_batch(self, rng: np.random.RandomState) -> dict:
        chosen = rng.choice(len(self.cases), self.batch_size, replace=True)
        samples = []
        for position, index in enumerate(chosen):
            case_id = self.cases.case_ids[index]
            try:
                sample = self.cases.load(case_id)
                sample["force_fg"] = self._force_fg(rng, position)
                samples.append(self.transforms(sample))
            except Exception as e:
                raise RuntimeError(f"failed to load or augment case {case_id} from {self.cases.folder}: "
                                   f"{type(e).__name__}: {e}") from e
        return _collate(samples, self.output_keys)

    def __iter__(self) -> Iterator[dict]:
        info = get_worker_info()
        worker = 0 if info is None else info.id
        seed = (self.seed + 1000 * worker + 7919 * int(self.epoch)) % (2**32)
        rng = np.random.RandomState(seed)
        if hasattr(self.transforms, "set_random_state"):
            self.transforms.set_random_state(seed=seed)
        while True:
            yield self.make_batch(rng)


def _init_worker(_: int) -> None:
    # one thread per worker: the workers are the parallelism; MetaTensor bookkeeping is not needed for patches
    torch.set_num_threads(1)
    from monai.data import set_track_meta

    set_track_meta(False)


def make_patch_loader(
    stream: PatchBatchStream,
    num_workers: int | None = None,
    pin_memory: bool = False,
    prefetch_batches_per_worker: int = 2,
) -> DataLoader:
    """A ``DataLoader`` over ``stream`` running it in ``num_workers`` processes (0: in this process).

    Args:
        stream: the batch stream.
        num_workers: worker processes (default ``default_num_workers()``).
        pin_memory: page-locked batches for fast host-to-GPU copies (use on CUDA).
        prefetch_batches_per_worker: batches each worker may have ready (bounds memory).
    """
    num_workers = default_num_workers() if num_workers is None else num_workers
    kwargs = {}
    if num_workers > 0:
        kwargs = {"prefetch_factor": prefetch_batches_per_worker, "persistent_workers": True,
                  "worker_init_fn": _init_worker}
    return DataLoader(stream, batch_size=None, num_workers=num_workers, pin_memory=pin_memory, **kwargs)


def apply_per_sample(transforms: Callable[[dict], dict], batch: dict, input_keys: Sequence[str],
                     output_keys: Sequence[str], device: torch.device | str) -> dict:
    """Runs a per-sample chain on every sample of a batch on ``device`` (GPU augmentation) and re-stacks it.

    Args:
        transforms: e.g. ``Compose(augmentation_transforms(...) + target_transforms(...))``.
        batch: ``{"image": (B, ...), "label": (B, ...), "keys": [...]}`` as the loader yields it (enlarged patches).
        input_keys: per-sample keys moved to ``device`` and transformed.
        output_keys: keys collated into the returned batch.
        device: where to run the transforms.
    """
    samples = []
    for i, case_id in enumerate(batch["keys"]):
        sample = {k: batch[k][i].to(device, non_blocking=True) for k in input_keys}
        sample = transforms(sample)
        sample["case_id"] = case_id
        samples.append(sample)
    return _collate(samples, output_keys)
