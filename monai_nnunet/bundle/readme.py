"""``docs/README.md`` of an exported bundle, in the sections of the MONAI model zoo's bundle READMEs (model overview,
data, training configuration, performance, MONAI bundle commands, references, license), filled from the run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["bundle_readme"]

_REFERENCE = ("Isensee, F., Jaeger, P. F., Kohl, S. A., Petersen, J., & Maier-Hein, K. H. (2021). nnU-Net: a "
              "self-configuring method for deep learning-based biomedical image segmentation. Nature Methods, 18(2), "
              "203-211.")


def _class_name(network_def: Mapping[str, Any] | None) -> str:
    if not network_def:
        return "monai_nnunet.networks.PlansDynUNet (nnU-Net's plain U-Net)"
    inner = network_def.get("network", network_def)
    return str(inner.get("_target_", "unknown"))


def _performance(validation: Mapping[str, Mapping], label_names: Mapping[str, str]) -> list[str]:
    if not validation:
        return ["No final validation results were found next to the checkpoints.", ""]
    classes = list(next(iter(validation.values()))["per_class"])
    lines = ["Dice of each fold's final validation (its validation cases of the 5-fold split, predicted as "
             "`nnUNetv2_predict` predicts, in their original geometry):", "",
             "| fold | cases | " + " | ".join(label_names.get(k, k) for k in classes) + " | mean |",
             "| --- | --- | " + " | ".join("---" for _ in classes) + " | --- |"]
    for fold, r in validation.items():
        lines.append(f"| {fold} | {r['cases']} | " + " | ".join(f"{v:.4f}" for v in r["per_class"].values())
                     + f" | {r['mean']:.4f} |")
    return lines + [""]


def bundle_readme(model, folds: Sequence, validation: Mapping[str, Mapping], source: str, name: str,
                  torchscript: bool = False, onnx: bool = False) -> str:
    """The README text.

    Args:
        model: the ``TrainedModel``.
        folds: the exported folds.
        validation: per fold, ``{"per_class": {label: dice}, "mean": ..., "cases": ...}``.
        source: how the model was trained.
        name: the bundle's folder name.
        torchscript, onnx: whether ``models/model.ts`` / ``models/*.onnx`` are shipped.

    Returns:
        the markdown text.
    """
    raw = model.dataset.raw
    labels = {str(v): k for k, v in model.dataset.labels.items() if not isinstance(v, tuple)}
    config = model.configuration
    params = sum(p.numel() for p in model.networks[0].parameters())
    training = dict(model.training or {})
    channels = ", ".join(f"{k}: {v}" for k, v in model.dataset.channel_names.items())
    out = [f"# {name}", "", "## Model Overview", "",
           f"A {len(config.patch_size)}D segmentation network for {raw.get('name', 'the dataset')}, {source} with "
           f"nnU-Net v2's recipe (self-configured plans, preprocessing, augmentation, Dice + cross-entropy with "
           f"deep supervision, SGD with a polynomial learning rate) on MONAI's engines "
           f"([monai-nnunet](https://pypi.org/project/monai-nnunet/)).", "",
           f"- network: `{_class_name(model.network_def)}`, {params:,} parameters; `network_def` of "
           f"`configs/inference.yaml` returns the full-resolution logits "
           f"`(B, {model.dataset.num_segmentation_heads}, *spatial)`",
           f"- input: `(B, {model.dataset.num_channels}, *spatial)`, each axis a multiple of the product of the "
           f"plans' strides (`configs/metadata.json` states them); images are normalised as in training",
           f"- plans configuration `{model.configuration_name}`: patch size {list(config.patch_size)}, spacing "
           f"{list(config.spacing)}, test-time mirroring on axes {list(model.mirror_axes)}",
           f"- folds {', '.join(str(f) for f in folds)} (their logits are averaged)", "",
           "## Data", "",
           f"- dataset: {raw.get('name', '?')} ({raw.get('numTraining', '?')} training cases); "
           f"{raw.get('description', '')}".rstrip("; "),
           f"- reference: {raw.get('reference', 'see the dataset')}",
           f"- image channels: {channels}",
           "- labels: " + ", ".join(f"{v}: {k}" for v, k in labels.items()), "",
           "## Training configuration", "",
           f"- trainer `{model.trainer_name}`; " + ", ".join(
               f"{k} {training[k]}" for k in ("epochs", "iterations_per_epoch", "batch_size", "initial_lr",
                                              "epochs_trained") if k in training),
           f"- batch size {training.get('batch_size', config.batch_size)}, patch {list(config.patch_size)}; SGD "
           f"(Nesterov, momentum 0.99, weight decay 3e-5), poly LR, Dice + CE with deep supervision (nnU-Net's "
           f"defaults unless the trainer config changed them)", "",
           "## Performance", "",
           *_performance(validation, labels),
           "## MONAI Bundle Commands", "",
           "Predict a folder of images named as in nnU-Net's raw layout (`CASE_0000.nii.gz`, `CASE_0001.nii.gz` for "
           "a second channel, ...); each segmentation is written in its input's geometry:", "",
           "```bash",
           "python -m monai.bundle run --config_file configs/inference.yaml --dataset_dir IN --output_dir OUT",
           "# with evaluation against labels: OUT/summary.json",
           "python -m monai.bundle run --config_file \"['configs/inference.yaml','configs/evaluate.yaml']\" \\",
           "    --dataset_dir IN --label_dir LABELS --output_dir OUT"]
    if onnx:
        out += ["# the same prediction with ONNX Runtime (models/*.onnx; pip install 'monai-nnunet[onnx]')",
                "python -m monai.bundle run --config_file \"['configs/inference.yaml','configs/inference_onnx.yaml']\" "
                "\\", "    --dataset_dir IN --output_dir OUT"]
    out += ["```", "",
            "Options: `--use_mirroring false`, `--step_size 0.5`, `--save_probabilities true`, "
            "`--device \"$torch.device('cpu')\"`. The network alone, with its weights, in Python:", "",
            "```python",
            "import monai.bundle",
            f"net = monai.bundle.load(name=\"{name}\", bundle_dir=\"models\", workflow_type=\"inference\")",
            "```", ""]
    files = ["- `configs/plans.json`, `configs/dataset.json`: nnU-Net v2's plans and dataset description.",
             "- `configs/inference.yaml` (and `inference.json`), `configs/evaluate.yaml`, `configs/metadata.json`.",
             "- `models/model.pt`: the first fold's state dict; `models/model_fold_N.pt`: further folds."]
    if torchscript:
        files.append("- `models/model.ts`: the first fold's `network_def`, scripted (TorchScript).")
    if onnx:
        files.append("- `models/model.onnx` (`model_fold_N.onnx`): each fold's `network_def` in ONNX, dynamic batch.")
    out += ["### Files", "", *files, "",
            "A bundle's configs are code (MONAI evaluates their `$` expressions): run bundles you trust. The weights "
            "are data and load with `weights_only=True`.", "",
            "# References", "", f"- {_REFERENCE}", "",
            "# License", "",
            "The bundle's code and configs: Apache License 2.0 (`LICENSE`). The weights were trained on "
            f"{raw.get('name', 'the dataset')}, whose license is "
            f"{raw.get('licence') or raw.get('license') or 'stated by its source'}; use them within its terms.", ""]
    return "\n".join(out)
