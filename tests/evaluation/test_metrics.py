"""Confusion counts, Dice and IoU on hand-made label maps."""

import math

import numpy as np
import pytest

from monai_nnunet.evaluation import case_metrics, confusion_counts, dice_and_iou
from tests.evaluation._cases import IGNORE, cases


def test_hand_counted_case_with_ignore_label():
    ref, pred = cases()["case_a"]
    m = case_metrics(ref, pred, [1, 2], ignore_label=IGNORE)
    assert m[1] == {"Dice": 4 / 7, "IoU": 2 / 5, "FP": 1, "TP": 2, "FN": 2, "TN": 112, "n_pred": 3, "n_ref": 4}
    assert m[2]["TP"] == 8 and m[2]["FP"] == 1 and m[2]["FN"] == 0 and m[2]["TN"] == 108
    assert m[2]["Dice"] == pytest.approx(16 / 17) and m[2]["IoU"] == pytest.approx(8 / 9)


def test_ignored_voxels_count_without_ignore_label():
    ref, pred = cases()["case_a"]
    m = case_metrics(ref, pred, [1])
    assert m[1]["FP"] == 4 and m[1]["TN"] == 120 - 2 - 4 - 2


def test_absent_in_both_is_nan_and_absent_in_reference_is_zero():
    ref, pred = cases()["case_b"]
    m = case_metrics(ref, pred, [1, 2])
    assert math.isnan(m[2]["Dice"]) and math.isnan(m[2]["IoU"])
    assert m[2]["TP"] == m[2]["FP"] == m[2]["FN"] == 0 and m[2]["TN"] == 120
    ref, pred = cases()["case_c"]
    assert case_metrics(ref, pred, [1])[1]["Dice"] == 0.0


def test_regions_count_their_labels_together():
    ref, pred = cases()["case_a"]
    m = case_metrics(ref, pred, [(1, 2), (2,)])
    assert set(m) == {(1, 2), (2,)}
    assert m[(1, 2)]["TP"] == 10 and m[(1, 2)]["n_ref"] == 12 and m[(1, 2)]["n_pred"] == 15
    assert m[(2,)] == {k: v for k, v in case_metrics(ref, pred, [2])[2].items()}


def test_joint_histogram_path_equals_mask_path():
    rng = np.random.default_rng(0)
    ref = rng.integers(0, 5, size=(7, 8, 9))
    pred = rng.integers(0, 6, size=(7, 8, 9))  # a value the reference does not have
    fast = case_metrics(ref, pred, [1, 2, 3, 4], ignore_label=4)
    ignore = ref == 4
    for label in (1, 2, 3, 4):
        tp, fp, fn, tn = confusion_counts(ref, pred, label, ignore)
        assert (fast[label]["TP"], fast[label]["FP"], fast[label]["FN"], fast[label]["TN"]) == (tp, fp, fn, tn)


def test_shapes_must_agree():
    with pytest.raises(ValueError, match="differs"):
        case_metrics(np.zeros((2, 2, 2)), np.zeros((2, 2, 3)), [1])


def test_dice_and_iou():
    assert dice_and_iou(2, 1, 2) == (4 / 7, 2 / 5)
    assert all(math.isnan(v) for v in dice_and_iou(0, 0, 0))
