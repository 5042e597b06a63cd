"""nnU-Net's augmentation as MONAI dict transforms: identity at probability 0, documented ranges at 1."""

import numpy as np
import pytest
import torch
from monai.transforms import RandScaleIntensityd, RandScaleIntensityFixedMeand

from monai_nnunet.transforms.intensity import (
    RandChannelGaussianSmoothd,
    RandChannelLowResolutiond,
    RandGammad,
    sample_around_one,
)
from monai_nnunet.transforms.pipeline import augmentation_settings, augmentation_transforms
from monai_nnunet.transforms.spatial import RandRotateScaleCropd, augmentation_patch_size


def _sample(shape=(2, 12, 14, 16), seed=0):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(shape, generator=g) * 10 + 1
    label = torch.zeros((1, *shape[1:]), dtype=torch.int16)
    label[0, 3:8, 4:10, 5:11] = 1
    label[0, 5:7, 6:8, 7:9] = 2
    return {"image": image, "label": label}


@pytest.mark.parametrize("transform", [
    RandChannelGaussianSmoothd("image", prob=0.0),
    RandChannelLowResolutiond("image", prob=0.0),
    RandGammad("image", prob=0.0),
    RandRotateScaleCropd(["image", "label"], (12, 14, 16), prob_rotation=0.0, prob_scaling=0.0),
])
def test_probability_zero_is_identity(transform):
    sample = _sample()
    transform.set_random_state(0)
    out = transform(dict(sample))
    torch.testing.assert_close(torch.as_tensor(out["image"]), sample["image"])
    if "label" in transform.keys:
        torch.testing.assert_close(torch.as_tensor(out["label"]), sample["label"])


def test_blur_changes_every_channel_at_probability_one():
    sample = _sample()
    t = RandChannelGaussianSmoothd("image", prob=1.0, prob_per_channel=1.0)
    out = t(dict(sample))["image"]
    for c in range(2):
        assert out[c].std() < sample["image"][c].std()
        assert out[c].mean() == pytest.approx(sample["image"][c].mean().item(), rel=0.05)


def test_low_resolution_keeps_shape_and_ignores_axes():
    sample = _sample()
    t = RandChannelLowResolutiond("image", prob=1.0, prob_per_channel=1.0, zoom_range=(0.5, 0.5))
    out = t(dict(sample))["image"]
    assert out.shape == sample["image"].shape and not torch.allclose(out, sample["image"])
    # an axis that is ignored keeps independent slices: a constant-per-slice image stays constant per slice
    slices = torch.arange(12, dtype=torch.float32)[None, :, None, None].expand(1, 12, 14, 16).clone()
    t2 = RandChannelLowResolutiond("image", prob=1.0, prob_per_channel=1.0, zoom_range=(0.5, 0.5), ignore_axes=(0,))
    torch.testing.assert_close(t2({"image": slices})["image"], slices)


@pytest.mark.parametrize("invert", [False, True])
def test_gamma_retains_statistics(invert):
    sample = _sample()
    t = RandGammad("image", prob=1.0, gamma_range=(0.7, 1.5), invert_image=invert, retain_stats=True)
    t.set_random_state(3)
    out = t(dict(sample))["image"]
    assert not torch.allclose(out, sample["image"])
    for c in range(2):
        assert out[c].mean() == pytest.approx(sample["image"][c].mean().item(), abs=1e-3)
        assert out[c].std() == pytest.approx(sample["image"][c].std().item(), rel=1e-3)


def test_gamma_sampling_is_balanced_around_one():
    rng = np.random.RandomState(0)
    values = np.array([sample_around_one(rng, (0.7, 1.5)) for _ in range(4000)])
    assert values.min() >= 0.7 and values.max() <= 1.5
    assert (values < 1).mean() == pytest.approx(0.5, abs=0.03)  # uniform on (0.7, 1.5) would give 0.375


def test_brightness_and_contrast_ranges_as_configured():
    chain = augmentation_transforms(augmentation_settings((12, 14, 16)))
    brightness = next(t for t in chain if isinstance(t, RandScaleIntensityd))
    contrast = next(t for t in chain if isinstance(t, RandScaleIntensityFixedMeand))
    assert brightness.prob == pytest.approx(0.15) and contrast.prob == pytest.approx(0.15)
    assert contrast.preserve_range and contrast.fixed_mean
    sample = _sample()
    brightness.prob = 1.0
    for seed in range(20):
        brightness.set_random_state(seed)
        out = brightness(dict(sample))["image"]
        ratio = (out / sample["image"]).flatten(1)
        assert torch.all(ratio.std(1) < 1e-4)  # one multiplier per channel
        assert torch.all((ratio.mean(1) >= 0.75 - 1e-5) & (ratio.mean(1) <= 1.25 + 1e-5))
    contrast.set_random_state(1)
    contrast.prob = 1.0
    out = contrast(dict(sample))["image"]
    assert not torch.allclose(out, sample["image"])
    for c in range(2):
        assert out[c].min() >= sample["image"][c].min() - 1e-4 and out[c].max() <= sample["image"][c].max() + 1e-4
        assert out[c].mean() == pytest.approx(sample["image"][c].mean().item(), rel=0.02)


def _coordinate_image(shape):
    grids = torch.meshgrid(*[torch.arange(s, dtype=torch.float32) for s in shape], indexing="ij")
    return torch.stack(grids)  # channel d holds the coordinate along axis d


def test_rotation_and_scaling_in_one_step_keep_label_values():
    shape = (30, 34, 32)
    image = _coordinate_image(shape)
    label = torch.zeros((1, *shape), dtype=torch.int16)
    label[0, 10:20, 12:22, 10:22] = 1
    label[0, 14:16, 15:19, 14:18] = 3
    t = RandRotateScaleCropd(["image", "label"], (16, 18, 16), prob_rotation=1.0, prob_scaling=1.0)
    for seed in range(5):
        t.set_random_state(seed)
        out = t({"image": image, "label": label})
        assert out["image"].shape == (3, 16, 18, 16) and out["label"].shape == (1, 16, 18, 16)
        assert set(torch.unique(out["label"]).tolist()) <= {-1, 0, 1, 3}
        # the output centre samples the input centre (rotation and scaling about the patch centre)
        centre = out["image"][:, 8, 9, 8]
        assert torch.allclose(centre, torch.tensor([15.0, 17.0, 16.0]), atol=2.5)


def test_scaling_above_one_shows_a_larger_field_of_view():
    shape = (40, 40, 40)
    image = _coordinate_image(shape)
    label = torch.zeros((1, *shape), dtype=torch.int16)
    t = RandRotateScaleCropd(["image", "label"], (10, 10, 10), prob_rotation=0.0, prob_scaling=1.0,
                             scale_range=(2.0, 2.0))
    out = t({"image": image, "label": label})
    extent = out["image"][0, -1, 0, 0] - out["image"][0, 0, 0, 0]
    assert extent == pytest.approx(18.0, abs=0.01)  # 10 voxels sampled 2 apart


def test_outside_the_input_is_marked_minus_one():
    image = torch.ones((1, 10, 10, 10))
    label = torch.ones((1, 10, 10, 10), dtype=torch.int16)
    t = RandRotateScaleCropd(["image", "label"], (10, 10, 10), prob_rotation=0.0, prob_scaling=1.0,
                             scale_range=(1.4, 1.4))
    out = t({"image": image, "label": label})
    assert out["label"][0, 0, 0, 0] == -1 and out["image"][0, 0, 0, 0] == 0
    assert out["label"][0, 5, 5, 5] == 1


def test_dummy_2d_rotates_in_plane_only():
    shape = (6, 40, 40)
    image = _coordinate_image(shape)
    t = RandRotateScaleCropd(["image", "label"], (6, 24, 24), rotation_range=(0.7, 0.7), prob_rotation=1.0,
                             prob_scaling=1.0, scale_range=(1.2, 1.2), dummy_2d=True)
    out = t({"image": image, "label": torch.zeros((1, *shape), dtype=torch.int16)})
    # the slice coordinate is untouched: slice z of the output is slice z of the input
    torch.testing.assert_close(out["image"][0], torch.arange(6, dtype=torch.float32)[:, None, None].expand(6, 24, 24))


def test_settings_follow_nnunet():
    hippo = augmentation_settings([40, 56, 40])
    assert hippo.rotation_range == pytest.approx((-np.pi / 6, np.pi / 6)) and not hippo.dummy_2d
    assert hippo.mirror_axes == (0, 1, 2)
    # nnU-Net's get_patch_size gives [73, 80, 64]; one more voxel keeps the centre crop on the grid
    assert hippo.initial_patch_size == [74, 80, 64]
    aniso = augmentation_settings([20, 64, 64])
    assert aniso.dummy_2d and aniso.rotation_range == pytest.approx((-np.pi, np.pi))
    assert aniso.initial_patch_size[0] == 20
    flat = augmentation_settings([56, 40])
    assert flat.rotation_range == pytest.approx((-np.pi, np.pi)) and flat.mirror_axes == (0, 1)
    elongated = augmentation_settings([96, 40])
    assert elongated.rotation_range == pytest.approx((-np.pi / 12, np.pi / 12))
    assert augmentation_patch_size([56, 40], np.pi) == [66, 66]  # nnU-Net: [65, 65], then parity
    assert augmentation_settings([40, 56, 40], mirror_axes=(1, 2)).mirror_axes == (1, 2)
    with pytest.raises(ValueError, match="mirror_axes"):
        augmentation_settings([40, 56], mirror_axes=(2,))
