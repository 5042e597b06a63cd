"""Fabricated trained models for the prediction tests (until the trainer lands).

:func:`make_trained_model` plans and preprocesses a synthetic dataset, builds the plans' network (narrowed so the
tests stay fast), trains it a few steps on cached patches (so predictions are not constant) and writes a results
folder exactly as the trainer's contract says (``plans.json``, ``dataset.json``, ``fold_N/checkpoint_final.pth``
with the documented keys).
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from monai_nnunet.dataset.dataset_json import DatasetDescription
from monai_nnunet.planning.plans import PlansManager
from monai_nnunet.preprocessing.cache import case_ids_in_cache, load_case
from monai_nnunet.training.configs import resolve_trainer, trainer_output_folder_name
from monai_nnunet.utils.files import save_json

#: narrow networks: the plans' topology with few channels
TEST_FEATURES = (4, 8, 16, 32, 32, 32, 32)


@contextmanager
def nnunet_folders(root: Path) -> Iterator[dict[str, Path]]:
    """Sets nnUNet_raw/_preprocessed/_results to folders under ``root`` for the duration (session fixtures)."""
    old = {k: os.environ.get(k) for k in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results", "nnUNet_def_n_proc")}
    folders = {}
    for name in ("raw", "preprocessed", "results"):
        folders[name] = root / f"nnUNet_{name}"
        folders[name].mkdir(parents=True, exist_ok=True)
        os.environ[f"nnUNet_{name}"] = str(folders[name])
    os.environ["nnUNet_def_n_proc"] = "1"
    try:
        yield folders
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def narrow_plans(plans_file: Path, features: Sequence[int] = TEST_FEATURES) -> dict:
    """Rewrites the plans' feature widths (every configuration) so test networks are small; returns the plans."""
    plans = json.loads(plans_file.read_text())
    for cfg in plans["configurations"].values():
        kwargs = cfg.get("architecture", {}).get("arch_kwargs")
        if kwargs:
            kwargs["features_per_stage"] = list(features[: kwargs["n_stages"]])
    save_json(plans, plans_file)
    return plans


def _train_a_little(network: torch.nn.Module, folder: Path, patch: Sequence[int], steps: int, seed: int,
                    num_heads: int) -> None:
    """A few SGD steps of cross-entropy on random cached patches (enough that predictions are not constant)."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    cases = [load_case(folder, c, mmap=False) for c in case_ids_in_cache(folder)]
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-2)
    weight = torch.tensor([0.1] + [1.0] * (num_heads - 1))
    network.train()
    two_d = len(patch) == 2
    for _ in range(steps):
        data, seg, _ = cases[rng.integers(len(cases))]
        if two_d:
            z = rng.integers(data.shape[1])
            data, seg = data[:, z], seg[:, z]
        pad = [(0, 0)] + [(0, max(0, p - s)) for p, s in zip(patch, data.shape[1:])]
        data, seg = np.pad(data, pad), np.pad(seg, pad)
        start = [rng.integers(0, s - p + 1) for s, p in zip(data.shape[1:], patch)]
        sl = tuple(slice(a, a + p) for a, p in zip(start, patch))
        x = torch.from_numpy(np.ascontiguousarray(data[(slice(None), *sl)]))[None]
        y = torch.from_numpy(np.ascontiguousarray(seg[(0, *sl)])).long().clamp(min=0, max=num_heads - 1)[None]
        out = network(x)
        out = out[0] if isinstance(out, (list, tuple)) else out
        loss = torch.nn.functional.cross_entropy(out, y, weight=weight)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    network.eval()


def write_checkpoint(path: Path, network: torch.nn.Module, plans: dict, configuration: str, dataset_json: dict,
                     fold: int | str, trainer_name: str = "nnUNetTrainer", plans_identifier: str = "nnUNetPlans",
                     mirror_axes: Sequence[int] | None = None) -> None:
    """A checkpoint with the keys of the trainer contract."""
    config = resolve_trainer(trainer_name)
    dim = len(plans["configurations"][configuration].get("patch_size") or
              PlansManager(plans).get_configuration(configuration).patch_size)
    checkpoint = {
        "network_weights": network.state_dict(),
        "optimizer_state": {},
        "grad_scaler_state": None,
        "lr_scheduler_state": None,
        "epoch": 1,
        "current_epoch": 1,
        "init": {"dataset_name": plans["dataset_name"], "configuration": configuration, "fold": fold,
                 "plans_identifier": plans_identifier, "trainer_name": trainer_name, "device": "cpu"},
        "trainer_name": trainer_name,
        "trainer_config": config.to_dict() if hasattr(config, "to_dict") else {},
        "plans": plans,
        "configuration": configuration,
        "dataset_json": dataset_json,
        "logging": {},
        "best_metric": None,
        "inference_allowed_mirroring_axes": list(range(dim)) if mirror_axes is None else list(mirror_axes),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, path)


def make_trained_model(
    dataset_name: str,
    configuration: str = "3d_fullres",
    folds: Sequence[int | str] = (0,),
    trainer_name: str = "nnUNetTrainer",
    plans_identifier: str = "nnUNetPlans",
    train_steps: int = 60,
) -> Path:
    """Writes ``$nnUNet_results/<dataset>/TRAINER__PLANS__CONFIG`` for an already planned and preprocessed dataset.

    Each fold gets its own short training (different seeds). Returns the model folder.
    """
    pre = Path(os.environ["nnUNet_preprocessed"]) / dataset_name
    plans_dict = json.loads((pre / f"{plans_identifier}.json").read_text())
    dataset_json = json.loads((pre / "dataset.json").read_text())
    plans = PlansManager(plans_dict)
    cfg = plans.get_configuration(configuration)
    dataset = DatasetDescription(dataset_json)
    folder = (Path(os.environ["nnUNet_results"]) / dataset_name /
              trainer_output_folder_name(trainer_name, plans_identifier, configuration))
    folder.mkdir(parents=True, exist_ok=True)
    save_json(plans_dict, folder / "plans.json")
    save_json(dataset_json, folder / "dataset.json")
    for i, fold in enumerate(folds):
        torch.manual_seed(100 + i)
        network = resolve_trainer(trainer_name).build_network(cfg, dataset.num_channels,
                                                              dataset.num_segmentation_heads, deep_supervision=True)
        if train_steps:
            _train_a_little(network, pre / cfg.data_identifier, cfg.patch_size, train_steps, seed=i,
                            num_heads=dataset.num_segmentation_heads)
        write_checkpoint(folder / f"fold_{fold}" / "checkpoint_final.pth", network, plans_dict, configuration,
                         dataset_json, fold, trainer_name, plans_identifier)
    return folder
