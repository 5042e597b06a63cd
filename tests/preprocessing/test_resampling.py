from pathlib import Path

import numpy as np
import pytest

from monai_nnunet.preprocessing.resampling import compute_new_shape
from monai_nnunet.preprocessing.resampling import determine_separate_z_axis, resample_data_or_seg_to_shape

FIXTURE = Path(__file__).parent / "fixtures" / "nnunet_resampling.npz"


@pytest.mark.parametrize("case", ["iso", "aniso"])
def test_image_resampling_equals_nnunet(case):
    fx = np.load(FIXTURE)
    data, spacing, target = fx[f"{case}_data"], fx[f"{case}_spacing"], fx[f"{case}_target"]
    new_shape = compute_new_shape(data.shape[1:], spacing, target)
    ours = resample_data_or_seg_to_shape(data, new_shape, spacing, target, is_seg=False, order=3, order_z=0,
                                         force_separate_z=None)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, fx[f"{case}_expected"], atol=1e-5)


def test_separate_axis_rule():
    assert determine_separate_z_axis([3.0, 0.8, 0.8], [1.0, 1.0, 1.0]) == 0
    assert determine_separate_z_axis([1.0, 1.0, 1.0], [0.8, 3.0, 0.8]) == 1
    assert determine_separate_z_axis([1.0, 1.0, 1.0], [1.0, 1.0, 1.0]) is None
    assert determine_separate_z_axis([0.24, 1.25, 1.25], [1, 1, 1]) is None  # two coarse axes: joint
    assert determine_separate_z_axis([1.0, 1.0, 1.0], [1, 1, 1], force_separate_z=True) is None


@pytest.mark.parametrize("spacing,target", [([1.5, 1.2, 1.0], [1.0, 1.0, 1.0]), ([3.0, 0.8, 0.8], [1.0, 1.0, 1.0]),
                                            ([1.0, 1.0, 1.0], [2.0, 1.7, 1.3])])
def test_label_resampling_keeps_values_and_fills_every_voxel(spacing, target):
    seg = np.zeros((1, 10, 16, 15), np.int16)
    seg[0, 2:8, 3:12, 4:10] = 1
    seg[0, 4:6, 6:9, 5:8] = 3
    seg[0, :, :2] = -1
    new_shape = compute_new_shape(seg.shape[1:], spacing, target)
    out = resample_data_or_seg_to_shape(seg, new_shape, spacing, target, is_seg=True, order=1)
    assert out.shape == (1, *new_shape) and out.dtype == np.int16
    assert set(np.unique(out)) <= {-1, 0, 1, 3}
    # proportions are kept within a voxel layer's worth
    for v in (1, 3):
        before = (seg == v).sum() * np.prod(spacing)
        after = (out == v).sum() * np.prod(target)
        assert after == pytest.approx(before, rel=0.6)


def test_argmax_leaves_no_holes_where_thresholding_would():
    # three labels meeting at a point: per-label 0.5 thresholds can leave unassigned voxels, argmax cannot
    seg = np.zeros((1, 4, 4, 4), np.int16)
    seg[0, :2, :2] = 1
    seg[0, 2:, :2] = 2
    seg[0, :, 2:] = 3
    out = resample_data_or_seg_to_shape(seg, (7, 7, 7), [1, 1, 1], [0.6, 0.6, 0.6], is_seg=True, order=1)
    assert not np.any(out == 0)


def test_same_shape_is_identity_and_bad_input():
    data = np.random.rand(1, 4, 5, 6).astype(np.float32)
    assert resample_data_or_seg_to_shape(data, (4, 5, 6), [1, 1, 1], [1, 1, 1]) is data
    with pytest.raises(ValueError, match=r"\(C, Z, Y, X\)"):
        resample_data_or_seg_to_shape(data[0], (4, 5, 6), [1, 1, 1], [1, 1, 1])
