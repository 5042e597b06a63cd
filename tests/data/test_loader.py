"""Batches from the preprocessed cache: shapes, oversampling, determinism, workers, errors naming the case."""

import json

import pytest
import torch

from monai_nnunet.data import PatchBatchStream, PreprocessedCases, apply_per_sample, make_patch_loader
from monai_nnunet.planning import PlansManager
from monai_nnunet.transforms.labels import deep_supervision_scales
from monai_nnunet.transforms.pipeline import (
    augmentation_settings,
    augmentation_transforms,
    sampling_transforms,
    target_transforms,
    training_transforms,
)
from monai.transforms import Compose


def _setup(pre, configuration="3d_fullres"):
    cfg = PlansManager(pre["folder"] / "nnUNetPlans.json").get_configuration(configuration)
    ids = json.loads((pre["folder"] / "splits_final.json").read_text())[0]["train"]
    cases = PreprocessedCases(pre["folder"] / cfg.data_identifier, ids)
    settings = augmentation_settings(cfg.patch_size)
    scales = deep_supervision_scales(cfg.pool_op_kernel_sizes)
    return cfg, cases, settings, scales


@pytest.mark.parametrize("configuration", ["3d_fullres", "2d"])
def test_batches_have_plan_shapes(preprocessed_synthetic, configuration):
    cfg, cases, settings, scales = _setup(preprocessed_synthetic, configuration)
    stream = PatchBatchStream(cases, 4, training_transforms(settings, deep_supervision_scales=scales), seed=1)
    batch = next(iter(make_patch_loader(stream, num_workers=0)))
    assert batch["image"].shape == (4, 1, *cfg.patch_size) and batch["image"].dtype == torch.float32
    assert [tuple(t.shape) for t in batch["label"]] == [
        (4, 1, *[round(p * s) for p, s in zip(cfg.patch_size, scale)]) for scale in scales]
    assert len(batch["keys"]) == 4 and set(batch["keys"]) <= set(cases.case_ids)
    # the last round(4 * 0.33) = 1 sample is forced to contain foreground
    assert (batch["label"][0][-1] > 0).any()


def test_same_seed_same_batches_with_workers(preprocessed_synthetic):
    _, cases, settings, scales = _setup(preprocessed_synthetic)

    def first_batches(seed, workers):
        stream = PatchBatchStream(cases, 2, training_transforms(settings, deep_supervision_scales=scales), seed=seed)
        it = iter(make_patch_loader(stream, num_workers=workers))
        return [next(it) for _ in range(3)]

    a, b = first_batches(7, 1), first_batches(7, 1)
    c = first_batches(8, 1)
    for x, y in zip(a, b):
        assert x["keys"] == y["keys"]
        torch.testing.assert_close(x["image"], y["image"])
    assert any(not torch.equal(x["image"], z["image"]) for x, z in zip(a, c))
    d = first_batches(7, 0)  # in-process: the same stream as worker 0
    for x, y in zip(a, d):
        torch.testing.assert_close(x["image"], y["image"])


def test_worker_error_names_the_case(preprocessed_synthetic, tmp_path):
    import shutil

    _, cases, settings, _ = _setup(preprocessed_synthetic)
    broken = tmp_path / "cache"
    shutil.copytree(cases.folder, broken)
    victim = cases.case_ids[0]
    (broken / f"{victim}.npy").write_bytes(b"not an array")
    stream = PatchBatchStream(PreprocessedCases(broken, [victim]), 2, training_transforms(settings))
    with pytest.raises(Exception, match=victim):
        next(iter(make_patch_loader(stream, num_workers=1)))


def test_missing_cases_are_named(preprocessed_synthetic):
    _, cases, _, _ = _setup(preprocessed_synthetic)
    with pytest.raises(FileNotFoundError, match="nope"):
        PreprocessedCases(cases.folder, ["nope"])


def test_augmentation_on_the_training_device(preprocessed_synthetic):
    """The GPU option's path (workers crop, the device augments whole batches) also runs on the CPU."""
    cfg, cases, settings, scales = _setup(preprocessed_synthetic)
    stream = PatchBatchStream(cases, 3, Compose(sampling_transforms(settings)), seed=0)
    batch = next(iter(make_patch_loader(stream, num_workers=0)))
    assert batch["image"].shape[2:] == tuple(settings.initial_patch_size)
    device_chain = Compose(augmentation_transforms(settings) + target_transforms(deep_supervision_scales=scales))
    out = apply_per_sample(device_chain, batch, ["image", "label"], ["image", "label"], "cpu")
    assert out["image"].shape == (3, 1, *cfg.patch_size)
    assert out["label"][0].shape == (3, 1, *cfg.patch_size) and out["keys"] == batch["keys"]


def _die(sample):
    import os

    os._exit(3)  # a worker killed outright (as the OS does when memory runs out)


def test_dead_worker_stops_the_loader_instead_of_hanging(preprocessed_synthetic):
    _, cases, _, _ = _setup(preprocessed_synthetic)
    stream = PatchBatchStream(cases, 2, _die)
    loader = make_patch_loader(stream, num_workers=1)
    with pytest.raises(RuntimeError, match="worker"):
        next(iter(loader))
