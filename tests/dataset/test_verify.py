"""Each broken dataset fails ``plan_and_preprocess --verify_dataset_integrity`` with a message naming the file, and
nothing is written into the preprocessed folder."""

import gzip
import json

import numpy as np
import pytest

from monai_nnunet.cli.main import main
from monai_nnunet.dataset.io import read_images, read_segmentation, write_image, write_segmentation

CASE = "synthetic_tr001"


def _image(ds, case=CASE, channel=0):
    return ds / "imagesTr" / f"{case}_{channel:04d}.nii.gz"


def _label(ds, case=CASE):
    return ds / "labelsTr" / f"{case}.nii.gz"


def _edit_json(ds, **changes):
    meta = json.loads((ds / "dataset.json").read_text())
    meta.update(changes)
    (ds / "dataset.json").write_text(json.dumps(meta))


def _shape_mismatch(ds):
    seg, props = read_segmentation(_label(ds))
    write_segmentation(seg[0, :-2], _label(ds), props)
    return _label(ds).name


def _spacing_mismatch(ds):
    seg, props = read_segmentation(_label(ds))
    props["sitk_stuff"]["spacing"] = (1.0, 1.0, 2.0)
    write_segmentation(seg[0], _label(ds), props)
    return _label(ds).name


def _undeclared_label(ds):
    seg, props = read_segmentation(_label(ds))
    seg[0, 0, 0, 0] = 5
    write_segmentation(seg[0], _label(ds), props)
    return _label(ds).name


def _nan_intensity(ds):
    data, props = read_images([_image(ds)])
    data[0, 3, 3, 3] = np.nan
    write_image(data[0], _image(ds), props)
    return _image(ds).name


def _truncated(ds):
    raw = gzip.decompress(_image(ds).read_bytes())
    _image(ds).write_bytes(gzip.compress(raw[: len(raw) // 2]))
    return _image(ds).name


def _garbage(ds):
    _label(ds).write_bytes(b"this is not an image")
    return _label(ds).name


def _missing_label(ds):
    _label(ds).unlink()
    return _label(ds).name


def _num_training(ds):
    _edit_json(ds, numTraining=99)
    return "numTraining is 99"


def _non_consecutive(ds):
    _edit_json(ds, labels={"background": 0, "class1": 1, "class2": 3})
    return "consecutive"


BREAKAGES = {
    "shape_mismatch": _shape_mismatch,
    "spacing_mismatch": _spacing_mismatch,
    "undeclared_label": _undeclared_label,
    "nan_intensity": _nan_intensity,
    "truncated": _truncated,
    "unreadable": _garbage,
    "missing_label": _missing_label,
    "num_training": _num_training,
    "non_consecutive_labels": _non_consecutive,
}


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_broken_dataset_fails_naming_the_file(synthetic_dataset, nnunet_env, capsys, breakage):
    expected = BREAKAGES[breakage](synthetic_dataset)
    status = main(["plan_and_preprocess", "-d", "998", "--verify_dataset_integrity", "-np", "1"])
    err = capsys.readouterr().err
    assert status == 1
    assert expected in err
    assert "failed verification" in err
    assert not (nnunet_env["preprocessed"] / synthetic_dataset.name).exists()


def test_missing_channel_file(nnunet_env, capsys):
    from monai_nnunet.dataset.synthetic import make_synthetic_dataset

    ds = make_synthetic_dataset(nnunet_env["raw"], dataset_id=12, name="Two", num_cases=3, shape=(12, 12, 12),
                                num_channels=2, num_test_cases=0)
    _image(ds, "two_tr002", 1).unlink()
    assert main(["plan_and_preprocess", "-d", "12", "--verify_dataset_integrity"]) == 1
    err = capsys.readouterr().err
    assert "two_tr002_0001.nii.gz: missing channel file for case two_tr002" in err
    assert not (nnunet_env["preprocessed"] / ds.name).exists()


def test_several_problems_reported_at_once(synthetic_dataset, nnunet_env, capsys):
    _undeclared_label(synthetic_dataset)
    (synthetic_dataset / "labelsTr" / "synthetic_tr003.nii.gz").unlink()
    assert main(["plan_and_preprocess", "-d", "998", "--verify_dataset_integrity"]) == 1
    err = capsys.readouterr().err
    assert "2 problem(s)" in err and CASE in err and "synthetic_tr003.nii.gz" in err


def test_origin_mismatch_warns_without_flag_and_fails_with_it(synthetic_dataset, nnunet_env, capsys):
    seg, props = read_segmentation(_label(synthetic_dataset))
    props["sitk_stuff"]["origin"] = (10.0, 0.0, 0.0)
    write_segmentation(seg[0], _label(synthetic_dataset), props)
    assert main(["plan_and_preprocess", "-d", "998", "--verify_dataset_integrity"]) == 1
    assert "origin" in capsys.readouterr().err
    with pytest.warns(UserWarning, match="origin"):
        assert main(["plan_and_preprocess", "-d", "998", "--no_pp"]) == 0


def test_nan_intensities_fail_without_the_flag(synthetic_dataset, nnunet_env, capsys):
    expected = _nan_intensity(synthetic_dataset)
    assert main(["plan_and_preprocess", "-d", "998", "-np", "1"]) == 1
    err = capsys.readouterr().err
    assert expected in err and "NaN or inf" in err
    assert not (nnunet_env["preprocessed"] / synthetic_dataset.name).exists()


def test_errors_fail_even_without_the_flag(synthetic_dataset, nnunet_env, capsys):
    _undeclared_label(synthetic_dataset)
    assert main(["plan_and_preprocess", "-d", "998"]) == 1
    assert _label(synthetic_dataset).name in capsys.readouterr().err
    assert not (nnunet_env["preprocessed"] / synthetic_dataset.name).exists()


def test_clean_dataset_passes(synthetic_dataset, nnunet_env, capsys):
    assert main(["plan_and_preprocess", "-d", "998", "--verify_dataset_integrity", "--no_pp"]) == 0
    assert "verification passed" in capsys.readouterr().out
