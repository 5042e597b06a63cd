"""Per-case properties are JSON: they round-trip exactly, and a pickle planted in a cache or a prediction folder is
refused with a message, never loaded (its payload does not run)."""

import pickle
import shutil

import numpy as np
import pytest

from monai_nnunet.cli.main import main
from monai_nnunet.evaluation.ensemble import merge_probability_files
from monai_nnunet.preprocessing.cache import CacheError, load_case
from monai_nnunet.utils.properties import load_properties, save_properties


class _Payload:
    """Unpickling this creates a marker file (what a malicious pickle would do with os.system)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_round_trip_of_arrays_tuples_and_label_keys(tmp_path):
    properties = {
        "spacing": [1.0, 0.5, 0.5], "shape_before_cropping": (20, 24, 22),
        "bbox_used_for_cropping": [[0, 20], [1, 23], [0, 22]],
        "class_locations": {1: np.array([[0, 1, 2, 3]], dtype=np.int64), (1, 2): np.zeros((0, 4), np.int64)},
        "sitk_stuff": {"spacing": (0.5, 0.5, 1.0), "origin": (0.0, 0.0, 0.0), "direction": tuple(np.eye(3).ravel())},
        "mean": np.float32(2.5),
    }
    loaded = load_properties(save_properties(tmp_path / "case.json", properties))
    assert loaded["shape_before_cropping"] == (20, 24, 22) and loaded["sitk_stuff"]["origin"] == (0.0, 0.0, 0.0)
    np.testing.assert_array_equal(loaded["class_locations"][1], properties["class_locations"][1])
    assert loaded["class_locations"][1].dtype == np.int64
    assert loaded["class_locations"][(1, 2)].shape == (0, 4)
    assert loaded["mean"] == 2.5


def test_pickle_in_the_cache_is_refused_and_never_run(run_env, tmp_path, monkeypatch, capsys):
    pre = tmp_path / "pre"
    shutil.copytree(run_env["preprocessed"] / "Dataset998_Synthetic", pre / "Dataset998_Synthetic")
    cache = pre / "Dataset998_Synthetic" / "nnUNetPlans_3d_fullres"
    marker = tmp_path / "payload_ran"
    for props in cache.glob("*.json"):
        with open(props.with_suffix(".pkl"), "wb") as f:
            pickle.dump(_Payload(marker), f)
        props.unlink()
    with pytest.raises(CacheError, match="is a pickle.*re-run nnUNetv2_preprocess"):
        load_case(cache, "synthetic_tr000")
    monkeypatch.setenv("nnUNet_preprocessed", str(pre))
    assert main(["train", "998", "3d_fullres", "0", "-device", "cpu", "--epochs", "1",
                 "--iterations_per_epoch", "1"]) == 1
    assert "pickles, which could run code when loaded); re-run nnUNetv2_preprocess" in capsys.readouterr().err
    assert not marker.exists()


def test_ensemble_refuses_a_pickle_beside_the_probabilities(tmp_path):
    from monai_nnunet.dataset.dataset_json import DatasetDescription

    marker = tmp_path / "payload_ran"
    np.savez(tmp_path / "case.npz", probabilities=np.full((2, 2, 2, 2), 0.5, np.float32))
    with open(tmp_path / "case.pkl", "wb") as f:
        pickle.dump(_Payload(marker), f)
    dataset = DatasetDescription({"channel_names": {"0": "CT"}, "labels": {"background": 0, "a": 1},
                                  "numTraining": 1, "file_ending": ".nii.gz"})
    with pytest.raises(FileNotFoundError, match="is a pickle.*save_probabilities"):
        merge_probability_files([tmp_path / "case.npz", tmp_path / "case.npz"], tmp_path / "out", dataset)
    assert not marker.exists()
