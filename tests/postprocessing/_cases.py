"""Synthetic cross-validation predictions for the post-processing tests (pure NumPy, shared with the fixture script
that runs nnU-Net v2's ``determine_postprocessing`` on the same arrays).

Label 1 is a cube the predictions find, plus spurious specks away from it: keeping its largest component helps.
Label 2 is a slab the predictions find split into pieces: keeping the largest piece hurts. One case has an empty
reference and an empty prediction (NaN Dice), one an empty reference with spurious label-1 specks (Dice 0 either
way), one a label-2 prediction split into two pieces of equal size (both are kept: ties keep every largest
component), and one a speck touching the cube only at a corner (full connectivity: it stays).
"""

import numpy as np

SHAPE = (8, 10, 10)
GEOMETRY = {"spacing": (1.0, 1.0, 1.0), "origin": (0.0, 0.0, 0.0),
            "direction": (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)}

#: scenario -> (labels of dataset.json, regions_class_order or None)
SCENARIOS = {
    "labels": ({"background": 0, "a": 1, "b": 2}, None),
    "single_label": ({"background": 0, "a": 1}, None),
    "regions": ({"background": 0, "whole": [1, 2], "b": 2}, [1, 2]),
}


def _labels_cases() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    out = {}
    ref, pred = np.zeros(SHAPE, np.uint8), np.zeros(SHAPE, np.uint8)
    ref[1:4, 1:4, 1:4] = 1
    pred[1:4, 1:4, 1:4] = 1
    pred[4, 4, 4] = 1                 # touches the cube's corner (3, 3, 3) only: one component with full connectivity
    pred[6, 0:2, 0] = 1               # spurious speck (2 voxels)
    ref[5:7, 5:9, 5:9] = 2            # slab of 32 voxels
    pred[5:7, 5:9, 5:6] = 2           # found as a piece of 8 ...
    pred[5:7, 5:9, 7:9] = 2           # ... and a piece of 16 (x = 6 missed)
    out["case_0"] = (ref, pred)

    ref, pred = np.zeros(SHAPE, np.uint8), np.zeros(SHAPE, np.uint8)
    ref[2:5, 2:5, 2:5] = 1
    pred[2:5, 2:5, 1:5] = 1           # one column too many (FP 9)
    pred[7, 9, 9] = 1                 # spurious voxel
    pred[0, 9, 0:3] = 1               # spurious speck
    ref[6:8, 0:4, 6:10] = 2
    pred[6:8, 0:4, 6:8] = 2           # two equal pieces of 16: a tie, both kept
    pred[6:8, 5:9, 6:8] = 2
    out["case_1"] = (ref, pred)

    ref, pred = np.zeros(SHAPE, np.uint8), np.zeros(SHAPE, np.uint8)
    out["case_2_empty"] = (ref, pred)  # nothing in either: NaN for both labels

    ref, pred = np.zeros(SHAPE, np.uint8), np.zeros(SHAPE, np.uint8)
    pred[0, 0, 0:2] = 1               # empty reference, two spurious specks: Dice 0 before and after
    pred[7, 9, 8:10] = 1
    out["case_3_empty_ref"] = (ref, pred)

    ref, pred = np.zeros(SHAPE, np.uint8), np.zeros(SHAPE, np.uint8)
    ref[0:3, 5:9, 0:4] = 1
    pred[0:3, 5:9, 0:3] = 1
    pred[6, 2, 9] = 1                 # spurious voxel
    ref[4:8, 0:3, 0:3] = 2
    pred[4:8, 0:3, 0:3] = 2
    pred[4:6, 7:9, 7:9] = 2           # spurious label-2 piece (the only place label 2 gains from keeping the largest)
    out["case_4"] = (ref, pred)
    return out


def cases(scenario: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """name -> (reference, prediction), uint8 arrays in (z, y, x) order, for one scenario of :data:`SCENARIOS`."""
    out = _labels_cases()
    if scenario == "single_label":
        out = {k: (np.where(r == 2, 0, r).astype(np.uint8), np.where(p == 2, 0, p).astype(np.uint8))
               for k, (r, p) in out.items()}
    return out


def dataset_json(scenario: str) -> dict:
    """The dataset.json of a scenario."""
    labels, order = SCENARIOS[scenario]
    d = {"channel_names": {"0": "CT"}, "labels": labels, "numTraining": len(_labels_cases()),
         "file_ending": ".nii.gz"}
    if order is not None:
        d["regions_class_order"] = order
    return d


def plans_json() -> dict:
    """A minimal plans file that nnU-Net's PlansManager and ours accept."""
    return {"dataset_name": "Dataset996_PostProc", "plans_name": "nnUNetPlans", "image_reader_writer": "SimpleITKIO",
            "transpose_forward": [0, 1, 2], "transpose_backward": [0, 1, 2], "configurations": {},
            "label_manager": "LabelManager"}


def _information(configurations: list[str]) -> dict:
    source = "/results/Dataset996_PostProc/" + ("ensembles/ensemble___A___B___0_1" if len(configurations) > 1 else
                                                  "nnUNetTrainer__nnUNetPlans__3d_fullres/crossval_results_folds_0_1")
    return {"folds": [0, 1], "dataset_name_or_id": 996, "best_model_or_ensemble": {
        "postprocessing_file": f"{source}/postprocessing.pkl", "some_plans_file": f"{source}/plans.json",
        "selected_model_or_models": [{"configuration": c, "trainer": "nnUNetTrainer", "plans_identifier": "nnUNetPlans"}
                                     for c in configurations]}}


#: find_best_configuration results (the parts the instructions use) whose inference_instructions.txt nnU-Net wrote
INFERENCE_INFORMATION = {"single": _information(["3d_fullres"]), "ensemble": _information(["2d", "3d_fullres"])}
