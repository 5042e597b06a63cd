"""Ensembling saved probabilities and choosing the best configuration, on hand-made cross-validation outputs."""

import json

import numpy as np
import pytest

from monai_nnunet.utils.properties import save_properties
from monai_nnunet.cli.main import main
from monai_nnunet.dataset.io import read_segmentation, write_segmentation
from monai_nnunet.evaluation import (
    average_probabilities,
    ensemble_folders,
    find_best_configuration,
    load_summary_json,
    validation_folder,
)

NAME = "Dataset997_Fake"
GEOMETRY = {"spacing": (1.0, 1.0, 1.0), "origin": (0.0, 0.0, 0.0),
            "direction": (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)}
DATASET_JSON = {"channel_names": {"0": "CT"}, "labels": {"background": 0, "a": 1, "b": 2}, "numTraining": 4,
                "file_ending": ".nii.gz"}
FOLDS = {0: ["case_0", "case_1"], 1: ["case_2", "case_3"]}


def reference(i: int) -> np.ndarray:
    seg = np.zeros((6, 6, 6), np.uint8)
    seg[1:3, 1:4, 1:4] = 1
    seg[4:6, 3:6, 0:2 + i % 2] = 2
    return seg


def one_hot(seg: np.ndarray, confidence: float) -> np.ndarray:
    probs = np.full((3, *seg.shape), (1 - confidence) / 2, np.float32)
    for c in range(3):
        probs[c][seg == c] = confidence
    return probs


def write_prediction(folder, case, probs):
    folder.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(folder / f"{case}.npz", probabilities=probs)
    save_properties(folder / f"{case}.json", {"sitk_stuff": GEOMETRY})
    write_segmentation(probs.argmax(0).astype(np.uint8), folder / f"{case}.nii.gz", {"sitk_stuff": GEOMETRY})


def misses_label_2(seg, confidence):
    """Probabilities that call label 2 background with the given confidence."""
    probs = one_hot(seg, 0.9)
    region = seg == 2
    probs[0][region], probs[2][region], probs[1][region] = confidence, 1 - confidence - 0.05, 0.05
    return probs


@pytest.fixture
def fake_results(nnunet_env):
    raw = nnunet_env["raw"] / NAME
    for i in range(4):
        write_segmentation(reference(i), raw / "labelsTr" / f"case_{i}.nii.gz", {"sitk_stuff": GEOMETRY})
    (raw / "dataset.json").write_text(json.dumps(DATASET_JSON))
    plans = {"dataset_name": NAME, "plans_name": "nnUNetPlans", "transpose_forward": [0, 1, 2],
             "transpose_backward": [0, 1, 2], "configurations": {"2d": {}, "3d_fullres": {}}}
    pre = nnunet_env["preprocessed"] / NAME
    pre.mkdir(parents=True)
    (pre / "nnUNetPlans.json").write_text(json.dumps(plans))
    models = {}
    for cfg in ("2d", "3d_fullres"):
        folder = nnunet_env["results"] / NAME / f"nnUNetTrainer__nnUNetPlans__{cfg}"
        folder.mkdir(parents=True)
        (folder / "plans.json").write_text(json.dumps(plans))
        (folder / "dataset.json").write_text(json.dumps(DATASET_JSON))
        models[cfg] = folder
    return nnunet_env, models


def fill(models, predictions):
    """predictions: cfg -> case index -> probabilities."""
    for cfg, per_case in predictions.items():
        for fold, cases in FOLDS.items():
            for case in cases:
                write_prediction(models[cfg] / f"fold_{fold}" / "validation_raw", case, per_case[int(case[-1])])


def test_single_model_wins_and_instructions_name_it(fake_results, capsys):
    env, models = fake_results
    fill(models, {"3d_fullres": {i: one_hot(reference(i), 0.9) for i in range(4)},
                  "2d": {i: misses_label_2(reference(i), 0.9) for i in range(4)}})
    info = find_best_configuration(997, ["2d", "3d_fullres"], folds=(0, 1), num_processes=1)
    results = env["results"] / NAME
    assert info["all_results"]["nnUNetTrainer__nnUNetPlans__3d_fullres"] == pytest.approx(1.0)
    assert info["all_results"]["nnUNetTrainer__nnUNetPlans__2d"] == pytest.approx(0.5)
    ensemble = "ensemble___nnUNetTrainer__nnUNetPlans__2d___nnUNetTrainer__nnUNetPlans__3d_fullres___0_1"
    assert ensemble in info["all_results"]
    assert info["best_model_or_ensemble"]["selected_model_or_models"] == [
        {"configuration": "3d_fullres", "trainer": "nnUNetTrainer", "plans_identifier": "nnUNetPlans"}]
    merged = models["3d_fullres"] / "crossval_results_folds_0_1"
    assert sorted(p.name for p in merged.glob("*.nii.gz")) == [f"case_{i}.nii.gz" for i in range(4)]
    assert load_summary_json(merged / "summary.json")["foreground_mean"]["Dice"] == pytest.approx(1.0)
    saved = json.loads((results / "inference_information.json").read_text())
    assert saved["best_model_or_ensemble"]["result_on_crossval_pre_pp"] == pytest.approx(1.0)
    text = (results / "inference_instructions.txt").read_text()
    assert ("nnUNetv2_predict -d 997 -i INPUT_FOLDER -o OUTPUT_FOLDER -f 0 1 -tr nnUNetTrainer -c 3d_fullres "
            "-p nnUNetPlans") in text
    assert "nnUNetv2_ensemble" not in text
    assert "*Best*: nnUNetTrainer__nnUNetPlans__3d_fullres" in capsys.readouterr().out


def test_ensemble_wins_when_models_err_on_different_cases(fake_results):
    env, models = fake_results
    # each model misses label 2, unsure (0.55), in the cases the other gets right with confidence 0.9
    fill(models, {"3d_fullres": {i: misses_label_2(reference(i), 0.55) if i < 2 else one_hot(reference(i), 0.9)
                                 for i in range(4)},
                  "2d": {i: one_hot(reference(i), 0.9) if i < 2 else misses_label_2(reference(i), 0.55)
                         for i in range(4)}})
    info = find_best_configuration(NAME, ["2d", "3d_fullres"], folds=[0, 1], num_processes=1)
    best = info["best_model_or_ensemble"]
    assert best["result_on_crossval_pre_pp"] == pytest.approx(1.0)
    assert [m["configuration"] for m in best["selected_model_or_models"]] == ["2d", "3d_fullres"]
    text = (env["results"] / NAME / "inference_instructions.txt").read_text()
    assert "-c 2d -p nnUNetPlans --save_probabilities" in text and "-c 3d_fullres" in text
    assert "nnUNetv2_ensemble -i OUTPUT_FOLDER_MODEL_1 OUTPUT_FOLDER_MODEL_2 -o OUTPUT_FOLDER" in text
    ensemble = env["results"] / NAME / "ensembles" / (
        "ensemble___nnUNetTrainer__nnUNetPlans__2d___nnUNetTrainer__nnUNetPlans__3d_fullres___0_1")
    assert (ensemble / "summary.json").is_file() and (ensemble / "plans.json").is_file()


def test_untrained_candidate_lists_what_is_trained(fake_results):
    env, models = fake_results
    fill(models, {"3d_fullres": {i: one_hot(reference(i), 0.9) for i in range(4)},
                  "2d": {i: one_hot(reference(i), 0.9) for i in range(4)}})
    trained = r"nnUNetTrainer__nnUNetPlans__2d, nnUNetTrainer__nnUNetPlans__3d_fullres"
    with pytest.raises(FileNotFoundError, match=r"kiunet__nnUNetPlans__3d_fullres does not exist.*" + trained):
        find_best_configuration(997, ["3d_fullres"], trainers=["kiunet"], folds=(0, 1))
    # configurations the plans do not define are skipped, as nnU-Net does
    info = find_best_configuration(997, ["3d_fullres", "3d_lowres"], folds=(0, 1), num_processes=1)
    assert list(info["all_results"]) == ["nnUNetTrainer__nnUNetPlans__3d_fullres"]
    with pytest.raises(FileNotFoundError, match="fold 2 .*has not been trained"):
        find_best_configuration(997, ["3d_fullres"], folds=(0, 1, 2), num_processes=1)


def test_ensembling_needs_npz(fake_results):
    env, models = fake_results
    fill(models, {"3d_fullres": {i: one_hot(reference(i), 0.9) for i in range(4)},
                  "2d": {i: one_hot(reference(i), 0.9) for i in range(4)}})
    for f in (models["2d"] / "fold_1" / "validation_raw").glob("*.npz"):
        f.unlink()
    with pytest.raises(FileNotFoundError, match=r"fold_1/validation_raw holds no \.npz.*--npz"):
        find_best_configuration(997, ["2d", "3d_fullres"], folds=(0, 1), num_processes=1)
    info = find_best_configuration(997, ["2d", "3d_fullres"], folds=(0, 1), allow_ensembling=False, num_processes=1)
    assert len(info["all_results"]) == 2


def test_nnunet_validation_folder_name_is_accepted(fake_results):
    env, models = fake_results
    folder = models["2d"] / "fold_0" / "validation"
    write_prediction(folder, "case_0", one_hot(reference(0), 0.9))
    assert validation_folder(models["2d"], 0) == folder


def test_ensemble_folders_averages_probabilities(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    seg = reference(0)
    pa, pb = one_hot(seg, 0.9), misses_label_2(seg, 0.55)
    for folder, probs in ((a, pa), (b, pb)):
        write_prediction(folder, "case_0", probs)
        (folder / "dataset.json").write_text(json.dumps(DATASET_JSON))
    written = ensemble_folders([a, b], tmp_path / "out", save_merged_probabilities=True, num_processes=1)
    assert written == [tmp_path / "out" / "case_0.nii.gz"]
    merged, props = read_segmentation(written[0])
    assert np.array_equal(merged[0], ((pa + pb) / 2).argmax(0))
    assert np.array_equal(merged[0], seg)  # the confident model outvotes the unsure one
    assert np.allclose(average_probabilities([a / "case_0.npz", b / "case_0.npz"]), (pa + pb) / 2)
    with np.load(tmp_path / "out" / "case_0.npz") as f:
        assert np.allclose(f["probabilities"], (pa + pb) / 2)
    # the command line
    assert main(["ensemble", "-i", str(a), str(b), "-o", str(tmp_path / "cli"), "-np", "1"]) == 0
    assert (tmp_path / "cli" / "case_0.nii.gz").is_file() and (tmp_path / "cli" / "dataset.json").is_file()
    # folders with different cases
    write_prediction(a, "case_1", pa)
    assert main(["ensemble", "-i", str(a), str(b), "-o", str(tmp_path / "bad")]) == 1
    assert "lacks the probabilities of ['case_1.npz']" in capsys.readouterr().err
