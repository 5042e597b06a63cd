"""The folder a bundle run trains into: never over a training by accident, and always a complete results folder.

A fold's ``configs/train.yaml`` run in place (``python -m monai.bundle run --config_file configs/train.yaml`` in the
fold) would otherwise train over the fold; as ``nnUNetv2_train`` does, the run refuses a folder that holds a
training unless it resumes it (``--resume True``) or is told to start again (``--overwrite True``). A run into a new
folder (``--output_dir DIR``) makes ``DIR``'s parent a results folder (``plans.json``, ``dataset.json``, the fold),
so ``nnUNetv2_predict_from_modelfolder``, ``export-bundle`` and ``nnUNetv2_export_model_to_zip`` accept it.
"""

from __future__ import annotations

import os
from pathlib import Path

from monai_nnunet.planning.plans import plans_with_patch_size
from monai_nnunet.training.distributed import rank
from monai_nnunet.utils.files import load_json, save_json

__all__ = ["OutputFolderError", "TRAINING_MARKERS", "check_output_folder", "write_results_folder_files"]

#: files that mean a training was started (or finished) in a folder
TRAINING_MARKERS = ("checkpoint_final.pth", "checkpoint_latest.pth", "checkpoint_best.pth")


class OutputFolderError(SystemExit):
    """The run must not write into its output folder; the message is printed as one line (``SystemExit``, so
    ``python -m monai.bundle run`` ends with it and status 1 instead of a traceback)."""

    def __init__(self, message: str) -> None:
        super().__init__(f"error: {message}")


def check_output_folder(output_dir: str | os.PathLike, resume: bool = False, overwrite: bool = False) -> None:
    """Refuses to train into a folder that holds a started or finished training, unless the run resumes it or was
    told to overwrite it.

    Args:
        output_dir: the run's fold folder.
        resume: the run continues the training there (``--resume True``, ``nnUNetv2_train -c``).
        overwrite: the run trains again from scratch (``--overwrite True``, ``nnUNetv2_train --overwrite``).

    Raises:
        OutputFolderError: naming the folder, what it holds and the three ways on.
    """
    if resume is True or overwrite is True:  # the strings "false" / "true" of a command line are not consent
        return
    folder = Path(output_dir)
    found = [name for name in TRAINING_MARKERS if (folder / name).is_file()]
    if found:
        state = "a finished training" if found[0] == "checkpoint_final.pth" else "a started training"
        raise OutputFolderError(
            f"{folder} already holds {found[0]} ({state}): continue it with --resume True, train it again from "
            f"scratch with --overwrite True, or train into a new folder with --output_dir DIR")


def _same_json(path: Path, content: dict) -> bool:
    try:
        return load_json(path) == content
    except (OSError, ValueError):
        return False


def write_results_folder_files(output_dir: str | os.PathLike, plans_file: str | os.PathLike,
                               dataset_json_file: str | os.PathLike, configuration: str | None = None,
                               patch_size=None) -> Path:
    """Writes the run's ``plans.json`` and ``dataset.json`` beside its fold folder (the results folder), as
    ``nnUNetv2_train`` does; a run that changed the patch size records it in the configuration there, so prediction
    slides the window the network was trained on. Existing files are kept when they are the run's; other plans or
    datasets are refused, so one results folder never mixes models of two. Under DDP only rank 0 writes.

    Args:
        output_dir: the run's fold folder (``.../TRAINER__PLANS__CONFIG/fold_N``).
        plans_file, dataset_json_file: the run's plans and dataset.json.
        configuration, patch_size: the configuration trained and the run's patch size (``None``: the planned one).

    Returns:
        The results folder.

    Raises:
        OutputFolderError: the results folder holds a different ``plans.json`` or ``dataset.json``.
    """
    results = Path(output_dir).resolve().parent
    if rank() != 0:  # one writer under DDP
        return results
    for name, source in (("plans.json", plans_file), ("dataset.json", dataset_json_file)):
        content = load_json(source)
        if name == "plans.json" and configuration is not None:
            content = plans_with_patch_size(content, configuration, patch_size)
        target = results / name
        if target.is_file():
            if not _same_json(target, content):
                raise OutputFolderError(
                    f"{target} belongs to another run ({source} differs): train into a fold folder of a new results "
                    f"folder with --output_dir DIR/fold_N")
            continue
        save_json(content, target)
    return results
