"""nnU-Net's patch sampling: oversampling positions, crop bounds, forced foreground, padding."""

import numpy as np
import pytest
import torch

from monai_nnunet.transforms.labels import deep_supervision_scales
from monai_nnunet.transforms.pipeline import augmentation_settings, training_transforms, validation_transforms
from monai_nnunet.transforms.sampling import RandPatchCropWithOversamplingd, crop_and_pad, is_oversampled_position


@pytest.mark.parametrize("batch_size,expected", [(2, [False, True]), (7, [False] * 5 + [True] * 2),
                                                 (12, [False] * 8 + [True] * 4), (1, [False])])
def test_oversampled_positions_as_nnunet(batch_size, expected):
    assert [is_oversampled_position(j, batch_size, 0.33) for j in range(batch_size)] == expected


def test_crop_and_pad():
    a = np.arange(2 * 4 * 5, dtype=np.float32).reshape(2, 4, 5)
    out = crop_and_pad(a, [[-1, 3], [3, 7]], pad_value=-9)
    assert out.shape == (2, 4, 4)
    np.testing.assert_array_equal(out[:, 1:, :2], a[:, 0:3, 3:5])
    assert np.all(out[:, 0] == -9) and np.all(out[:, :, 2:] == -9)
    assert np.all(crop_and_pad(a, [[10, 12], [0, 2]], 7) == 7)


def _case(shape=(12, 30, 28)):
    image = np.random.default_rng(0).normal(size=(1, *shape)).astype(np.float32)
    label = np.zeros((1, *shape), np.int8)
    label[0, 9:11, 25:28, 24:27] = 2  # one small object in a corner
    locations = {1: np.zeros((0, 4), np.int64), 2: np.argwhere(label == 2)}
    return {"image": image, "label": label, "properties": {"class_locations": locations}}


def test_forced_foreground_patches_contain_foreground():
    crop = RandPatchCropWithOversamplingd(["image", "label"], (8, 10, 10), (8, 10, 10))
    crop.set_random_state(0)
    for _ in range(30):
        out = crop({**_case(), "force_fg": True})
        assert (out["label"] == 2).any()
        assert out["image"].shape == (1, 8, 10, 10) and out["label"].dtype == np.int16


def test_random_patches_stay_within_the_padded_bounds():
    crop = RandPatchCropWithOversamplingd(["image", "label"], (16, 20, 20), (8, 10, 10))
    crop.set_random_state(1)
    for _ in range(50):
        box = crop({**_case(), "force_fg": False})["patch_bbox"]
        # the final patch's centre may reach every border, but no further
        for (start, stop), size, final in zip(box, (12, 30, 28), (8, 10, 10)):
            assert start >= -(16 - 8) // 2 - 8 and stop <= size + (16 - 8) // 2 + 8
    small = crop({"image": np.ones((1, 4, 5, 5), np.float32), "label": np.zeros((1, 4, 5, 5), np.int8),
                  "properties": {}, "force_fg": False})
    assert small["image"].shape == (1, 16, 20, 20)
    assert (small["label"] == -1).sum() == 16 * 20 * 20 - 4 * 5 * 5  # outside is marked -1
    assert small["image"].sum() == 4 * 5 * 5


def test_case_without_foreground_falls_back_to_random():
    case = _case()
    case["properties"]["class_locations"] = {1: np.zeros((0, 4)), 2: np.zeros((0, 4))}
    out = RandPatchCropWithOversamplingd(["image", "label"], (8, 10, 10), (8, 10, 10))({**case, "force_fg": True})
    assert out["image"].shape == (1, 8, 10, 10)


def test_ignore_label_targets_annotated_voxels():
    case = _case()
    case["label"][:] = 3  # ignore everywhere ...
    case["label"][0, :2, :3, :3] = 0  # ... except a small annotated corner
    annotated = (-1, 0, 1, 2)
    case["properties"]["class_locations"][annotated] = np.argwhere(case["label"] == 0)
    crop = RandPatchCropWithOversamplingd(["image", "label"], (4, 4, 4), (4, 4, 4), has_ignore_label=True,
                                          annotated_classes_key=annotated)
    crop.set_random_state(0)
    for _ in range(20):
        assert (crop({**case, "force_fg": False})["label"] == 0).any()


@pytest.mark.parametrize("patch,strides", [
    ((16, 20, 20), [[1, 1, 1], [2, 2, 2], [2, 2, 2]]),
    ((20, 24), [[1, 1], [2, 2], [2, 2], [2, 2]]),
    ((4, 24, 24), [[1, 1, 1], [1, 2, 2], [1, 2, 2]]),  # anisotropic: dummy 2D
])
def test_patch_and_deep_supervision_shapes(patch, strides):
    settings = augmentation_settings(patch)
    assert settings.dummy_2d == (patch == (4, 24, 24))
    scales = deep_supervision_scales(strides)
    chain = training_transforms(settings, deep_supervision_scales=scales)
    chain.set_random_state(0)
    case = _case((10, 30, 28))
    for force in (False, True):
        out = chain({**case, "force_fg": force})
        assert tuple(out["image"].shape) == (1, *patch)
        expected = [tuple(round(p * s) for p, s in zip(patch, scale)) for scale in scales]
        assert [tuple(t.shape[1:]) for t in out["label"]] == expected
        assert all(t.min() >= 0 for t in out["label"])  # "outside" became background
    val = validation_transforms(settings, deep_supervision_scales=scales)({**case, "force_fg": True})
    assert tuple(val["image"].shape) == (1, *patch) and (val["label"][0] == 2).any()


def test_forced_foreground_survives_the_whole_training_chain():
    settings = augmentation_settings((8, 10, 10))
    chain = training_transforms(settings)
    chain.set_random_state(0)
    hits = sum(bool((torch.as_tensor(chain({**_case(), "force_fg": True})["label"]) == 2).any()) for _ in range(30))
    assert hits == 30


def test_outside_becomes_background_also_when_the_dataset_has_an_ignore_label():
    """nnU-Net's RemoveLabelTansform(-1, 0): the padding around a small case is learnt as background."""
    settings = augmentation_settings((16, 20, 20))
    chain = validation_transforms(settings, ignore_label=3)
    label = np.zeros((1, 4, 5, 5), np.int8)
    label[0, 0, 0, 0] = 3  # an annotated-as-ignore voxel stays ignored
    out = chain({"image": np.ones((1, 4, 5, 5), np.float32), "label": label, "properties": {}, "force_fg": False})
    values = torch.as_tensor(out["label"])
    assert set(torch.unique(values).tolist()) == {0, 3}
    assert int((values == 3).sum()) == 1  # the padding (-1) became 0, not the ignore label
