"""The cascade's transforms: one-hot input channels of the previous stage's segmentation, random morphology and
random removal of a connected component (values, shapes, probability 0 and 1)."""

from pathlib import Path

import numpy as np
import pytest
import torch

from monai_nnunet.transforms import MoveSegAsOneHotToImaged, RandBinaryOperatord, RandRemoveConnectedComponentd
from monai_nnunet.transforms.cascade import BINARY_OPERATORS, ball_dilation, ball_erosion, seg_to_one_hot


def _cube(shape=(12, 12, 12), lo=4, hi=8):
    mask = np.zeros(shape, dtype=bool)
    mask[lo:hi, lo:hi, lo:hi] = True
    return mask


def test_one_hot_channels_appended_after_the_image_and_seg_removed():
    image = torch.rand(2, 4, 5, 6)
    seg = torch.zeros(1, 4, 5, 6, dtype=torch.int16)
    seg[0, 0] = 1
    seg[0, 1] = 2
    seg[0, 2] = -1  # outside the nonzero region: no channel
    out = MoveSegAsOneHotToImaged("seg_prev", labels=[1, 2])({"image": image, "seg_prev": seg})
    assert "seg_prev" not in out
    assert out["image"].shape == (4, 4, 5, 6) and out["image"].dtype == torch.float32
    torch.testing.assert_close(out["image"][:2], image)
    assert out["image"][2, 0].eq(1).all() and out["image"][2, 1:].eq(0).all()
    assert out["image"][3, 1].eq(1).all() and out["image"][3, 0].eq(0).all() and out["image"][3, 2:].eq(0).all()
    # NumPy in, NumPy out
    out_np = MoveSegAsOneHotToImaged("seg_prev", labels=[1, 2])({"image": image.numpy(), "seg_prev": seg.numpy()})
    np.testing.assert_array_equal(out_np["image"], out["image"].numpy())


def test_one_hot_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="seg_prev of shape"):
        MoveSegAsOneHotToImaged("seg_prev", labels=[1])({"image": np.zeros((1, 4, 4, 4)),
                                                         "seg_prev": np.zeros((1, 4, 4, 5))})


def test_seg_to_one_hot_values():
    seg = np.array([[0, 1], [2, 3]])
    np.testing.assert_array_equal(seg_to_one_hot(seg, [1, 3]), np.array([[[0, 1], [0, 0]], [[0, 0], [0, 1]]]))


def test_morphology_matches_the_ball():
    cube = _cube()
    dilated = ball_dilation(cube, 1)
    # radius 1 ball: the 6-neighbourhood; the cube grows by one voxel per face, edges and corners not
    assert dilated.sum() == 64 + 6 * 16
    eroded = ball_erosion(cube, 1)
    assert eroded.sum() == 8 and eroded[5:7, 5:7, 5:7].all()
    # nnU-Net's: the patch border does not erode a structure touching it
    full = np.ones((6, 6, 6), dtype=bool)
    assert ball_erosion(full, 2).all()


def _one_hot_image(mask_a, mask_b):
    return np.stack([np.random.rand(*mask_a.shape), mask_a, mask_b]).astype(np.float32)


def test_binary_operator_probability_zero_changes_nothing():
    image = _one_hot_image(_cube(), ~_cube())
    out = RandBinaryOperatord("image", channels=[-2, -1], prob=0.0)({"image": image.copy()})
    np.testing.assert_array_equal(out["image"], image)
    out = RandBinaryOperatord("image", channels=[-2, -1], prob=1.0, prob_per_label=0.0)({"image": image.copy()})
    np.testing.assert_array_equal(out["image"], image)


def test_binary_operator_dilation_keeps_one_hot_and_image_channel():
    a, b = _cube(), np.zeros((12, 12, 12), dtype=bool)
    b[0:2] = True
    image = _one_hot_image(a, b)
    t = RandBinaryOperatord("image", channels=[1], prob=1.0, prob_per_label=1.0, strel_size=2,
                            operators=["dilation"])
    out = t({"image": torch.as_tensor(image)})["image"]
    assert isinstance(out, torch.Tensor) and out.shape == (3, 12, 12, 12)
    np.testing.assert_array_equal(out[0].numpy(), image[0])  # the image channel is untouched
    np.testing.assert_array_equal(out[1].numpy(), ball_dilation(a, 2))
    # channels not listed are left alone; with both listed, a grown label clears the other one where it grew
    both = RandBinaryOperatord("image", channels=[1, 2], prob=1.0, prob_per_label=1.0, strel_size=3,
                               operators=["dilation"])
    out = both({"image": image.copy()})["image"]
    assert ((out[1] > 0) & (out[2] > 0)).sum() == 0
    assert set(np.unique(out[1:])) <= {0.0, 1.0}


def test_binary_operator_opening_removes_thin_structures_erosion_shrinks():
    a = _cube(lo=2, hi=10)
    a[0, :, 5] = True  # a one-voxel line
    image = _one_hot_image(a, np.zeros_like(a))
    opened = RandBinaryOperatord("image", channels=[1], prob=1.0, prob_per_label=1.0, strel_size=1,
                                 operators=["opening"])({"image": image.copy()})["image"][1]
    assert not opened[0].any() and opened[5, 5, 5] == 1
    eroded = RandBinaryOperatord("image", channels=[1], prob=1.0, prob_per_label=1.0, strel_size=(1, 1.5),
                                 operators=["erosion"])({"image": image.copy()})["image"][1]
    assert eroded.sum() < a.sum() and not (eroded.astype(bool) & ~a).any()


def test_binary_operator_rejects_bad_arguments():
    with pytest.raises(ValueError, match="unknown binary operator"):
        RandBinaryOperatord("image", channels=[-1], operators=["skeleton"])
    with pytest.raises(ValueError, match="strel_size"):
        RandBinaryOperatord("image", channels=[-1], strel_size=(3, 1))
    with pytest.raises(ValueError, match="channel 5 does not exist"):
        RandBinaryOperatord("image", channels=[5], prob=1.0, prob_per_label=1.0)({"image": np.zeros((2, 4, 4))})


def test_remove_component_removes_one_small_component():
    a = np.zeros((16, 16, 16), dtype=bool)
    a[1:3, 1:3, 1:3] = True    # 8 voxels
    a[10:13, 10:13, 10:13] = True  # 27 voxels
    image = _one_hot_image(a, np.zeros_like(a))
    t = RandRemoveConnectedComponentd("image", channels=[1], prob=1.0, prob_per_label=1.0)
    t.set_random_state(0)
    out = t({"image": image.copy()})["image"]
    remaining = out[1].sum()
    assert remaining in (8, 27)  # exactly one of the two components is gone
    np.testing.assert_array_equal(out[0], image[0])
    # probability 0: nothing happens
    out = RandRemoveConnectedComponentd("image", channels=[1], prob=0.0)({"image": image.copy()})["image"]
    np.testing.assert_array_equal(out, image)


def test_remove_component_keeps_large_components_and_can_fill_another_class():
    a = _cube(lo=0, hi=12)  # covers the whole patch: above max_coverage, never removed
    image = _one_hot_image(a, np.zeros_like(a))
    out = RandRemoveConnectedComponentd("image", channels=[1], prob=1.0, prob_per_label=1.0)({"image": image.copy()})
    np.testing.assert_array_equal(out["image"], image)
    small = _cube(lo=4, hi=6)
    image = _one_hot_image(small, np.zeros_like(small))
    for seed in range(4):
        t = RandRemoveConnectedComponentd("image", channels=[1, 2], prob=1.0, prob_per_label=1.0,
                                          fill_with_other_class_p=1.0)
        t.set_random_state(seed)
        out = t({"image": image.copy()})["image"]
        # the component moved to the other channel (and maybe back): still one-hot, still all there
        assert not ((out[1] > 0) & (out[2] > 0)).any()
        assert out[1].sum() + out[2].sum() == small.sum()


def test_transforms_are_reproducible_from_their_seed():
    a = _cube()
    image = _one_hot_image(a, ~a)
    runs = []
    for _ in range(2):
        t = RandBinaryOperatord("image", channels=[-2, -1], prob=1.0)
        t.set_random_state(7)
        runs.append(t({"image": image.copy()})["image"])
    np.testing.assert_array_equal(runs[0], runs[1])


FIXTURE = Path(__file__).parent / "fixtures" / "nnunet_cascade_morphology.npz"


@pytest.mark.parametrize("dim", ["3d", "2d"])
@pytest.mark.parametrize("radius", [1, 2, 3])
@pytest.mark.parametrize("name", ["dilation", "erosion", "opening", "closing"])
def test_morphology_equals_nnunet(name, radius, dim):
    """Our SciPy operators give batchgeneratorsv2's FFT-convolution results (fixture made by nnU-Net 2.8.1's
    dependencies; see fixtures/make_nnunet_cascade_fixture.py), border handling included."""
    with np.load(FIXTURE) as f:
        mask, expected = f[f"mask_{dim}"], f[f"{name}_{dim}_{radius}"]
    np.testing.assert_array_equal(BINARY_OPERATORS[name](mask, radius), expected)
