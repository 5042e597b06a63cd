"""Trained folds -> a self-contained MONAI bundle zip (``monai-nnunet export-bundle``), also from a model trained by
nnU-Net v2 itself (``monai-nnunet import-nnunet``).

The zip holds one top-level folder (MONAI's convention): ``configs/`` (``inference.yaml`` and the same as
``inference.json`` for ``monai.bundle.load``, ``evaluate.yaml``, ``metadata.json`` with the validation Dice,
``logging.conf``, ``plans.json``, ``dataset.json``), ``models/model.pt`` (the first fold's state dict) and
``models/model_fold_N.pt`` (further folds, averaged at inference), optionally ``models/model.ts``, ``docs/README.md``
with the validation Dice per class, and ``LICENSE``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Sequence

import torch
import yaml

from monai_nnunet.bundle import TEMPLATE_BUNDLE
from monai_nnunet.bundle.metadata import build_metadata
from monai_nnunet.utils.files import atomic_path, load_json, save_json

__all__ = ["BundleExportError", "export_bundle", "import_nnunet", "write_bundle_zip"]

MODEL_BEGIN, MODEL_END = "# >>> model parameters", "# <<< model parameters"


class BundleExportError(ValueError):
    """The model folder, a fold or a checkpoint is missing or unusable."""


def _model_file(index: int, fold) -> str:
    return "models/model.pt" if index == 0 else f"models/model_fold_{fold}.pt"


def _model_parameters(model, folds: Sequence) -> dict:
    configuration = json.loads(json.dumps(model.configuration.configuration))
    return {
        "configuration": model.configuration_name,
        "trainer_name": model.trainer_name,
        "model_files": [f"$@bundle_root + '/{_model_file(i, f)}'" for i, f in enumerate(folds)],
        "mirror_axes": list(model.mirror_axes),
        # the run's own network: its class and arguments, as the checkpoint recorded them
        "network_def": dict(model.network_def) if model.network_def is not None else {
            "_target_": "monai_nnunet.bundle.inference.network_from_configuration",
            "configuration": configuration,
            "num_input_channels": model.dataset.num_channels,
            "num_outputs": model.dataset.num_segmentation_heads,
        },
    }


def _inference_config(model, folds: Sequence) -> str:
    text = (TEMPLATE_BUNDLE / "configs" / "inference.yaml").read_text()
    start, end = text.find(MODEL_BEGIN), text.find(MODEL_END)
    block = yaml.safe_dump(_model_parameters(model, folds), sort_keys=False, default_flow_style=None, width=120)
    return text[: start + len(MODEL_BEGIN)] + "\n" + block + text[end:]


def _validation_results(model_folder: Path | None, folds: Sequence) -> dict:
    """Per fold, the mean Dice per class of its final validation (``fold_N/validation_raw/summary.json``)."""
    results = {}
    for fold in folds:
        summary_file = None if model_folder is None else model_folder / f"fold_{fold}" / "validation_raw" / "summary.json"
        if summary_file is not None and summary_file.is_file():
            summary = load_json(summary_file)
            results[str(fold)] = {"per_class": {k: v["Dice"] for k, v in summary["mean"].items()},
                                  "mean": summary["foreground_mean"]["Dice"],
                                  "cases": len(summary["metric_per_case"])}
    return results


def _readme(model, folds: Sequence, validation: dict, source: str) -> str:
    text = (TEMPLATE_BUNDLE / "docs" / "README.md").read_text()
    names = {str(v): k for k, v in model.dataset.labels.items() if not isinstance(v, tuple)}
    lines = ["", "## This model", "",
             f"- dataset: {model.plans.dataset_name}; configuration `{model.configuration_name}`; trainer "
             f"`{model.trainer_name}`; folds {', '.join(str(f) for f in folds)} ({source})",
             f"- patch size {model.configuration.patch_size}, spacing {model.configuration.spacing}, "
             f"test-time mirroring on axes {list(model.mirror_axes)}", ""]
    if validation:
        lines += ["## Validation Dice (final validation of each fold, original geometry)", "",
                  "| fold | cases | " + " | ".join(names.get(k, k) for k in next(iter(validation.values()))["per_class"])
                  + " | mean |",
                  "| --- | --- | " + " | ".join("---" for _ in next(iter(validation.values()))["per_class"]) + " | --- |"]
        for fold, r in validation.items():
            lines.append(f"| {fold} | {r['cases']} | " + " | ".join(f"{v:.4f}" for v in r["per_class"].values())
                         + f" | {r['mean']:.4f} |")
    else:
        lines += ["No validation results were found next to the checkpoints.", ""]
    return text + "\n".join(lines) + "\n"


def write_bundle_zip(model, folds: Sequence, output_zip: str | os.PathLike, validation: dict | None = None,
                     torchscript: bool = False, source: str = "trained with monai-nnunet") -> Path:
    """Writes the bundle zip of ``model`` (a ``monai_nnunet.inference.TrainedModel``) atomically.

    Returns:
        The zip file.
    """
    output_zip = Path(output_zip)
    if output_zip.suffix != ".zip":
        raise BundleExportError(f"the output must be a .zip file, got {output_zip}")
    name = output_zip.stem
    validation = validation or {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / name
        (root / "configs").mkdir(parents=True)
        (root / "models").mkdir()
        (root / "docs").mkdir()
        save_json(model.plans.plans, root / "configs" / "plans.json")
        save_json(model.dataset.raw, root / "configs" / "dataset.json")
        inference = _inference_config(model, folds)
        (root / "configs" / "inference.yaml").write_text(inference)
        save_json(yaml.safe_load(inference), root / "configs" / "inference.json")  # monai.bundle.load reads .json
        for extra in ("evaluate.yaml", "logging.conf"):
            shutil.copyfile(TEMPLATE_BUNDLE / "configs" / extra, root / "configs" / extra)
        metrics = {}
        if validation:
            means = [r["mean"] for r in validation.values()]
            metrics["val_mean_dice"] = sum(means) / len(means)
        save_json(build_metadata(model.dataset.raw, model.configuration_name, metrics), root / "configs" / "metadata.json")
        for i, (fold, network) in enumerate(zip(folds, model.networks)):
            torch.save(network.state_dict(), root / _model_file(i, fold))
        if torchscript:
            _export_torchscript(root, model)
        (root / "docs" / "README.md").write_text(_readme(model, folds, validation, source))
        shutil.copyfile(TEMPLATE_BUNDLE / "LICENSE", root / "LICENSE")
        with atomic_path(output_zip) as tmp_zip:
            with zipfile.ZipFile(tmp_zip, "w", zipfile.ZIP_DEFLATED) as z:
                for file in sorted(root.rglob("*")):
                    if file.is_file():
                        z.write(file, file.relative_to(Path(tmp)).as_posix())
    return output_zip


def _export_torchscript(root: Path, model) -> None:
    """``models/model.ts`` of the first fold, traced (MONAI's ``ckpt_export``) at the patch size."""
    from monai.bundle import ckpt_export

    patch = model.configuration.patch_size
    shape = [1, model.dataset.num_channels, *patch]
    cwd = os.getcwd()
    try:
        os.chdir(root)
        ckpt_export(net_id="network_def", filepath="models/model.ts", ckpt_file="models/model.pt",
                    meta_file="configs/metadata.json", config_file="configs/inference.json", use_trace=True,
                    input_shape=shape, converter_kwargs={"check_trace": False})
    except Exception as e:
        raise BundleExportError(f"TorchScript export of the network failed ({type(e).__name__}: {e}); export "
                                f"without --torchscript") from e
    finally:
        os.chdir(cwd)


def export_bundle(model_folder: str | os.PathLike, output_zip: str | os.PathLike, folds: Sequence = (0,),
                  checkpoint_name: str = "checkpoint_final.pth", torchscript: bool = False) -> Path:
    """Exports trained folds of ``model_folder`` (``$nnUNet_results/DatasetXXX/TRAINER__PLANS__CONFIG``).

    Raises:
        ModelLoadingError: a folder, fold or checkpoint is missing, or the weights do not fit the plans.
    """
    from monai_nnunet.inference.model_loading import load_trained_model, parse_folds

    folds = parse_folds(folds)
    model = load_trained_model(model_folder, folds, checkpoint_name)
    return write_bundle_zip(model, folds, output_zip, _validation_results(Path(model_folder), folds), torchscript)


def import_nnunet(results_folder: str | os.PathLike, output_zip: str | os.PathLike, folds: Sequence | None = None,
                  checkpoint_name: str = "checkpoint_final.pth", torchscript: bool = False) -> Path:
    """Turns a model trained by nnU-Net v2 (its ``plans.json``, ``dataset.json``, ``fold_N/checkpoint_final.pth``
    with PlainConvUNet weights) into the same bundle zip; the weights are mapped onto our network.

    Args:
        folds: the folds to include (default: every ``fold_N`` folder with the checkpoint).

    Raises:
        ModelLoadingError: a missing file, or weights that do not fit the plans.
    """
    from monai_nnunet.inference.model_loading import ModelLoadingError, load_trained_model, parse_folds

    results_folder = Path(results_folder)
    if folds is None:
        found = sorted(p.name[len("fold_"):] for p in results_folder.glob("fold_*")
                       if (p / checkpoint_name).is_file()) if results_folder.is_dir() else []
        if not found:
            raise ModelLoadingError(f"{results_folder} holds no fold_N/{checkpoint_name}")
        folds = [int(f) if f.isdigit() else f for f in found]
    folds = parse_folds(folds)
    model = load_trained_model(results_folder, folds, checkpoint_name)
    return write_bundle_zip(model, folds, output_zip, _validation_results(results_folder, folds), torchscript,
                            source="trained with nnU-Net v2, imported by monai-nnunet")
