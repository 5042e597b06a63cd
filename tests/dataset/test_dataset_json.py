import pytest
from parameterized import parameterized

from monai_nnunet.dataset.dataset_json import DatasetDescription, DatasetJsonError, check_consecutive_labels

BASE = {"channel_names": {"0": "CT"}, "labels": {"background": 0, "liver": 1, "tumor": 2}, "numTraining": 3,
        "file_ending": ".nii.gz"}


def _with(**changes):
    d = dict(BASE)
    for k, v in changes.items():
        if v is None:
            d.pop(k)
        else:
            d[k] = v
    return d


def test_labels_and_heads():
    desc = DatasetDescription(BASE)
    assert desc.all_labels == [0, 1, 2]
    assert desc.foreground_labels == [1, 2]
    assert desc.num_segmentation_heads == 3
    assert not desc.has_regions and not desc.has_ignore_label
    assert desc.label_names() == {0: "background", 1: "liver", 2: "tumor"}


def test_ignore_label_from_labels_or_key():
    desc = DatasetDescription(_with(labels={"background": 0, "tumor": 1, "ignore": 2}))
    assert desc.ignore_label == 2 and desc.all_labels == [0, 1] and desc.expected_label_values == [0, 1, 2]
    # the user document's form: a separate ignore_label key with a high value
    desc = DatasetDescription(_with(labels={"background": 0, "tumor": 1, "ignore": 255}, ignore_label=255))
    assert desc.ignore_label == 255 and desc.num_segmentation_heads == 2


def test_regions():
    desc = DatasetDescription(_with(labels={"background": 0, "whole": [1, 2, 3], "core": [2, 3], "enh": 3},
                                    regions_class_order=[1, 2, 3]))
    assert desc.has_regions
    assert desc.foreground_regions == [(1, 2, 3), (2, 3), (3,)]
    assert desc.num_segmentation_heads == 3


@parameterized.expand([
    ("missing_key", _with(file_ending=None), "missing required key.*file_ending"),
    ("no_background", _with(labels={"liver": 1}), "background"),
    ("background_not_zero", _with(labels={"background": 1, "x": 2}), "background label must be 0"),
    ("ignore_not_highest", _with(labels={"background": 0, "ignore": 1, "tumor": 2}), "ignore label.*highest"),
    ("ignore_disagrees", _with(labels={"background": 0, "tumor": 1, "ignore": 2}, ignore_label=3), "must agree"),
    ("regions_without_order", _with(labels={"background": 0, "whole": [1, 2]}), "regions_class_order"),
    ("bad_file_ending", _with(file_ending="nii.gz"), "start with a dot"),
    ("bad_channels", _with(channel_names={"1": "CT"}), "0..N-1"),
    ("bad_label_value", _with(labels={"background": 0, "x": "one"}), "integer"),
])
def test_invalid_dataset_json(_, raw, message):
    with pytest.raises(DatasetJsonError, match=message):
        DatasetDescription(raw, source="/data/dataset.json")


def test_error_names_the_file():
    with pytest.raises(DatasetJsonError, match="/data/dataset.json"):
        DatasetDescription(_with(numTraining=None), source="/data/dataset.json")


def test_consecutive_labels():
    assert check_consecutive_labels(DatasetDescription(BASE)) == []
    assert check_consecutive_labels(DatasetDescription(_with(labels={"background": 0, "a": 1, "b": 3}))) == [3]
