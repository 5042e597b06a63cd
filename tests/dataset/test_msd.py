import json

import nibabel as nib
import numpy as np
import pytest

from monai_nnunet.dataset.io import read_images, read_segmentation
from monai_nnunet.dataset.msd import MSDConversionError, convert_msd
from monai_nnunet.dataset.raw import RawDataset


def _msd_task(root, name, channels, n=2):
    task = root / name
    (task / "imagesTr").mkdir(parents=True)
    (task / "labelsTr").mkdir()
    (task / "imagesTs").mkdir()
    rng = np.random.default_rng(0)
    training = []
    shape = (9, 8, 7) + ((channels,) if channels > 1 else ())
    for i in range(n):
        image = rng.normal(size=shape).astype(np.float32)
        label = (rng.random(shape[:3]) > 0.7).astype(np.uint8)
        nib.save(nib.Nifti1Image(image, np.diag([1.0, 1.5, 2.0, 1.0])), str(task / "imagesTr" / f"case_{i:03d}.nii.gz"))
        nib.save(nib.Nifti1Image(label, np.diag([1.0, 1.5, 2.0, 1.0])), str(task / "labelsTr" / f"case_{i:03d}.nii.gz"))
        training.append({"image": f"./imagesTr/case_{i:03d}.nii.gz", "label": f"./labelsTr/case_{i:03d}.nii.gz"})
    nib.save(nib.Nifti1Image(rng.normal(size=shape).astype(np.float32), np.eye(4)), str(task / "imagesTs" / "case_900.nii.gz"))
    modality = {str(c): f"M{c}" for c in range(channels)}
    (task / "dataset.json").write_text(json.dumps({
        "name": name, "modality": modality, "labels": {"0": "background", "1": "thing"},
        "numTraining": n, "training": training, "test": ["./imagesTs/case_900.nii.gz"],
    }))
    return task


@pytest.mark.parametrize("channels", [1, 3])
def test_convert(tmp_path, channels):
    task = _msd_task(tmp_path, "Task07_Thing", channels)
    out = convert_msd(task, tmp_path / "raw")
    assert out.name == "Dataset007_Thing"
    raw = RawDataset(out)
    assert raw.description.labels == {"background": 0, "thing": 1}
    assert raw.description.num_channels == channels
    cases = raw.training_cases()
    assert list(cases) == ["case_000", "case_001"]
    data, props = read_images(cases["case_000"].images)
    original = np.asanyarray(nib.load(str(task / "imagesTr" / "case_000.nii.gz")).dataobj)
    if channels == 1:
        original = original[..., None]
    for c in range(channels):
        np.testing.assert_array_equal(data[c], original[..., c].transpose(2, 1, 0))
    np.testing.assert_allclose(props["spacing"], [2.0, 1.5, 1.0])
    seg, _ = read_segmentation(cases["case_000"].label)
    assert seg.shape[1:] == data.shape[1:]
    assert len(raw.test_cases()) == 1 and len(raw.test_cases()["case_900"].images) == channels


def test_refuses_existing_target_and_non_task_folder(tmp_path):
    task = _msd_task(tmp_path, "Task07_Thing", 1)
    convert_msd(task, tmp_path / "raw", dataset_id=70)
    with pytest.raises(MSDConversionError, match="already exists"):
        convert_msd(task, tmp_path / "raw", dataset_id=70)
    (tmp_path / "NotATask").mkdir()
    with pytest.raises(MSDConversionError, match="TaskXX_Name"):
        convert_msd(tmp_path / "NotATask", tmp_path / "raw")


def test_channel_count_mismatch(tmp_path):
    task = _msd_task(tmp_path, "Task08_Bad", 3)
    meta = json.loads((task / "dataset.json").read_text())
    meta["modality"] = {"0": "A", "1": "B"}
    (task / "dataset.json").write_text(json.dumps(meta))
    with pytest.raises(MSDConversionError, match="case_000.nii.gz.*2 modalities"):
        convert_msd(task, tmp_path / "raw")
    assert not (tmp_path / "raw" / "Dataset008_Bad").exists()
