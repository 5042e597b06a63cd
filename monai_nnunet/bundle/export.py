"""Trained folds -> a self-contained MONAI bundle zip (``monai-nnunet export-bundle``), also from a model trained by
nnU-Net v2 itself (``monai-nnunet import-nnunet``).

The zip holds one top-level folder (MONAI's convention): ``configs/`` (``inference.yaml`` and the same as
``inference.json`` for ``monai.bundle.load``, ``evaluate.yaml``, ``metadata.json`` with the validation Dice,
``logging.conf``, ``plans.json``, ``dataset.json``), ``models/model.pt`` (the first fold's state dict) and
``models/model_fold_N.pt`` (further folds, averaged at inference), optionally ``models/model.ts`` (TorchScript) and
``models/*.onnx`` with ``configs/inference_onnx.yaml``, ``docs/README.md`` (the model zoo's sections, filled from the
run) and ``LICENSE``. ``network_def`` of ``inference.yaml`` returns the full-resolution logits as one tensor.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
import yaml

from monai_nnunet.bundle import TEMPLATE_BUNDLE
from monai_nnunet.bundle.metadata import build_metadata
from monai_nnunet.bundle.readme import bundle_readme
from monai_nnunet.utils.files import atomic_path, load_json, save_json

__all__ = ["BundleExportError", "export_bundle", "fold_model_parameters", "import_nnunet", "inference_config",
           "write_bundle_zip"]

MODEL_BEGIN, MODEL_END = "# >>> model parameters", "# <<< model parameters"


class BundleExportError(ValueError):
    """The model folder, a fold or a checkpoint is missing or unusable."""


def _model_file(index: int, fold) -> str:
    return "models/model.pt" if index == 0 else f"models/model_fold_{fold}.pt"


def _model_parameters(model, folds: Sequence) -> dict:
    """The model parameters block of a zip's ``inference.yaml``: the files inside the bundle, the run's
    configuration, mirror axes and network, and ``network`` (the folds' weights in that network, averaged)."""
    configuration = json.loads(json.dumps(model.configuration.configuration))
    return {
        "bundle_root": ".",
        "plans_file": "$@bundle_root + '/configs/plans.json'",
        "dataset_json_file": "$@bundle_root + '/configs/dataset.json'",
        "configuration": model.configuration_name,
        "trainer_name": model.trainer_name,
        "model_files": [f"$@bundle_root + '/{_model_file(i, f)}'" for i, f in enumerate(folds)],
        "mirror_axes": list(model.mirror_axes),
        # the run's own network (its class and arguments, as the checkpoint recorded them) in its inference form:
        # the full-resolution logits as one tensor, TorchScript-compatible (the model zoo's ckpt_export)
        "network_def": {"_target_": "monai_nnunet.networks.full_resolution_network",
                        "network": dict(model.network_def)} if model.network_def is not None else {
            "_target_": "monai_nnunet.bundle.inference.network_from_configuration",
            "configuration": configuration,
            "num_input_channels": model.dataset.num_channels,
            "num_outputs": model.dataset.num_segmentation_heads,
        },
        "network": "$bundle_inference.fold_ensemble(@network_def, @model_files, @device)",
    }


def fold_model_parameters(configuration: str, trainer_name: str) -> dict:
    """The model parameters block of a fold folder's ``inference.yaml`` (written by ``nnUNetv2_train``).

    The bundle is the fold folder wherever it lies (``bundle_root`` is the folder of the bundle being run), and it
    predicts as ``nnUNetv2_predict -f FOLD`` does: with ``checkpoint`` (``checkpoint_final.pth``; any list of
    checkpoints in ``model_files``, averaged), each network built from its checkpoint's own record, the plans and
    dataset.json of the results folder (the fold folder's parent) and the mirror axes the checkpoint allows.

    Args:
        configuration: the run's plans configuration, e.g. ``"3d_fullres"``.
        trainer_name: the run's ``-tr`` name.

    Returns:
        The block's values, in their order in the file.
    """
    return {
        "bundle_root": "$nnunet_bundle.bundle_folder()",
        "plans_file": "$@bundle_root + '/../plans.json'",
        "dataset_json_file": "$@bundle_root + '/../dataset.json'",
        "configuration": str(configuration),
        "trainer_name": str(trainer_name),
        "checkpoint": "checkpoint_final.pth",
        "model_files": ["$@bundle_root + '/' + @checkpoint"],
        "trained_model": "$bundle_inference.trained_model_from_checkpoints(@model_files, @plans_file, "
                         "@dataset_json_file, @configuration)",
        "mirror_axes": "$list(@trained_model.mirror_axes)",
        "network_def": "$@trained_model.networks[0]",
        "network": "$bundle_inference.FoldEnsemble(@trained_model.networks).to(@device).eval()",
    }


def inference_config(model_parameters: Mapping[str, Any], template: str | os.PathLike = TEMPLATE_BUNDLE) -> str:
    """The template's ``inference.yaml`` with its model parameters block replaced.

    Args:
        model_parameters: the block's values (:func:`fold_model_parameters`, or a zip's).
        template: the template bundle.

    Returns:
        The file's text.

    Raises:
        BundleExportError: when the template lacks the block's markers.
    """
    source = Path(template) / "configs" / "inference.yaml"
    text = source.read_text()
    start, end = text.find(MODEL_BEGIN), text.find(MODEL_END)
    if start < 0 or end < start:
        raise BundleExportError(f"{source} lacks the '{MODEL_BEGIN}' / "
                                f"'{MODEL_END}' block")
    line_end = text.index("\n", start)
    block = yaml.safe_dump(dict(model_parameters), sort_keys=False, default_flow_style=None, width=120)
    return text[: line_end + 1] + block + text[end:]


def _inference_config(model, folds: Sequence) -> str:
    return inference_config(_model_parameters(model, folds))


def _validation_results(model_folder: Path | None, folds: Sequence) -> dict:
    """Per fold, the mean Dice per class of its final validation (``fold_N/validation_raw/summary.json``)."""
    results = {}
    for fold in folds:
        summary_file = (None if model_folder is None
                        else model_folder / f"fold_{fold}" / "validation_raw" / "summary.json")
        if summary_file is not None and summary_file.is_file():
            summary = load_json(summary_file)
            results[str(fold)] = {"per_class": {k: v["Dice"] for k, v in summary["mean"].items()},
                                  "mean": summary["foreground_mean"]["Dice"],
                                  "cases": len(summary["metric_per_case"])}
    return results


def write_bundle_zip(model, folds: Sequence, output_zip: str | os.PathLike, validation: dict | None = None,
                     torchscript: bool = False, source: str = "trained with monai-nnunet", onnx: bool = False
                     ) -> Path:
    """Writes the bundle zip of ``model`` (a ``monai_nnunet.inference.TrainedModel``) atomically.

    Args:
        model: the trained model (plans, dataset, networks of the folds).
        folds: the folds, in the order of ``model.networks``.
        output_zip: the ``.zip`` to write.
        validation: per fold, the final validation's Dice (for the metadata and README).
        torchscript: also ``models/model.ts`` (``network_def`` scripted).
        source: how the model was trained, for the README.
        onnx: also ``models/*.onnx`` and ``configs/inference_onnx.yaml``.

    Returns:
        The zip file.

    Raises:
        BundleExportError: a bad output name, or a cascade stage (its input needs another model's predictions).
    """
    previous = model.configuration.previous_stage_name
    if previous is not None:
        raise BundleExportError(
            f"{model.configuration_name} is a cascade stage: its input includes the predictions of {previous}, which a "
            f"single-model bundle cannot make; export {previous} and 3d_fullres instead, or predict the cascade "
            f"with nnUNetv2_predict -c {model.configuration_name}")
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
        save_json(build_metadata(model.dataset.raw, model.configuration_name, metrics,
                                 configuration=model.configuration),
                  root / "configs" / "metadata.json")
        for i, (fold, network) in enumerate(zip(folds, model.networks)):
            torch.save(network.state_dict(), root / _model_file(i, fold))
        if torchscript:
            _export_torchscript(root)
        if onnx:
            _export_onnx(root, model, folds)
        (root / "docs" / "README.md").write_text(bundle_readme(model, folds, validation, source, name,
                                                               torchscript=torchscript, onnx=onnx))
        shutil.copyfile(TEMPLATE_BUNDLE / "LICENSE", root / "LICENSE")
        with atomic_path(output_zip) as tmp_zip:
            with zipfile.ZipFile(tmp_zip, "w", zipfile.ZIP_DEFLATED) as z:
                for file in sorted(root.rglob("*")):
                    if file.is_file():
                        z.write(file, file.relative_to(Path(tmp)).as_posix())
    return output_zip


def _export_torchscript(root: Path) -> None:
    """``models/model.ts`` of the first fold: ``network_def`` scripted by MONAI's ``ckpt_export``, as the model zoo's
    CI does it."""
    from monai.bundle import ckpt_export

    try:
        ckpt_export(net_id="network_def", filepath=str(root / "models" / "model.ts"),
                    ckpt_file=str(root / "models" / "model.pt"), meta_file=str(root / "configs" / "metadata.json"),
                    config_file=str(root / "configs" / "inference.json"), bundle_root=str(root))
    except Exception as e:
        raise BundleExportError(f"TorchScript export of the network failed ({type(e).__name__}: {e}); export "
                                f"without --torchscript") from None


def _export_onnx(root: Path, model, folds: Sequence) -> None:
    """``models/model.onnx`` (and ``model_fold_N.onnx``): each fold's ``network_def`` exported by MONAI's
    ``onnx_export`` at the patch size, the batch axis dynamic; ``configs/inference_onnx.yaml`` runs them."""
    from monai.bundle import onnx_export

    shape = [1, model.dataset.num_channels, *model.configuration.patch_size]
    for i, fold in enumerate(folds):
        weights = root / _model_file(i, fold)
        try:
            onnx_export(net_id="network_def", filepath=str(weights.with_suffix(".onnx")), ckpt_file=str(weights),
                        meta_file=str(root / "configs" / "metadata.json"),
                        config_file=str(root / "configs" / "inference.json"), bundle_root=str(root),
                        input_shape=shape, converter_kwargs={
                            "input_names": ["image"], "output_names": ["logits"],
                            "dynamic_axes": {"image": {0: "batch"}, "logits": {0: "batch"}}})
        except Exception as e:
            raise BundleExportError(f"ONNX export of fold {fold} failed ({type(e).__name__}: {e}); it needs "
                                    f"pip install 'monai-nnunet[onnx]'") from None
    shutil.copyfile(TEMPLATE_BUNDLE / "configs" / "inference_onnx.yaml", root / "configs" / "inference_onnx.yaml")


def export_bundle(model_folder: str | os.PathLike, output_zip: str | os.PathLike, folds: Sequence = (0,),
                  checkpoint_name: str = "checkpoint_final.pth", torchscript: bool = False, onnx: bool = False
                  ) -> Path:
    """Exports trained folds of ``model_folder`` (``$nnUNet_results/DatasetXXX/TRAINER__PLANS__CONFIG``).

    Raises:
        ModelLoadingError: a folder, fold or checkpoint is missing, or the weights do not fit the plans.
    """
    from monai_nnunet.inference.model_loading import load_trained_model, parse_folds

    folds = parse_folds(folds)
    model = load_trained_model(model_folder, folds, checkpoint_name)
    return write_bundle_zip(model, folds, output_zip, _validation_results(Path(model_folder), folds), torchscript,
                            onnx=onnx)


def import_nnunet(results_folder: str | os.PathLike, output_zip: str | os.PathLike, folds: Sequence | None = None,
                  checkpoint_name: str = "checkpoint_final.pth", torchscript: bool = False, onnx: bool = False
                  ) -> Path:
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
                            source="trained with nnU-Net v2, imported by monai-nnunet", onnx=onnx)
