import numpy as np
import pytest

from monai_nnunet.preprocessing.cropping import OUTSIDE_NONZERO_LABEL, crop_to_nonzero
from monai_nnunet.preprocessing.normalization import normalize_channel, scheme_for_channel_name
from monai_nnunet.preprocessing.transforms import sample_foreground_locations


def test_crop_to_nonzero_marks_outside():
    data = np.zeros((2, 10, 12, 14), np.float32)
    data[0, 2:6, 3:9, 4:8] = 1.0
    data[1, 5:8, 3:5, 4:6] = 2.0
    seg = np.zeros((1, 10, 12, 14), np.int16)
    seg[0, 3, 4, 5] = 1
    cropped, cseg, bbox = crop_to_nonzero(data, seg)
    assert bbox == [[2, 8], [3, 9], [4, 8]]
    assert cropped.shape == (2, 6, 6, 4) and cseg.shape == (1, 6, 6, 4)
    assert cseg[0, 1, 1, 1] == 1
    assert cseg[0, 5, 5, 3] == OUTSIDE_NONZERO_LABEL  # zero in both channels, outside the filled mask
    _, made, _ = crop_to_nonzero(data)
    assert set(np.unique(made)) == {0, OUTSIDE_NONZERO_LABEL}


def test_channel_names_pick_schemes():
    assert scheme_for_channel_name("CT").name == "CTNormalization"
    assert scheme_for_channel_name("ct").name == "CTNormalization"
    assert scheme_for_channel_name("T2").name == "ZScoreNormalization"
    assert scheme_for_channel_name("noNorm").name == "NoNormalization"
    assert scheme_for_channel_name("rescale_to_0_1").name == "RescaleTo01Normalization"


def test_ct_normalisation_clips_then_standardises():
    props = {"mean": 50.0, "std": 10.0, "percentile_00_5": 0.0, "percentile_99_5": 100.0}
    image = np.array([[[-500.0, 50.0, 60.0, 3000.0]]])
    out = normalize_channel(image, "CTNormalization", False, None, props)
    np.testing.assert_allclose(out, [[[-5.0, 0.0, 1.0, 5.0]]])
    with pytest.raises(ValueError, match="foreground intensity properties"):
        normalize_channel(image, "CTNormalization", False, None, {})


def test_zscore_with_and_without_mask():
    rng = np.random.default_rng(0)
    image = rng.normal(5, 3, size=(6, 6, 6)).astype(np.float32)
    out = normalize_channel(image.copy(), "ZScoreNormalization", False, None, {})
    assert out.mean() == pytest.approx(0, abs=1e-5) and out.std() == pytest.approx(1, abs=1e-4)
    seg = np.zeros((6, 6, 6), np.int16)
    seg[:, :2] = -1
    image[:, :2] = 0
    out = normalize_channel(image.copy(), "ZScoreNormalization", True, seg, {})
    assert np.all(out[:, :2] == 0)
    assert out[:, 2:].mean() == pytest.approx(0, abs=1e-5)
    with pytest.raises(ValueError, match="unknown normalization"):
        normalize_channel(image, "Bogus", False, None, {})


def test_sample_foreground_locations():
    seg = np.zeros((1, 20, 20, 20), np.int16)
    seg[0, :5, :5, :5] = 1  # 125 voxels
    seg[0, 10:, 10:, 10:] = 2  # 1000 voxels
    locs = sample_foreground_locations(seg, [1, 2, 3, (1, 2)], min_num_samples=200)
    assert locs[1].shape == (125, 4) and locs[2].shape == (200, 4) and locs[3].shape == (0, 4)
    assert locs[(1, 2)].shape == (200, 4)
    for key, value in ((1, 1), (2, 2)):
        assert np.all(seg[tuple(locs[key].T)] == value)
    assert np.all(np.isin(seg[tuple(locs[(1, 2)].T)], [1, 2]))
    again = sample_foreground_locations(seg, [1, 2, 3, (1, 2)], min_num_samples=200)
    np.testing.assert_array_equal(locs[2], again[2])
