"""Export: logits in the preprocessed space back to the input's geometry (resample, un-crop, un-transpose, write)."""


import numpy as np
import pytest

from monai_nnunet.utils.properties import load_properties
from monai_nnunet.dataset.dataset_json import DatasetDescription
from monai_nnunet.dataset.io import read_segmentation
from monai_nnunet.inference import (
    convert_logits_to_original_geometry,
    export_prediction,
    logits_to_probabilities,
    probabilities_to_segmentation,
    uncrop,
)
from monai_nnunet.planning.plans import PlansManager

LABELS = DatasetDescription({"channel_names": {"0": "MRI"}, "labels": {"background": 0, "a": 1, "b": 2},
                             "numTraining": 1, "file_ending": ".nii.gz"})
REGIONS = DatasetDescription({"channel_names": {"0": "MRI"},
                              "labels": {"background": 0, "whole": [1, 2], "core": 2},
                              "regions_class_order": [1, 2], "numTraining": 1, "file_ending": ".nii.gz"})


def plans(transpose_forward=(0, 1, 2), spacing=(1.0, 1.0, 1.0)) -> PlansManager:
    backward = [int(np.argsort(transpose_forward)[i]) for i in range(3)]
    cfg = {"data_identifier": "x", "batch_size": 2, "patch_size": [8, 8, 8], "spacing": list(spacing),
           "normalization_schemes": ["ZScoreNormalization"], "use_mask_for_norm": [False],
           "architecture": {"network_class_name": "x", "arch_kwargs": {}},
           "resampling_fn_probabilities_kwargs": {"is_seg": False, "order": 1, "order_z": 0,
                                                  "force_separate_z": None}}
    return PlansManager({"dataset_name": "Dataset001_X", "plans_name": "nnUNetPlans",
                         "transpose_forward": list(transpose_forward), "transpose_backward": backward,
                         "configurations": {"3d_fullres": cfg}})


def one_hot_logits(seg: np.ndarray, k: int) -> np.ndarray:
    return (np.eye(k, dtype=np.float32)[seg].transpose(3, 0, 1, 2) * 8.0 - 4.0)


def test_softmax_and_argmax():
    logits = np.random.default_rng(0).normal(size=(3, 4, 5, 6)).astype(np.float32)
    probs = logits_to_probabilities(logits, LABELS)
    assert np.allclose(probs.sum(0), 1, atol=1e-6)
    assert np.array_equal(probabilities_to_segmentation(probs, LABELS), logits.argmax(0))
    assert probabilities_to_segmentation(probs, LABELS).dtype == np.uint8


def test_regions_paint_in_class_order():
    probs = np.zeros((2, 1, 1, 4), dtype=np.float32)
    probs[0, 0, 0] = [0.2, 0.9, 0.9, 0.6]  # whole tumour region
    probs[1, 0, 0] = [0.9, 0.1, 0.8, 0.4]  # core region
    seg = probabilities_to_segmentation(probs, REGIONS)
    # core painted after whole, wherever its probability exceeds 0.5, even outside "whole"
    assert seg[0, 0].tolist() == [2, 1, 2, 1]
    logits = np.log(probs / (1 - probs + 1e-12) + 1e-12)
    assert np.allclose(logits_to_probabilities(logits, REGIONS), probs, atol=1e-4)


def test_channel_count_is_checked():
    with pytest.raises(ValueError, match="expected 3 channels"):
        probabilities_to_segmentation(np.zeros((2, 2, 2, 2)), LABELS)


def test_uncrop_fills_per_channel():
    crop = np.full((2, 2, 2, 2), 5.0, dtype=np.float32)
    out = uncrop(crop, [[1, 3], [0, 2], [2, 4]], (4, 3, 5), background=np.array([1.0, 0.0]))
    assert out.shape == (2, 4, 3, 5)
    assert out[0, 0, 0, 0] == 1 and out[1, 0, 0, 0] == 0 and np.all(out[:, 1:3, 0:2, 2:4] == 5)


def test_transpose_and_crop_are_undone_exactly():
    rng = np.random.default_rng(1)
    original = np.zeros((6, 7, 9), dtype=np.uint8)
    original[1:5, 2:7, 3:8] = rng.integers(0, 3, size=(4, 5, 5))
    forward = (2, 0, 1)
    transposed = original.transpose(forward)  # (9, 6, 7)
    bbox = [[3, 8], [1, 5], [2, 7]]
    cropped = transposed[3:8, 1:5, 2:7]
    props = {"spacing_transposed": [1.0, 1.0, 1.0], "shape_before_cropping": list(transposed.shape),
             "bbox_used_for_cropping": bbox, "shape_after_cropping_and_before_resampling": list(cropped.shape),
             "target_spacing": [1.0, 1.0, 1.0]}
    seg, probs = convert_logits_to_original_geometry(one_hot_logits(cropped, 3), props, plans(forward), "3d_fullres",
                                                     LABELS, return_probabilities=True)
    assert np.array_equal(seg, original)
    assert probs.shape == (3, 6, 7, 9)
    assert np.allclose(probs.sum(0), 1, atol=1e-5)
    assert np.all(probs[0][original == 0] > 0.5)


def test_resampling_back_to_the_original_spacing():
    """Logits at 2 mm are resampled to the 1 mm original grid (shape taken from the properties)."""
    zz, yy, xx = np.mgrid[:20, :22, :18]
    original = (((zz - 10) ** 2 + (yy - 11) ** 2 + (xx - 9) ** 2) < 36).astype(np.uint8)
    coarse = original[::2, ::2, ::2]
    props = {"spacing_transposed": [1.0, 1.0, 1.0], "shape_before_cropping": [20, 22, 18],
             "bbox_used_for_cropping": [[0, 20], [0, 22], [0, 18]],
             "shape_after_cropping_and_before_resampling": [20, 22, 18], "target_spacing": [2.0, 2.0, 2.0]}
    seg = convert_logits_to_original_geometry(one_hot_logits(coarse, 2)[:2], props, plans(spacing=(2, 2, 2)),
                                              "3d_fullres", DatasetDescription({**LABELS.raw, "labels": {
                                                  "background": 0, "a": 1}}))
    assert seg.shape == (20, 22, 18)
    dice = 2 * np.sum((seg == 1) & (original == 1)) / (np.sum(seg == 1) + np.sum(original == 1))
    assert dice > 0.85


def test_export_writes_the_input_geometry_and_probabilities(tmp_path):
    seg_pre = np.zeros((5, 6, 7), dtype=np.int64)
    seg_pre[1:4, 2:5, 1:6] = 1
    seg_pre[2, 3, 2:4] = 2
    geometry = {"spacing": (1.3, 0.7, 2.0), "origin": (10.0, -5.0, 3.5),
                "direction": (0.0, 1.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0)}
    props = {"spacing": [2.0, 0.7, 1.3], "spacing_transposed": [2.0, 0.7, 1.3], "sitk_stuff": geometry,
             "shape_before_cropping": [5, 6, 7], "bbox_used_for_cropping": [[0, 5], [0, 6], [0, 7]],
             "shape_after_cropping_and_before_resampling": [5, 6, 7], "target_spacing": [2.0, 0.7, 1.3],
             "class_locations": {1: np.zeros((3, 4))}}
    out = export_prediction(one_hot_logits(seg_pre, 3), props, plans(), "3d_fullres", LABELS.raw,
                            tmp_path / "case_1", save_probabilities=True)
    assert out == tmp_path / "case_1.nii.gz"
    written, wprops = read_segmentation(out)
    assert np.array_equal(written[0], seg_pre)
    assert np.allclose(wprops["sitk_stuff"]["spacing"], geometry["spacing"])
    assert np.allclose(wprops["sitk_stuff"]["origin"], geometry["origin"])
    assert np.allclose(wprops["sitk_stuff"]["direction"], geometry["direction"])
    with np.load(tmp_path / "case_1.npz") as f:
        probs = f["probabilities"]
    assert probs.shape == (3, 5, 6, 7) and np.allclose(probs.sum(0), 1, atol=1e-5)
    saved = load_properties(tmp_path / "case_1.json")
    assert saved["sitk_stuff"] == geometry and "class_locations" not in saved
