"""The augmentation details that make the recipe nnU-Net's: independent random draws in the intensity transforms,
nnU-Net's blur kernel, labels resampled per label and then the argmax, and a fresh draw of validation patches every
epoch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai import transforms as monai_transforms

from monai_nnunet.data import PatchBatchStream, PreprocessedCases
from monai_nnunet.transforms import (
    IndependentRandGaussianNoised,
    RandRotateScaleCropd,
    IndependentRandScaleIntensityd,
    IndependentRandScaleIntensityFixedMeand,
)
from monai_nnunet.transforms.intensity import _gaussian_blur, nnunet_gaussian_kernel

OURS = [(IndependentRandGaussianNoised, monai_transforms.RandGaussianNoised, "rand_gaussian_noise", {}),
        (IndependentRandScaleIntensityd, monai_transforms.RandScaleIntensityd, "scaler", {"factors": 0.25}),
        (IndependentRandScaleIntensityFixedMeand, monai_transforms.RandScaleIntensityFixedMeand, "scaler", {"factors": 0.25})]


@pytest.mark.parametrize("ours,monai_version,inner,kwargs", OURS, ids=[o[0].__name__ for o in OURS])
def test_apply_decision_and_drawn_value_come_from_independent_streams(ours, monai_version, inner, kwargs):
    # MONAI's dictionary transform seeds its array transform with its own seed: the same numbers twice
    theirs = monai_version(keys="image", prob=0.5, **kwargs).set_random_state(seed=7)
    assert theirs.R.uniform() == getattr(theirs, inner).R.uniform()
    t = ours(keys="image", prob=0.5, **kwargs).set_random_state(seed=7)
    assert t.R.uniform() != getattr(t, inner).R.uniform()
    # and over many draws the decision and the value are uncorrelated
    t.set_random_state(seed=3)
    decisions, values = [], []
    for _ in range(400):
        decisions.append(t.R.uniform())
        values.append(getattr(t, inner).R.uniform())
    assert abs(np.corrcoef(decisions, values)[0, 1]) < 0.15


def test_blur_kernel_is_nnunets_sampled_normalised_gaussian():
    # batchgeneratorsv2: size = nearest odd of sigma * 6 + 0.5, exp(-x^2 / 2 sigma^2) at integer offsets, normalised
    for sigma, size in ((0.5, 3), (0.75, 5), (1.0, 7)):
        k = nnunet_gaussian_kernel(sigma)
        x = torch.arange(size, dtype=torch.float64) - size // 2
        expected = torch.exp(-0.5 * (x / sigma) ** 2)
        torch.testing.assert_close(k.double(), expected / expected.sum(), rtol=1e-6, atol=1e-7)
    effective = float((nnunet_gaussian_kernel(0.5).double() * (torch.arange(3) - 1.0) ** 2).sum().sqrt())
    assert effective == pytest.approx(0.4615, abs=1e-3)  # MONAI's erf kernel would give 0.57
    impulse = torch.zeros(1, 9, 9)
    impulse[0, 4, 4] = 1
    blurred = _gaussian_blur(impulse, [0.5, 0.5])
    torch.testing.assert_close(blurred[0, 3:6, 4], nnunet_gaussian_kernel(0.5) * nnunet_gaussian_kernel(0.5)[1])


def _forced(prob_rotation: float, prob_scaling: float, scale_range=(0.7, 1.4)):
    t = RandRotateScaleCropd(["image", "label"], [24, 24], prob_rotation=prob_rotation, prob_scaling=prob_scaling,
                             scale_range=scale_range)
    return t.set_random_state(seed=0)


def test_labels_are_resampled_per_label_then_argmax():
    label = torch.zeros(1, 32, 32, dtype=torch.int16)
    label[0, 8:24, 8:24] = 1
    label[0, 14:16, 10:22] = 2  # a thin structure nearest neighbour would thin out or break
    t = _forced(1.0, 1.0)
    out = t({"image": torch.randn(1, 32, 32), "label": label})
    # the same grid: each label's mask resampled linearly, the largest wins
    grid = t._grid(torch.device("cpu"))
    masks = torch.cat([(label == v).float() for v in (0, 1, 2)])
    scores = monai_transforms.Resample(mode="bilinear", padding_mode="zeros")(masks, grid)
    expected = scores.argmax(0, keepdim=True).to(torch.int16)
    inside = scores.sum(0, keepdim=True) >= 0.5
    assert torch.equal(torch.as_tensor(out["label"])[inside], expected[inside])
    assert set(torch.unique(torch.as_tensor(out["label"])).tolist()) <= {-1, 0, 1, 2}


def test_identity_draw_crops_and_outside_is_marked():
    label = torch.randint(0, 3, (1, 32, 32), dtype=torch.int16)
    out = _forced(0.0, 0.0)({"image": torch.randn(1, 32, 32), "label": label})
    assert torch.equal(torch.as_tensor(out["label"]), label[:, 4:28, 4:28])
    small = torch.ones(1, 12, 12, dtype=torch.int16)
    out = _forced(0.0, 1.0, scale_range=(1.4, 1.4))({"image": torch.randn(1, 12, 12), "label": small})
    values = torch.as_tensor(out["label"])
    assert values[0, 0, 0] == -1 and values[0, 12, 12] == 1  # beyond the input: -1; its centre keeps its label


def test_validation_patch_stream_is_a_fresh_draw_each_epoch(tmp_path):
    for i in range(3):
        np.save(tmp_path / f"case{i}.npy", np.random.default_rng(i).normal(size=(1, 12, 12, 12)).astype(np.float32))
        np.save(tmp_path / f"case{i}_seg.npy", np.zeros((1, 12, 12, 12), np.int8))
        (tmp_path / f"case{i}.json").write_text('{"class_locations": {}}')
    from monai_nnunet.transforms import RandPatchCropWithOversamplingd

    crop = RandPatchCropWithOversamplingd(keys=["image", "label"], patch_size=(6, 6, 6), final_patch_size=(6, 6, 6))
    stream = PatchBatchStream(PreprocessedCases(tmp_path, ["case0", "case1", "case2"]), 2, crop, seed=1)
    first = next(iter(stream))["image"]
    stream.epoch = 1
    second = next(iter(stream))["image"]
    stream.epoch = 0
    again = next(iter(stream))["image"]
    assert not torch.equal(torch.as_tensor(first), torch.as_tensor(second))
    assert torch.equal(torch.as_tensor(first), torch.as_tensor(again))  # reproducible per epoch
