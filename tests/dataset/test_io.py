"""Reading in nnU-Net's axis order through MONAI's ITK reader, and writing back in the input's geometry."""

import gzip

import nibabel as nib
import numpy as np
import pytest

from monai_nnunet.dataset.io import (
    GeometryMismatchError,
    ImageReadError,
    read_images,
    read_segmentation,
    write_image,
    write_segmentation,
)
from tests.conftest import HIPPOCAMPUS, requires_hippocampus


def _write_nifti(path, array_xyz, spacing_xyz=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0)):
    affine = np.diag([*spacing_xyz, 1.0])
    affine[:3, 3] = origin
    nib.save(nib.Nifti1Image(array_xyz, affine), str(path))


@requires_hippocampus
@pytest.mark.parametrize("case", ["hippocampus_001", "hippocampus_367"])
def test_hippocampus_equals_nibabel_transposed(case):
    image_file = HIPPOCAMPUS / "imagesTr" / f"{case}_0000.nii.gz"
    label_file = HIPPOCAMPUS / "labelsTr" / f"{case}.nii.gz"
    data, props = read_images([image_file])
    reference = np.asanyarray(nib.load(str(image_file)).dataobj).astype(np.float32)
    assert data.shape == (1, *reference.shape[::-1])
    np.testing.assert_array_equal(data[0], reference.transpose(2, 1, 0))
    seg, _ = read_segmentation(label_file)
    np.testing.assert_array_equal(seg[0], np.asanyarray(nib.load(str(label_file)).dataobj).transpose(2, 1, 0))


def test_anisotropic_spacing_in_zyx_order(tmp_path):
    rng = np.random.default_rng(0)
    array = rng.normal(size=(30, 20, 8)).astype(np.float32)  # x, y, z
    _write_nifti(tmp_path / "a_0000.nii.gz", array, spacing_xyz=(0.8, 0.7, 3.0), origin=(5.0, -3.0, 12.0))
    data, props = read_images([tmp_path / "a_0000.nii.gz"])
    assert data.shape == (1, 8, 20, 30)
    np.testing.assert_allclose(props["spacing"], [3.0, 0.7, 0.8], rtol=1e-6)
    np.testing.assert_allclose(props["sitk_stuff"]["spacing"], [0.8, 0.7, 3.0], rtol=1e-6)
    np.testing.assert_array_equal(data[0], array.transpose(2, 1, 0))


def test_segmentation_round_trip_keeps_geometry(tmp_path):
    seg = np.zeros((12, 10, 9), np.uint8)
    seg[3:6, 2:5, 1:4] = 2
    _write_nifti(tmp_path / "img_0000.nii.gz", seg.astype(np.float32), (0.5, 1.5, 2.5), (1.0, 2.0, 3.0))
    _, props = read_images([tmp_path / "img_0000.nii.gz"])
    zyx = seg.transpose(2, 1, 0)
    write_segmentation(zyx, tmp_path / "out.nii.gz", props)
    back, back_props = read_segmentation(tmp_path / "out.nii.gz")
    np.testing.assert_array_equal(back[0], zyx)
    np.testing.assert_allclose(nib.load(str(tmp_path / "out.nii.gz")).affine,
                               nib.load(str(tmp_path / "img_0000.nii.gz")).affine, atol=1e-5)
    assert back.dtype == np.uint8


def test_multichannel_stack_and_mismatch(tmp_path):
    a = np.ones((6, 5, 4), np.float32)
    _write_nifti(tmp_path / "c_0000.nii.gz", a)
    _write_nifti(tmp_path / "c_0001.nii.gz", 2 * a)
    data, _ = read_images([tmp_path / "c_0000.nii.gz", tmp_path / "c_0001.nii.gz"])
    assert data.shape == (2, 4, 5, 6)
    np.testing.assert_array_equal(data[1], 2.0)
    _write_nifti(tmp_path / "d_0001.nii.gz", np.ones((6, 5, 3), np.float32))
    with pytest.raises(GeometryMismatchError, match="case c.*d_0001"):
        read_images([tmp_path / "c_0000.nii.gz", tmp_path / "d_0001.nii.gz"], case_id="c")
    _write_nifti(tmp_path / "e_0001.nii.gz", a, spacing_xyz=(2.0, 1.0, 1.0))
    with pytest.raises(GeometryMismatchError, match="spacing"):
        read_images([tmp_path / "c_0000.nii.gz", tmp_path / "e_0001.nii.gz"], case_id="c")


def test_missing_and_truncated_files_name_the_file(tmp_path):
    with pytest.raises(ImageReadError, match="nothere_0000.nii.gz.*does not exist"):
        read_images([tmp_path / "nothere_0000.nii.gz"])
    _write_nifti(tmp_path / "t_0000.nii.gz", np.ones((20, 20, 20), np.float32))
    raw = gzip.decompress((tmp_path / "t_0000.nii.gz").read_bytes())
    (tmp_path / "t_0000.nii.gz").write_bytes(gzip.compress(raw[: len(raw) // 2]))
    with pytest.raises(ImageReadError, match="t_0000.nii.gz"):
        read_images([tmp_path / "t_0000.nii.gz"])


def test_2d_png_reads_as_single_slice(tmp_path):
    import itk

    image = np.arange(12 * 7, dtype=np.uint8).reshape(12, 7)  # (y, x)
    itk.imwrite(itk.image_from_array(image), str(tmp_path / "p_0000.png"))
    data, props = read_images([tmp_path / "p_0000.png"])
    assert data.shape == (1, 1, 12, 7)
    np.testing.assert_array_equal(data[0, 0], image)
    assert props["spacing"][0] == 999.0
    write_segmentation((image > 40).astype(np.uint8)[None], tmp_path / "s.png", props)
    seg, _ = read_segmentation(tmp_path / "s.png")
    np.testing.assert_array_equal(seg[0, 0], image > 40)


def test_write_image_rejects_wrong_dimensionality(tmp_path):
    props = {"sitk_stuff": {"spacing": (1.0, 1.0, 1.0), "origin": (0.0, 0.0, 0.0),
                            "direction": (1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0)}}
    with pytest.raises(ValueError, match="does not fit a 3D geometry"):
        write_image(np.zeros((4, 4)), tmp_path / "x.nii.gz", props)
