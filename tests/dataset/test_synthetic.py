import numpy as np
import pytest
from scipy.ndimage import label as connected_components

from monai_nnunet.dataset.io import read_images, read_segmentation
from monai_nnunet.dataset.raw import RawDataset
from monai_nnunet.dataset.synthetic import make_synthetic_dataset


def test_layout_and_blobs(tmp_path):
    folder = make_synthetic_dataset(tmp_path, dataset_id=5, name="Blobs", num_cases=3, shape=(20, 24, 22),
                                    num_classes=2, blobs_per_class=3, num_channels=2, num_test_cases=1, seed=3)
    raw = RawDataset(folder)
    cases = raw.training_cases()
    assert list(cases) == ["blobs_tr000", "blobs_tr001", "blobs_tr002"]
    assert len(raw.test_cases()) == 1
    assert raw.description.num_channels == 2 and raw.description.foreground_labels == [1, 2]
    for case in cases.values():
        seg, _ = read_segmentation(case.label)
        for c in (1, 2):
            assert connected_components(seg[0] == c, structure=np.ones((3, 3, 3)))[1] == 3
        data, _ = read_images(case.images)
        assert data.shape[0] == 2 and data.shape[1:] == seg.shape[1:]
        assert data[0][seg[0] == 2].mean() > data[0][seg[0] == 1].mean() > data[0][seg[0] == 0].mean()


def test_deterministic_and_anisotropic(tmp_path):
    a = make_synthetic_dataset(tmp_path / "a", num_cases=1, shape=(10, 32, 32), spacing=(3.0, 0.8, 0.8), seed=7,
                               num_test_cases=0)
    b = make_synthetic_dataset(tmp_path / "b", num_cases=1, shape=(10, 32, 32), spacing=(3.0, 0.8, 0.8), seed=7,
                               num_test_cases=0)
    da, pa = read_images([next((a / "imagesTr").iterdir())])
    db, _ = read_images([next((b / "imagesTr").iterdir())])
    np.testing.assert_array_equal(da, db)
    np.testing.assert_allclose(pa["spacing"], [3.0, 0.8, 0.8], rtol=1e-6)


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="dataset_id"):
        make_synthetic_dataset(tmp_path, dataset_id=1000)
    with pytest.raises(ValueError, match="three values"):
        make_synthetic_dataset(tmp_path, shape=(10, 10))
