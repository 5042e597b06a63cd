"""The predictor: preprocessing in background workers, sliding-window inference on the device, export in background
workers, all three overlapping.

- :class:`Predictor` holds a trained model (one network per fold) and the inference settings. Build it from a results
  folder (:meth:`Predictor.from_results_folder`), from networks in memory (:meth:`Predictor.from_networks`, what a
  trainer's validation uses) or from checkpoint dicts (:meth:`Predictor.from_checkpoint_dict`).
- :meth:`Predictor.predict_from_files` is ``nnUNetv2_predict``: a ``DataLoader`` preprocesses upcoming cases in
  ``num_processes_preprocessing`` workers while the current one is predicted; finished logits go to a pool of
  ``num_processes_export`` processes that resample, un-crop and write them, with at most a few exports queued so
  memory stays bounded.
- :func:`predict_cases_to_folder` predicts already preprocessed cases (the trainer's final validation on its cache)
  with the same export path.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from tqdm import tqdm

from monai_nnunet.utils.devices import resolve_device
from monai_nnunet.dataset.dataset_json import DatasetDescription
from monai_nnunet.dataset.raw import CaseFiles
from monai_nnunet.inference.cases import (
    PreprocessingDataset,
    inference_preprocessing,
    list_input_cases,
    unwrap_transform_error,
)
from monai_nnunet.inference.export import export_prediction
from monai_nnunet.inference.model_loading import (
    DEFAULT_FOLDS,
    TrainedModel,
    _trained_model_from_checkpoints,
    load_trained_model,
)
from monai_nnunet.inference.sliding_window import predict_sliding_window_logits
from monai_nnunet.planning.cascade import cascade_input_labels, network_input_channels
from monai_nnunet.planning.plans import ConfigurationManager, PlansManager
from monai_nnunet.utils.files import save_json

__all__ = ["CasePredictionError", "Predictor", "predict_cases_to_folder", "resolve_device"]


class CasePredictionError(RuntimeError):
    """A case failed in preprocessing or export (or its worker died); the message names the case."""


def _start_method() -> str:
    forced = os.environ.get("MONAI_NNUNET_START_METHOD")
    if forced:
        return forced
    if sys.platform.startswith("linux") and threading.active_count() == 1:
        return "fork"
    return "spawn"


def _init_export_worker() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)


def _noop() -> None:
    return None


def _identity(item: Any) -> Any:
    return item


class _Exporter:
    """Exports in a process pool (or inline for ``num_processes == 0``), at most ``max_queued`` waiting."""

    def __init__(self, num_processes: int, start_method: str, max_queued: int = 2):
        self.num_processes = int(num_processes)
        self.max_queued = max_queued
        self.pending: list[tuple[Future, str]] = []
        self.outputs: list[Path] = []
        self.executor: ProcessPoolExecutor | None = None
        if self.num_processes > 0:
            self.executor = ProcessPoolExecutor(
                self.num_processes, mp_context=multiprocessing.get_context(start_method),
                initializer=_init_export_worker,
            )
            for f in [self.executor.submit(_noop) for _ in range(self.num_processes)]:
                f.result()  # start the workers now, before other threads exist

    def _collect(self, block_until: int) -> None:
        while len(self.pending) > block_until:
            done = [(f, c) for f, c in self.pending if f.done()]
            if not done:
                time.sleep(0.01)
                continue
            for item in done:
                self.pending.remove(item)
                future, case_id = item
                try:
                    self.outputs.append(future.result())
                except BrokenProcessPool as e:
                    raise CasePredictionError(
                        f"an export worker died while writing case {case_id} (often the OS killing it for lack of "
                        f"memory); try fewer export processes (-nps)"
                    ) from e
                except Exception as e:
                    raise CasePredictionError(f"exporting case {case_id} failed: {type(e).__name__}: {e}") from e

    def submit(self, case_id: str, *args: Any) -> None:
        if self.executor is None:
            try:
                self.outputs.append(export_prediction(*args))
            except Exception as e:
                raise CasePredictionError(f"exporting case {case_id} failed: {type(e).__name__}: {e}") from e
            return
        self._collect(self.num_processes + self.max_queued - 1)
        self.pending.append((self.executor.submit(export_prediction, *args), case_id))

    def finish(self) -> list[Path]:
        self._collect(0)
        return sorted(self.outputs)

    def close(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=True, cancel_futures=True)
            self.executor = None


class Predictor:
    """Sliding-window prediction with a trained model (one network per fold), nnU-Net v2's way.

    Args:
        model: the trained model (see :func:`~monai_nnunet.inference.load_trained_model`).
        step_size: window step as a fraction of the patch size, in (0, 1] (default 0.5).
        use_mirroring: mirroring test-time augmentation over the model's allowed axes.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"`` or ``None`` (CUDA when available).
        use_gaussian: Gaussian weighting of overlapping windows.
        sw_batch_size: windows per forward pass.
        mirror_batch_size: copies of a window (unflipped and mirrored) per forward pass; ``None`` (default): the
            plans' training batch size, a batch the plans sized to fit the device during training (with gradients,
            so inference without them fits too). Fewer, larger passes are faster on GPUs and on busy CPUs; 1 runs
            one pass per flip, as nnU-Net.
        verbose: print progress.

    Raises:
        ValueError: for an unavailable device, a step size outside (0, 1] or a mirror batch size below 1.
    """

    def __init__(
        self,
        model: TrainedModel,
        step_size: float = 0.5,
        use_mirroring: bool = True,
        device: str | torch.device | None = None,
        use_gaussian: bool = True,
        sw_batch_size: int = 1,
        mirror_batch_size: int | None = None,
        verbose: bool = True,
    ):
        if not 0 < float(step_size) <= 1:
            raise ValueError(f"step_size must be in (0, 1], got {step_size}")
        self.model = model
        self.step_size = float(step_size)
        self.use_mirroring = bool(use_mirroring)
        self.device = resolve_device(device)
        self.use_gaussian = bool(use_gaussian)
        self.sw_batch_size = int(sw_batch_size)
        if mirror_batch_size is not None and int(mirror_batch_size) < 1:
            raise ValueError(f"mirror_batch_size must be >= 1, got {mirror_batch_size}")
        self.mirror_batch_size = None if mirror_batch_size is None else int(mirror_batch_size)
        self.verbose = bool(verbose)

    # ----------------------------------------------------------------------------------------------- construction
    @classmethod
    def from_results_folder(
        cls,
        model_folder: str | os.PathLike,
        folds: Sequence[int | str] | int | str | None = DEFAULT_FOLDS,
        checkpoint_name: str = "checkpoint_final.pth",
        **kwargs: Any,
    ) -> "Predictor":
        """A predictor for the given folds of a results folder (``TRAINER__PLANS__CONFIG``).

        Args:
            model_folder: the results folder.
            folds: fold numbers and/or ``"all"``.
            checkpoint_name: checkpoint file in each fold folder.
            **kwargs: :class:`Predictor` settings (``step_size``, ``use_mirroring``, ``device``, ...).

        Raises:
            ModelLoadingError: a folder, fold or checkpoint is missing (the message lists what exists).
        """
        return cls(load_trained_model(model_folder, folds, checkpoint_name), **kwargs)

    @classmethod
    def from_networks(
        cls,
        networks: nn.Module | Sequence[nn.Module],
        plans: PlansManager | Mapping[str, Any],
        configuration: str,
        dataset_json: DatasetDescription | Mapping[str, Any],
        mirror_axes: Sequence[int] | None = None,
        trainer_name: str = "nnUNetTrainer",
        **kwargs: Any,
    ) -> "Predictor":
        """A predictor around networks in memory (e.g. the trainer's network during validation).

        The networks are used as they are (not copied): each prediction runs them in eval mode and restores their
        mode afterwards; with deep supervision on, the full-resolution output is used. Pass the bare network, not
        its ``DistributedDataParallel`` wrapper.

        Args:
            networks: one network, or one per fold (their logits are averaged).
            plans: the plans (dict or manager).
            configuration: configuration name.
            dataset_json: the dataset.json dict (or description).
            mirror_axes: axes for mirroring TTA (``None``: all spatial axes of the patch).
            trainer_name: recorded for information.
            **kwargs: :class:`Predictor` settings; ``device`` defaults to the device of the first network's
                parameters (so each DDP rank predicts on its own GPU).
        """
        plans = plans if isinstance(plans, PlansManager) else PlansManager(dict(plans))
        dataset = (dataset_json if isinstance(dataset_json, DatasetDescription)
                   else DatasetDescription(dict(dataset_json)))
        config = plans.get_configuration(configuration)
        networks = [networks] if isinstance(networks, nn.Module) else list(networks)
        if kwargs.get("device") is None:
            parameter = next(iter(networks[0].parameters()), None)
            kwargs["device"] = parameter.device if parameter is not None else None
        axes = tuple(range(len(config.patch_size))) if mirror_axes is None else tuple(int(a) for a in mirror_axes)
        model = TrainedModel(plans=plans, configuration=config, configuration_name=configuration, dataset=dataset,
                             networks=networks, mirror_axes=axes, trainer_name=trainer_name,
                             folds=list(range(len(networks))))
        return cls(model, **kwargs)

    @classmethod
    def from_checkpoint_dict(
        cls,
        checkpoints: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        plans: PlansManager | Mapping[str, Any] | None = None,
        dataset_json: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> "Predictor":
        """A predictor from checkpoint dicts in memory (the trainer's checkpoint format, or nnU-Net's).

        Args:
            checkpoints: one checkpoint dict or one per fold.
            plans: the plans; default: the checkpoint's ``plans``.
            dataset_json: the dataset.json dict; default: the checkpoint's ``dataset_json``.
            **kwargs: :class:`Predictor` settings.

        Raises:
            ModelLoadingError: when plans or dataset.json are neither given nor in the checkpoint, or the weights do
                not fit.
        """
        if isinstance(checkpoints, Mapping):
            checkpoints = [checkpoints]
        pm = None if plans is None else (plans if isinstance(plans, PlansManager) else PlansManager(dict(plans)))
        model = _trained_model_from_checkpoints(list(enumerate(checkpoints)), pm, dataset_json, None)
        return cls(model, **kwargs)

    # -------------------------------------------------------------------------------------------------- accessors
    @property
    def plans(self) -> PlansManager:
        return self.model.plans

    @property
    def configuration(self) -> ConfigurationManager:
        return self.model.configuration

    @property
    def dataset(self) -> DatasetDescription:
        return self.model.dataset

    @property
    def mirror_axes(self) -> tuple[int, ...]:
        """The axes actually mirrored (empty with ``use_mirroring=False``)."""
        return self.model.mirror_axes if self.use_mirroring else ()

    # ------------------------------------------------------------------------------------------------- prediction
    def predict_preprocessed_case(self, data: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Logits of one preprocessed case, mean over mirrors and folds.

        Args:
            data: ``(C, Z, Y, X)`` float32 in the preprocessed space (a cache entry or a preprocessed input).

        Returns:
            Logits ``(K, Z, Y, X)`` float32 on the CPU.

        Raises:
            ValueError: when the channel count differs from the model's.
        """
        channels = int(data.shape[0])
        if channels != self.num_input_channels:
            cascade = f" ({self.dataset.num_channels} image channel(s) and one per foreground label of the " \
                      f"{self.previous_stage} segmentation)" if self.previous_stage else ""
            raise ValueError(f"the model takes {self.num_input_channels} channel(s){cascade}, the data has {channels}")
        modes = [network.training for network in self.model.networks]
        try:
            return predict_sliding_window_logits(
                self.model.networks, data, self.configuration.patch_size, self.step_size, self.mirror_axes,
                self.device, sw_batch_size=self.sw_batch_size, use_gaussian=self.use_gaussian,
                mirror_batch_size=self.mirror_batch_size or max(1, self.configuration.batch_size),
            )
        finally:  # a trainer's network goes back to training mode after validation
            for network, training in zip(self.model.networks, modes):
                network.train(training)

    def preprocess_case(self, files: Sequence[str | os.PathLike], case_id: str | None = None) -> dict:
        """Preprocesses one input case (its channel files): ``{"case_id", "data", "properties"}``.

        Raises:
            ImageReadError, GeometryMismatchError: the case's files are unreadable or disagree (message names it).
        """
        chain = inference_preprocessing(self.plans, self.configuration)
        try:
            sample = chain({"image": [str(f) for f in files], "case_id": case_id})
        except RuntimeError as e:
            cause = unwrap_transform_error(e)
            if cause is e:
                raise
            raise cause from None
        return {"case_id": case_id, "data": sample["image"], "properties": sample["properties"]}

    @property
    def num_input_channels(self) -> int:
        """The network's input channels: the image channels, plus one per foreground label for a cascade stage."""
        return network_input_channels(self.configuration, self.dataset)

    @property
    def previous_stage(self) -> str | None:
        """The configuration whose predictions a cascade stage needs (``3d_lowres``), else ``None``."""
        return self.configuration.previous_stage_name

    def predict_from_files(
        self,
        inputs: str | os.PathLike | Sequence[Sequence[str | os.PathLike]],
        output_folder: str | os.PathLike,
        save_probabilities: bool = False,
        overwrite: bool = True,
        num_processes_preprocessing: int = 3,
        num_processes_export: int = 3,
        previous_stage_predictions: str | os.PathLike | None = None,
    ) -> list[Path]:
        """Predicts every case of an input folder (or explicit channel-file lists) into ``output_folder``.

        One file per case, named like the case and in the input's format and geometry; ``dataset.json``,
        ``plans.json`` and ``predict_from_raw_data_args.json`` are written beside them as nnU-Net does.

        Args:
            inputs: a folder with ``CASE_0000<ending>`` files, or one list of channel files per case.
            output_folder: created if missing.
            save_probabilities: also write ``CASE.npz`` / ``CASE.json`` (and nnU-Net's ``CASE.pkl``) for ensembling.
            overwrite: ``False`` skips cases whose outputs exist (``--continue_prediction``).
            num_processes_preprocessing: preprocessing workers (0: in this process).
            num_processes_export: export workers (0: in this process).
            previous_stage_predictions: a cascade stage: the folder of the previous stage's segmentations of the same
                cases (``CASE<file_ending>``, e.g. ``nnUNetv2_predict -c 3d_lowres`` output), nnU-Net's
                ``-prev_stage_predictions``; preprocessed with each image and given as one-hot input channels.

        Returns:
            The segmentation files written.

        Raises:
            InputCaseError: a case lacks a channel file (checked for all cases before anything runs).
            ValueError: a cascade stage without ``previous_stage_predictions``, or a case without a file there.
            CasePredictionError: a case failed in preprocessing or export; the message names it.
        """
        cases = list_input_cases(inputs, self.dataset)
        previous_files = self._previous_stage_files(cases, previous_stage_predictions)
        output_folder = Path(output_folder)
        output_folder.mkdir(parents=True, exist_ok=True)
        save_json({"inputs": str(inputs) if isinstance(inputs, (str, os.PathLike)) else [[str(f) for f in c]
                                                                                         for c in inputs],
                   "output_folder": str(output_folder), "save_probabilities": save_probabilities,
                   "overwrite": overwrite, "num_processes_preprocessing": num_processes_preprocessing,
                   "num_processes_segmentation_export": num_processes_export, "step_size": self.step_size,
                   "use_mirroring": self.use_mirroring, "mirror_axes": list(self.mirror_axes),
                   "device": str(self.device), "folds": [str(f) for f in self.model.folds],
                   "trainer_name": self.model.trainer_name, "configuration": self.model.configuration_name,
                   "previous_stage_predictions": None if previous_stage_predictions is None
                   else str(previous_stage_predictions)},
                  output_folder / "predict_from_raw_data_args.json")
        save_json(self.dataset.raw, output_folder / "dataset.json")
        save_json(self.plans.plans, output_folder / "plans.json")
        if not overwrite:
            ending = self.dataset.file_ending
            cases = [c for c in cases if not ((output_folder / f"{c.case_id}{ending}").is_file() and (
                not save_probabilities or (output_folder / f"{c.case_id}.npz").is_file()))]
        if not cases:
            return []
        method = _start_method()
        exporter = _Exporter(num_processes_export, method)
        try:
            samples = self._preprocessed_stream(cases, num_processes_preprocessing, method, previous_files)
            self._predict_stream(samples, output_folder, save_probabilities, exporter, len(cases))
            return exporter.finish()
        finally:
            exporter.close()

    def _previous_stage_files(self, cases: Sequence[CaseFiles], folder: str | os.PathLike | None
                              ) -> dict[str, Path] | None:
        """Each case's previous-stage segmentation file (a cascade stage), checked for every case up front."""
        if self.previous_stage is None:
            if folder is not None:
                raise ValueError(f"-prev_stage_predictions given, but {self.model.configuration_name} is not a cascade "
                                 f"stage (it has no previous stage)")
            return None
        if folder is None:
            raise ValueError(f"configuration {self.model.configuration_name} is a cascade stage: it needs the "
                             f"predictions of {self.previous_stage} for the same cases (-prev_stage_predictions FOLDER)")
        folder = Path(folder)
        if not folder.is_dir():
            raise ValueError(f"-prev_stage_predictions folder {folder} does not exist")
        files = {c.case_id: folder / f"{c.case_id}{self.dataset.file_ending}" for c in cases}
        missing = [str(f.name) for f in files.values() if not f.is_file()]
        if missing:
            raise ValueError(f"{len(missing)} case(s) have no {self.previous_stage} prediction in {folder}: "
                             f"{', '.join(missing[:5])}")
        return files

    def _preprocessed_stream(self, cases: Sequence[CaseFiles], num_processes: int, method: str,
                             previous_stage_files: Mapping[str, Path] | None = None) -> Iterable[dict]:
        dataset = PreprocessingDataset(cases, self.plans, self.model.configuration_name,
                                       previous_stage_files=previous_stage_files,
                                       one_hot_labels=cascade_input_labels(self.configuration, self.dataset))
        num_workers = max(0, min(int(num_processes), len(cases)))
        loader = torch.utils.data.DataLoader(
            dataset, batch_size=None, shuffle=False, num_workers=num_workers, collate_fn=_identity,
            multiprocessing_context=method if num_workers > 0 else None,
            prefetch_factor=2 if num_workers > 0 else None,
        )
        try:
            for sample in loader:
                if sample["error"] is not None:
                    raise CasePredictionError(f"preprocessing failed: {sample['error']}")
                yield sample
        except RuntimeError as e:
            if "DataLoader worker" in str(e) and "killed" in str(e):
                raise CasePredictionError(
                    "a preprocessing worker died (often the OS killing it for lack of memory); try fewer "
                    "preprocessing processes (-npp)"
                ) from e
            raise

    def _predict_stream(self, samples: Iterable[Mapping[str, Any]], output_folder: Path, save_probabilities: bool,
                        exporter: _Exporter, total: int | None = None,
                        on_logits: Callable[[str, np.ndarray, Mapping[str, Any]], None] | None = None) -> None:
        bar = tqdm(total=total, desc="Predicting", disable=not self.verbose, dynamic_ncols=True)
        try:
            for sample in samples:
                case_id = str(sample["case_id"])
                logits = self.predict_preprocessed_case(sample["data"]).numpy()
                if on_logits is not None:
                    on_logits(case_id, logits, sample["properties"])
                exporter.submit(case_id, logits, sample["properties"], self.plans, self.configuration,
                                self.dataset, str(output_folder / case_id), save_probabilities)
                bar.update()
        finally:
            bar.close()


def predict_cases_to_folder(
    predictor: Predictor,
    samples: Iterable[Mapping[str, Any]],
    output_folder: str | os.PathLike,
    save_probabilities: bool = False,
    num_processes_export: int = 2,
    on_logits: Callable[[str, np.ndarray, Mapping[str, Any]], None] | None = None,
) -> list[Path]:
    """Predicts preprocessed cases (e.g. a fold's validation cases from the cache) into ``output_folder``.

    Inference runs here; resampling, un-cropping and writing run in ``num_processes_export`` background processes
    (0: in this process), overlapping with the next case's inference.

    Args:
        predictor: the predictor (e.g. :meth:`Predictor.from_networks` around the trained network).
        samples: dicts ``{"case_id", "data" (C, Z, Y, X), "properties"}``, e.g. from
            :func:`~monai_nnunet.inference.iter_preprocessed_cases`; a generator is consumed lazily.
        output_folder: created if missing; ``CASE<file_ending>`` per case (+ ``.npz``/``.json``/``.pkl``).
        save_probabilities: also write probabilities for ensembling (``--npz``).
        num_processes_export: export worker processes.
        on_logits: called with ``(case_id, logits (K, Z, Y, X), properties)`` of every case before its export (the
            final validation of a ``3d_lowres`` fold writes its next stage's inputs with it).

    Returns:
        The segmentation files written.

    Raises:
        CasePredictionError: a case's export failed (the message names it).
    """
    output_folder = Path(output_folder)
    output_folder.mkdir(parents=True, exist_ok=True)
    exporter = _Exporter(num_processes_export, _start_method())
    try:
        total = len(samples) if hasattr(samples, "__len__") else None
        predictor._predict_stream(samples, output_folder, save_probabilities, exporter, total, on_logits)
        return exporter.finish()
    finally:
        exporter.close()

