"""``nnUNetv2_export_model_to_zip``: trained models of a dataset -> one zip in nnU-Net v2's layout.

Member paths are relative to ``nnUNet_results`` and the files are those nnU-Net 2.8.1's ``export_pretrained_model``
takes, per configuration ``DatasetXXX_Name/TRAINER__PLANS__CONFIG/``:

- ``plans.json``, ``dataset.json``, ``dataset_fingerprint.json`` (when the model folder has none, the dataset's
  ``$nnUNet_preprocessed`` copy is used);
- per fold ``fold_X/``: the requested checkpoints, ``progress.png``, ``validation/summary.json`` (with
  ``export_crossval_predictions``: every file of ``validation/`` but ``.npz``/``.pkl``), and ``debug.json`` and
  ``network_architecture.pdf`` when present; our trainer's ``validation_raw/`` goes in as nnU-Net's ``validation/``;
- ``crossval_results_folds_X_Y/``: ``summary.json``, ``postprocessing.pkl``, ``postprocessing.json`` when present
  (with ``export_crossval_predictions``: every file);

and per dataset the ensembles (``ensembles/ensemble___A___B___folds/``) whose members are all exported, and
``inference_information.json`` / ``inference_information.txt`` / ``inference_instructions.txt`` when present.
Checkpoints go in through :func:`~monai_nnunet.model_sharing.nnunet_checkpoint.nnunet_loadable_checkpoint`, so
nnU-Net installs and predicts with the zip too. The zip is written to a temporary file and renamed.
"""

from __future__ import annotations

import io
import os
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path

import torch

from monai_nnunet import paths
from monai_nnunet.dataset.naming import resolve_dataset_name
from monai_nnunet.evaluation.ensemble import VALIDATION_FOLDER_NAMES
from monai_nnunet.inference.model_loading import load_checkpoint
from monai_nnunet.model_sharing.nnunet_checkpoint import nnunet_loadable_checkpoint
from monai_nnunet.training.configs import trainer_output_folder_name
from monai_nnunet.utils.files import atomic_path, load_json

__all__ = ["DEFAULT_EXPORT_CONFIGURATIONS", "ModelExportError", "export_pretrained_model"]

#: nnU-Net's default ``-c`` of the export
DEFAULT_EXPORT_CONFIGURATIONS = ("3d_lowres", "3d_fullres", "2d", "3d_cascade_fullres")
_CROSSVAL_FILES = ("summary.json", "postprocessing.pkl", "postprocessing.json")
_DATASET_FILES = ("inference_information.json", "inference_information.txt", "inference_instructions.txt")


class ModelExportError(FileNotFoundError):
    """A model, fold or file the export needs is missing."""


def _fold_folder_name(fold: int | str) -> str:
    return "fold_all" if str(fold) == "all" else f"fold_{fold}"


def _folds_string(folds: Sequence[int | str]) -> str:
    return "_".join(str(f) for f in folds)


class _ZipWriter:
    """Members relative to ``nnUNet_results``, each written once."""

    def __init__(self, zf: zipfile.ZipFile, results: Path):
        self.zf, self.results, self.names = zf, results, []

    def _name(self, path: Path) -> str:
        return path.relative_to(self.results).as_posix()

    def file(self, path: Path, required: bool = True, what: str = "", member: Path | None = None) -> None:
        """Adds ``path`` as ``member`` (default: ``path``), relative to ``nnUNet_results``."""
        if not path.is_file():
            if required:
                raise ModelExportError(f"{path} is missing{what}")
            return
        name = self._name(member or path)
        if name not in self.names:
            self.zf.write(path, name)
            self.names.append(name)

    def data(self, path: Path, payload: bytes) -> None:
        name = self._name(path)
        if name not in self.names:
            self.zf.writestr(name, payload)
            self.names.append(name)


def _checkpoint_bytes(path: Path, plans: dict, dataset_json: dict, configuration: str, fold: int | str) -> bytes:
    checkpoint, converted = nnunet_loadable_checkpoint(load_checkpoint(path), plans, dataset_json, configuration,
                                                       fold, source=str(path))
    if not converted:
        print(f"warning: {path}: the network is not nnU-Net's plain U-Net, so nnU-Net cannot load this checkpoint "
              f"(monai_nnunet can)", file=sys.stderr)
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    return buffer.getvalue()


def _export_configuration(writer: _ZipWriter, folder: Path, dataset_name: str, configuration: str,
                          folds: Sequence[int | str], checkpoints: Sequence[str], crossval_predictions: bool) -> None:
    fold_folders = [folder / _fold_folder_name(f) for f in folds]
    missing = [p.name for p in fold_folders if not p.is_dir()]
    if missing:
        raise ModelExportError(f"not all requested folds are present in {folder}: {', '.join(missing)} missing "
                               f"(requested folds: {' '.join(str(f) for f in folds)}; choose them with -f)")
    if not (folder / "plans.json").is_file():
        raise ModelExportError(f"{folder / 'plans.json'} is missing ({dataset_name} {configuration})")
    plans = load_json(folder / "plans.json")
    dataset_json = load_json(folder / "dataset.json") if (folder / "dataset.json").is_file() else None
    if dataset_json is None:
        raise ModelExportError(f"{folder / 'dataset.json'} is missing ({dataset_name} {configuration})")
    for fold, fold_folder in zip(folds, fold_folders):
        writer.file(fold_folder / "debug.json", required=False)
        for name in checkpoints:
            path = fold_folder / name
            if not path.is_file():
                present = sorted(p.name for p in fold_folder.glob("*.pth"))
                raise ModelExportError(f"{path} is missing (checkpoints in {fold_folder.name}: "
                                       f"{', '.join(present) if present else '(none)'}; choose them with -chk)")
            writer.data(path, _checkpoint_bytes(path, plans, dataset_json, configuration, fold))
        writer.file(fold_folder / "progress.png", what=" (nnU-Net's export includes each fold's training curves)")
        writer.file(fold_folder / "network_architecture.pdf", required=False)
        validation = _validation_folder(fold_folder)
        member = fold_folder / "validation"  # nnU-Net's name for it
        if crossval_predictions:
            if validation.is_dir():
                for f in sorted(validation.iterdir()):
                    if f.is_file() and f.suffix not in (".npz", ".pkl"):
                        writer.file(f, member=member / f.name)
        else:
            writer.file(validation / "summary.json", what=" (the fold's final validation has not run)",
                        member=member / "summary.json")
    crossval = folder / f"crossval_results_folds_{_folds_string(folds)}"
    if crossval.is_dir():
        names = sorted(p.name for p in crossval.iterdir() if p.is_file()) if crossval_predictions else _CROSSVAL_FILES
        for name in names:
            writer.file(crossval / name, required=False)
    writer.file(folder / "plans.json")
    fingerprint = folder / "dataset_fingerprint.json"
    if not fingerprint.is_file():
        fallback = paths.nnunet_preprocessed() / dataset_name / "dataset_fingerprint.json" \
            if os.environ.get("nnUNet_preprocessed") else None
        if fallback is None or not fallback.is_file():
            raise ModelExportError(f"{fingerprint} is missing, and so is the dataset's fingerprint in "
                                   f"nnUNet_preprocessed (run nnUNetv2_extract_fingerprint -d {dataset_name})")
        writer.data(fingerprint, fallback.read_bytes())
    else:
        writer.file(fingerprint)
    writer.file(folder / "dataset.json")


def _validation_folder(fold_folder: Path) -> Path:
    """The trainer's ``validation_raw/`` (ours) or ``validation/`` (nnU-Net's), whichever has a summary."""
    for name in VALIDATION_FOLDER_NAMES:
        if (fold_folder / name / "summary.json").is_file():
            return fold_folder / name
    return fold_folder / VALIDATION_FOLDER_NAMES[0]


def _ensemble_members(name: str) -> tuple[list[str], str] | None:
    """``ensemble___A___B___0_1_2_3_4`` -> (``[A, B]``, ``"0_1_2_3_4"``); ``None`` for another folder name."""
    parts = name.split("___")
    if len(parts) < 3 or parts[0] != "ensemble":
        return None
    return parts[1:-1], parts[-1]


def export_pretrained_model(
    dataset_name_or_id: int | str,
    output_file: str | os.PathLike,
    configurations: Sequence[str] = DEFAULT_EXPORT_CONFIGURATIONS,
    trainer: str = "nnUNetTrainer",
    plans_identifier: str = "nnUNetPlans",
    folds: Sequence[int | str] = (0, 1, 2, 3, 4),
    strict: bool = True,
    save_checkpoints: Sequence[str] = ("checkpoint_final.pth",),
    export_crossval_predictions: bool = False,
) -> list[str]:
    """Writes the zip of a dataset's trained models (see the module docstring for what goes in).

    Args:
        dataset_name_or_id: ``4`` or ``"Dataset004_Hippocampus"``.
        output_file: the zip to write (replaced atomically).
        configurations: configurations to export.
        trainer: the ``-tr`` name the models were trained with.
        plans_identifier: the plans identifier.
        folds: the folds (each must be present in every exported configuration).
        strict: a configuration without a trained model is an error (else it is skipped).
        save_checkpoints: checkpoint files per fold.
        export_crossval_predictions: also the validation predictions and the merged cross-validation folder.

    Returns:
        The zip's member names, in order.

    Raises:
        ModelExportError: a model folder (``strict``), fold, checkpoint or required file is missing; or nothing
            was exported.
        ModelLoadingError: a checkpoint is unreadable or does not fit its plans.
    """
    results = paths.nnunet_results()
    dataset_name = resolve_dataset_name(dataset_name_or_id)
    folds = [f if str(f) == "all" else int(f) for f in folds]
    output_file = Path(output_file)
    exported: list[str] = []
    with atomic_path(output_file) as tmp:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            writer = _ZipWriter(zf, results)
            for configuration in configurations:
                folder = results / dataset_name / trainer_output_folder_name(trainer, plans_identifier, configuration)
                if not folder.is_dir():
                    if strict:
                        raise ModelExportError(f"{dataset_name} has no trained model of configuration "
                                               f"{configuration}: {folder} does not exist (--not_strict skips it)")
                    continue
                _export_configuration(writer, folder, dataset_name, configuration, folds, save_checkpoints,
                                      export_crossval_predictions)
                exported.append(folder.name)
            if not exported:
                raise ModelExportError(f"no trained model of {dataset_name} for configurations "
                                       f"{' '.join(configurations)} (trainer {trainer}, plans {plans_identifier})")
            ensembles = results / dataset_name / "ensembles"
            for ensemble in sorted(p for p in ensembles.iterdir() if p.is_dir()) if ensembles.is_dir() else []:
                members = _ensemble_members(ensemble.name)
                if members is None or not all(m in exported for m in members[0]):
                    continue
                names = (sorted(p.name for p in ensemble.iterdir() if p.is_file()) if export_crossval_predictions
                         else _CROSSVAL_FILES)
                for name in names:
                    writer.file(ensemble / name, required=False)
            for name in _DATASET_FILES:
                writer.file(results / dataset_name / name, required=False)
    return writer.names
