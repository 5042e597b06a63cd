"""The files of a post-processing: ``postprocessing.json`` (the one we read) and ``postprocessing.pkl`` (nnU-Net's).

``postprocessing.json`` has nnU-Net v2's layout::

    {"input_folder": {"foreground_mean": {...}, "mean": {"1": {...}, ...}},     # cross-validation, before
     "postprocessed": {"foreground_mean": {...}, "mean": {...}},                 # and after the post-processing
     "postprocessing_fns": ["remove_all_but_largest_component_from_segmentation", ...],
     "postprocessing_kwargs": [{"labels_or_regions": [1, 2]}, {"labels_or_regions": 1}, ...]}

It is the only file we read: step names resolve through an allowlist to our own functions, and the arguments must be
labels (ints), regions (lists of ints) or lists of them. ``postprocessing.pkl`` is nnU-Net's ``(pp_fns, pp_fn_kwargs)``
pickle with references to ``nnunetv2.postprocessing.remove_connected_components``; we write its bytes (see
:mod:`~monai_nnunet.postprocessing.pickle_writer`) so nnU-Net can use our result, and never unpickle one: given a
``.pkl``, we read the ``.json`` next to it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from monai_nnunet.evaluation.evaluate_folder import label_or_region_to_key
from monai_nnunet.postprocessing.connected_components import remove_all_but_largest_component_from_segmentation
from monai_nnunet.postprocessing.pickle_writer import GlobalReference, dumps
from monai_nnunet.utils.files import atomic_path, load_json, save_json

__all__ = [
    "NNUNET_MODULE",
    "STEP_FUNCTIONS",
    "load_postprocessing",
    "postprocessing_json_for",
    "save_postprocessing",
]

#: where nnU-Net keeps the step functions its pickle references
NNUNET_MODULE = "nnunetv2.postprocessing.remove_connected_components"
#: the step names a post-processing file may use, and our function for each
STEP_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "remove_all_but_largest_component_from_segmentation": remove_all_but_largest_component_from_segmentation,
}
_STEP_ARGUMENTS = {"labels_or_regions", "background_label"}


def postprocessing_json_for(file: str | os.PathLike) -> Path:
    """The JSON to read for a post-processing file: itself for ``.json``, its ``.json`` twin for ``.pkl``.

    Raises:
        FileNotFoundError: ``file`` is a ``.pkl`` without a ``.json`` next to it.
        ValueError: ``file`` is neither ``.json`` nor ``.pkl``.
    """
    file = Path(file)
    if file.suffix == ".json":
        return file
    if file.suffix != ".pkl":
        raise ValueError(f"{file}: a post-processing file must be postprocessing.json (or its .pkl twin)")
    twin = file.with_suffix(".json")
    if not twin.is_file():
        raise FileNotFoundError(f"{file}: we do not unpickle files; its JSON twin {twin} (written with it by "
                                f"nnUNetv2_determine_postprocessing) is missing, pass that file instead")
    return twin


def _plain_label_or_region(value: Any, where: str) -> int | tuple[int, ...]:
    if isinstance(value, bool) or not isinstance(value, (int, list)):
        raise ValueError(f"{where}: expected a label (int) or a region (list of ints), got {value!r}")
    if isinstance(value, list):
        if not value or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise ValueError(f"{where}: a region must be a non-empty list of ints, got {value!r}")
        return tuple(value)
    return value


def _step_kwargs(kwargs: Any, where: str) -> dict[str, Any]:
    if not isinstance(kwargs, dict) or not set(kwargs) <= _STEP_ARGUMENTS or "labels_or_regions" not in kwargs:
        raise ValueError(f"{where}: expected {{'labels_or_regions': ...[, 'background_label': int]}}, got {kwargs!r}")
    out: dict[str, Any] = {}
    value = kwargs["labels_or_regions"]
    # a list is a union of labels/regions; a region (tuple) reads back as a list too: the same mask either way
    out["labels_or_regions"] = ([_plain_label_or_region(v, where) for v in value] if isinstance(value, list)
                                else _plain_label_or_region(value, where))
    if "background_label" in kwargs:
        background = kwargs["background_label"]
        if isinstance(background, bool) or not isinstance(background, int):
            raise ValueError(f"{where}: background_label must be an int, got {background!r}")
        out["background_label"] = background
    return out


def load_postprocessing(file: str | os.PathLike) -> tuple[list[Callable[..., Any]], list[dict[str, Any]]]:
    """Reads a post-processing from ``postprocessing.json`` (or, given ``postprocessing.pkl``, from its JSON twin).

    Args:
        file: ``postprocessing.json`` or ``postprocessing.pkl``.

    Returns:
        ``(pp_fns, pp_fn_kwargs)``: our step functions and their keyword arguments (labels as ints, regions as
        tuples), for :func:`~monai_nnunet.postprocessing.connected_components.apply_postprocessing`.

    Raises:
        FileNotFoundError: the file (or a ``.pkl``'s twin) is missing.
        ValueError: the file is not a post-processing description, names an unknown step or has bad arguments.
    """
    path = postprocessing_json_for(file)
    content = load_json(path)
    if not isinstance(content, dict) or not {"postprocessing_fns", "postprocessing_kwargs"} <= set(content):
        raise ValueError(f"{path}: not a post-processing file (needs postprocessing_fns and postprocessing_kwargs)")
    names, kwargs = content["postprocessing_fns"], content["postprocessing_kwargs"]
    if not isinstance(names, list) or not isinstance(kwargs, list) or len(names) != len(kwargs):
        raise ValueError(f"{path}: postprocessing_fns and postprocessing_kwargs must be lists of the same length")
    fns = []
    for i, name in enumerate(names):
        if name not in STEP_FUNCTIONS:
            raise ValueError(f"{path}: unknown post-processing step {name!r}; known: {sorted(STEP_FUNCTIONS)}")
        fns.append(STEP_FUNCTIONS[name])
    return fns, [_step_kwargs(k, f"{path}: step {i}") for i, k in enumerate(kwargs)]


def _json_value(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    return int(value)


def _pickle_value(value: Any) -> Any:
    if isinstance(value, list):
        return [_pickle_value(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_pickle_value(v) for v in value)
    return int(value)


def _step_name(fn: Callable[..., Any]) -> str:
    name = getattr(fn, "__name__", repr(fn))
    if STEP_FUNCTIONS.get(name) is not fn:
        raise ValueError(f"{name} is not a post-processing step nnU-Net knows; known: {sorted(STEP_FUNCTIONS)}")
    return name


def save_postprocessing(folder: str | os.PathLike, pp_fns: Sequence[Callable[..., Any]],
                        pp_fn_kwargs: Sequence[Mapping[str, Any]], input_summary: Mapping[str, Any],
                        postprocessed_summary: Mapping[str, Any]) -> tuple[Path, Path]:
    """Writes ``folder/postprocessing.json`` and ``folder/postprocessing.pkl`` (nnU-Net's), atomically.

    Args:
        folder: the cross-validation predictions folder.
        pp_fns: step functions (from :data:`STEP_FUNCTIONS`).
        pp_fn_kwargs: their arguments (labels as ints, regions as tuples, lists of them).
        input_summary: the summary of the predictions (``foreground_mean`` and ``mean`` are stored).
        postprocessed_summary: the summary after the post-processing.

    Returns:
        The paths of the JSON and the pickle.

    Raises:
        ValueError: a step that is not in :data:`STEP_FUNCTIONS`.
    """
    folder = Path(folder)
    names = [_step_name(fn) for fn in pp_fns]

    def means(summary: Mapping[str, Any]) -> dict:
        return {"foreground_mean": dict(summary["foreground_mean"]),
                "mean": {label_or_region_to_key(k): dict(v) for k, v in summary["mean"].items()}}

    content = {
        "input_folder": means(input_summary),
        "postprocessed": means(postprocessed_summary),
        "postprocessing_fns": names,
        "postprocessing_kwargs": [{k: _json_value(v) if k == "labels_or_regions" else int(v) for k, v in kw.items()}
                                  for kw in pp_fn_kwargs],
    }
    json_file, pkl_file = folder / "postprocessing.json", folder / "postprocessing.pkl"
    save_json(content, json_file, sort_keys=True)
    references = [GlobalReference(NNUNET_MODULE, name) for name in names]
    kwargs = [{k: _pickle_value(v) for k, v in kw.items()} for kw in pp_fn_kwargs]
    with atomic_path(pkl_file) as tmp:
        tmp.write_bytes(dumps((references, kwargs)))
    return json_file, pkl_file
