"""The bundle of a training run, written once into its fold folder.

``configs/train.yaml`` is the template's with the run's values: the run parameters block and the network block
(from the plans' architecture) are replaced, and the ``-tr`` trainer config's overrides (its overlay file, or a
``TrainerConfig`` turned into overrides) are written in: a whole component (``optimizer: {...}``) in place of the
template's block of that key, ``#`` ids (``loss#loss``, ``network_def#_target_``) under a ``# >>> -tr NAME`` heading,
where MONAI merges them over the components above exactly as a second config file would be merged. No key is
written twice. Read alone, the file names every component that trains, and
``python -m monai.bundle run --config_file <fold>/configs/train.yaml`` repeats the run.

A later command on the same fold (``-c`` with other settings) never rewrites it: its overrides are recorded in
``configs/overrides.yaml`` beside it, and both files together reproduce the run.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from monai_nnunet.bundle import TEMPLATE_BUNDLE
from monai_nnunet.bundle.export import fold_model_parameters, inference_config
from monai_nnunet.bundle.metadata import build_metadata
from monai_nnunet.networks.builder import plans_network_class
from monai_nnunet.networks.config import describe_arguments
from monai_nnunet.networks.plans_architecture import read_architecture
from monai_nnunet.utils.files import atomic_path, save_json

__all__ = ["BEGIN_MARKER", "END_MARKER", "OVERRIDES_FILE", "compose_train_yaml", "network_block",
           "read_run_parameters", "record_overrides", "replace_block", "run_config_files", "write_training_bundle"]

BEGIN_MARKER = "# >>> run parameters"
END_MARKER = "# <<< run parameters"
NETWORK_BEGIN, NETWORK_END = "# >>> network", "# <<< network"
OVERRIDES_FILE = "overrides.yaml"
_COPIED = ("evaluate.yaml", "multi_gpu_train.yaml", "logging.conf", "tensorboard.yaml", "mlflow.yaml")


def _dump(content: Mapping[str, Any]) -> str:
    """``content`` as YAML in its own order: one ``key: value`` entry per key at the top (never a ``{...}`` line),
    lists and maps of plain values inline below it."""
    return "".join(yaml.safe_dump({key: value}, sort_keys=False, default_flow_style=None, width=120)
                   if isinstance(value, (Mapping, list, tuple)) else
                   yaml.safe_dump({key: value}, sort_keys=False, default_flow_style=False, width=120)
                   for key, value in dict(content).items())


def replace_block(text: str, begin: str, end: str, content: Mapping[str, Any]) -> str:
    """Replaces the lines between the ``begin`` marker line and the ``end`` marker of a YAML text.

    Args:
        text: the YAML text.
        begin: the first marker (the start of its line).
        end: the closing marker.
        content: the block's new ids and values.

    Returns:
        The text with the block replaced.

    Raises:
        ValueError: when the markers are missing.
    """
    start, stop = text.find(begin), text.find(end)
    if start < 0 or stop < start:
        raise ValueError(f"the train.yaml template lacks the '{begin}' / '{end}' block")
    line_end = text.index("\n", start)
    return text[: line_end + 1] + _dump(content) + text[stop:]


def top_level_span(lines: Sequence[str], key: str) -> tuple[int, int] | None:
    """The lines ``[start, stop)`` of a top-level key's block in a YAML text split into lines.

    The block is the ``key:`` line at column 0 and the indented (or ``-``) lines after it; blank lines and comments
    at column 0 after it belong to what follows.

    Args:
        lines: the text's lines.
        key: a top-level id (no ``#``).

    Returns:
        ``(start, stop)``, or ``None`` when the text has no such key.
    """
    start = next((i for i, line in enumerate(lines)
                  if line.startswith(key + ":") and line[len(key) + 1: len(key) + 2] in ("", " ", "\n")), None)
    if start is None:
        return None
    stop = start + 1
    for i in range(start + 1, len(lines)):
        line = lines[i]
        if not line.strip():
            continue
        if line[0] in " \t-":
            stop = i + 1
            continue
        break
    return start, stop


def merged_sections(sections: Sequence[tuple[str, Mapping[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """The sections with every id that a later id replaces left out, so that no key is written twice.

    A later ``K`` (or ``K#a``) replaces an earlier ``K``, ``K#a`` or ``K#a#b`` (MONAI's merge would overwrite them
    anyway); ``K#b`` after ``K`` is kept (it is merged into the new ``K``).

    Args:
        sections: ``(heading, overrides)`` in merge order.

    Returns:
        ``(heading, overrides)`` in the same order, the overrides without the replaced ids.
    """
    flat = [(index, key) for index, (_, overrides) in enumerate(sections) for key in overrides]
    replaced = {earlier for later, (_, key) in enumerate(flat) for earlier in range(later)
                if flat[earlier][1] == key or flat[earlier][1].startswith(key + "#")}
    kept: list[tuple[str, dict[str, Any]]] = [(heading, {}) for heading, _ in sections]
    for position, (index, key) in enumerate(flat):
        if position not in replaced:
            kept[index][1][key] = sections[index][1][key]
    return kept


def network_block(configuration, deep_supervision_id: str = "@deep_supervision") -> dict[str, Any]:
    """``network_def`` for the plans' network: ``PlansDynUNet`` (``ShallowPlainUNet`` below three stages) for
    nnU-Net's ``PlainConvUNet``, ``ResidualEncoderUNet`` for the ResEnc presets' plans, with the plans' ``arch_kwargs``.

    Args:
        configuration: the plans configuration (``ConfigurationManager`` or dict).

    Raises:
        ValueError: when the plans name another network (choose an architecture with -tr).
    """
    plan = read_architecture(configuration)
    network_class = plans_network_class(plan)
    kwargs = describe_arguments(plan.arch_kwargs)
    kwargs["strides"] = "@strides"
    target = f"monai_nnunet.networks.{network_class.__name__}"
    return {"network_def": {"_target_": target, "input_channels": "@num_input_channels",
                            "num_classes": "@num_classes", "deep_supervision": deep_supervision_id, **kwargs}}


def compose_train_yaml(parameters: Mapping[str, Any], network: Mapping[str, Any],
                       sections: Sequence[tuple[str, Mapping[str, Any]]] = (),
                       template: str | os.PathLike = TEMPLATE_BUNDLE) -> str:
    """The run's ``train.yaml`` text, with no key written twice.

    A section's whole component (a top-level id without ``#`` that the template has: ``optimizer``, ``loss``,
    ``network_def``, ``batch_size``, ...) replaces the template's block of that key in place, under a comment naming
    the section; its other ids (``loss#loss``, ``network_def#_target_``, new top-level keys) are appended under the
    section's ``# >>> heading``. An id that a later one replaces is left out (:func:`merged_sections`).

    Args:
        parameters: the run parameters block.
        network: the network block (``{"network_def": {...}}``).
        sections: ``(heading, overrides)`` in merge order (the ``-tr`` config, region-based labels, ...).
        template: the template bundle.

    Returns:
        The YAML text.

    Raises:
        ValueError: when the template lacks the run parameters or network markers.
    """
    text = (Path(template) / "configs" / "train.yaml").read_text()
    text = replace_block(text, BEGIN_MARKER, END_MARKER, parameters)
    text = replace_block(text, NETWORK_BEGIN, NETWORK_END, network)
    appended = []
    for heading, overrides in merged_sections(sections):
        name = heading.split(":")[0]
        rest = {}
        for key, value in overrides.items():
            replaced = None if "#" in key else _replace_top_level(text, key, value, name)
            if replaced is None:
                rest[key] = value
            else:
                text = replaced
        if rest:
            appended.append(f"\n# >>> {heading}\n" + _dump(rest) + f"# <<< {name}\n")
    return text + "".join(appended)


def _replace_top_level(text: str, key: str, value: Any, section: str) -> str | None:
    """``text`` with the block of the top-level ``key`` replaced by ``key: value`` (a comment line above names
    ``section``), or ``None`` when the text has no such key."""
    lines = text.splitlines(keepends=True)
    span = top_level_span(lines, key)
    if span is None:
        return None
    start, stop = span
    note = f"# {key}: set by {section}\n"
    if start > 0 and lines[start - 1].startswith(f"# {key}: set by "):
        start -= 1  # replaced again by a later section
    if isinstance(value, Mapping) and value:  # a component in the template's block style
        block = f"{key}:\n" + "".join(f"  {line}\n" for line in _dump(value).splitlines())
    else:
        block = _dump({key: value})
    if not lines[stop - 1].endswith("\n"):
        block = block.rstrip("\n")
    return "".join(lines[:start]) + note + block + "".join(lines[stop:])


def write_training_bundle(fold_folder: str | os.PathLike, train_yaml: str, dataset_json: Mapping[str, Any],
                          configuration: str, template: str | os.PathLike = TEMPLATE_BUNDLE) -> Path:
    """Writes the fold's bundle: ``<fold>/configs/train.yaml`` (atomically), ``inference.yaml`` (the template's,
    predicting with this fold's checkpoint, see :func:`~monai_nnunet.bundle.export.fold_model_parameters`),
    ``metadata.json`` and the template's other files (``evaluate.yaml``, ``tensorboard.yaml``, ...). An
    ``overrides.yaml`` of an earlier run in the folder is removed.

    Args:
        fold_folder: the fold's output folder.
        train_yaml: the run's ``train.yaml`` text (its ``trainer_name`` is the inference bundle's).
        dataset_json: the dataset's dataset.json content.
        configuration: the run's plans configuration.
        template: the template bundle.

    Returns:
        The train.yaml path.
    """
    template = Path(template)
    configs = Path(fold_folder) / "configs"
    configs.mkdir(parents=True, exist_ok=True)
    with atomic_path(configs / "train.yaml") as tmp:
        tmp.write_text(train_yaml)
    (configs / OVERRIDES_FILE).unlink(missing_ok=True)
    for name in _COPIED:
        source = template / "configs" / name
        if source.is_file():
            shutil.copyfile(source, configs / name)
    trainer_name = (yaml.safe_load(train_yaml) or {}).get("trainer_name", "nnUNetTrainer")
    with atomic_path(configs / "inference.yaml") as tmp:
        tmp.write_text(inference_config(fold_model_parameters(configuration, trainer_name), template))
    save_json(build_metadata(dict(dataset_json), configuration), configs / "metadata.json")
    return configs / "train.yaml"


def run_config_files(fold_folder: str | os.PathLike) -> list[str]:
    """The config files that reproduce the fold's run: ``train.yaml`` (and ``overrides.yaml`` when present)."""
    configs = Path(fold_folder) / "configs"
    files = [configs / "train.yaml"]
    if (configs / OVERRIDES_FILE).is_file():
        files.append(configs / OVERRIDES_FILE)
    return [str(f) for f in files]


def record_overrides(fold_folder: str | os.PathLike, overrides: Mapping[str, Any]) -> Path | None:
    """Adds ``overrides`` (settings a later command changed) to ``configs/overrides.yaml``; returns the file, or
    ``None`` when there is nothing to record."""
    if not overrides:
        return None
    path = Path(fold_folder) / "configs" / OVERRIDES_FILE
    recorded = dict(yaml.safe_load(path.read_text()) or {}) if path.is_file() else {}
    recorded.update(overrides)
    with atomic_path(path) as tmp:
        tmp.write_text("# settings changed by later commands on this fold (merged after train.yaml)\n"
                       + _dump(recorded))
    return path


def read_run_parameters(fold_folder: str | os.PathLike) -> dict[str, Any]:
    """The top-level values of the fold's ``train.yaml`` and ``overrides.yaml`` as written (not evaluated)."""
    values: dict[str, Any] = {}
    for file in run_config_files(fold_folder):
        content = yaml.safe_load(Path(file).read_text()) or {}
        values.update({k: v for k, v in content.items() if isinstance(k, str)})
    return values
