"""The cascade end to end: 3d_lowres folds write predicted_next_stage, 3d_cascade_fullres trains on the one-hot
previous-stage channels (refused until they exist), nnUNetv2_predict runs both stages, find_best_configuration reads
the cascade, export-bundle refuses it.

The synthetic dataset is the smallest for which the planner (nnU-Net's rules) plans 3d_lowres quickly: 32^3 voxels
with a 0.015 GB memory target (fullres patch 16^3 covers < 25% of the median image; lowres at 1.27 mm). With the
default 8 GB target 3d_lowres needs images of about 250^3 voxels. Four cases in a two-fold split, so two lowres folds
predict every case.
"""

import json
import os

import numpy as np
import pytest
import torch

from monai_nnunet.cli.main import main
from monai_nnunet.data.previous_stage import load_previous_stage_seg
from monai_nnunet.dataset.io import read_segmentation
from monai_nnunet.dataset.synthetic import make_synthetic_dataset
from monai_nnunet.evaluation.find_best_configuration import find_best_configuration
from monai_nnunet.planning import plan_and_preprocess
from monai_nnunet.preprocessing.cache import load_case
from monai_nnunet.training.execution import run_training

pytestmark = pytest.mark.slow

DATASET = "Dataset997_Cascade"
FAST = dict(device="cpu", num_epochs=1, iterations_per_epoch=1, val_every=1, val_iterations=1, mirror_axes=[])
PREDICT = ["-d", "997", "-f", "0", "-device", "cpu", "-npp", "0", "-nps", "0", "--disable_tta",
           "--disable_progress_bar"]


@pytest.fixture(scope="module")
def cascade_env(tmp_path_factory):
    root = tmp_path_factory.mktemp("cascade")
    env = {name: root / f"nnUNet_{name}" for name in ("raw", "preprocessed", "results")}
    with pytest.MonkeyPatch.context() as mp:
        for name, folder in env.items():
            folder.mkdir()
            mp.setenv(f"nnUNet_{name}", str(folder))
        mp.setenv("nnUNet_n_proc_DA", "0")
        mp.setenv("nnUNet_def_n_proc", "1")
        raw = make_synthetic_dataset(env["raw"], dataset_id=997, name="Cascade", num_cases=4, shape=(32, 32, 32),
                                     num_test_cases=1, seed=3)
        ids = [f"cascade_tr{i:03d}" for i in range(4)]
        (raw / "splits_final.json").write_text(json.dumps([{"train": ids[2:], "val": ids[:2]},
                                                           {"train": ids[:2], "val": ids[2:]}]))
        plan_and_preprocess([997], configurations=["3d_fullres", "3d_lowres"], num_processes=1,
                            gpu_memory_target=0.015)
        yield {**env, "dataset_raw": raw, "ids": ids, "mp": mp}


def _results(env, configuration):
    return env["results"] / DATASET / f"nnUNetTrainer__nnUNetPlans__{configuration}"


def test_cascade_end_to_end(cascade_env, capsys, tmp_path):
    env = cascade_env
    plans = json.loads((env["preprocessed"] / DATASET / "nnUNetPlans.json").read_text())["configurations"]
    assert plans["3d_lowres"]["next_stage"] == "3d_cascade_fullres"
    assert plans["3d_cascade_fullres"] == {"inherits_from": "3d_fullres", "previous_stage": "3d_lowres"}

    # refused before anything trains or is written, with the command that makes the missing predictions
    assert main(["train", "997", "3d_cascade_fullres", "0", "-device", "cpu"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nnUNetv2_train 997 3d_lowres 0; nnUNetv2_train 997 3d_lowres 1" in err
    assert not _results(env, "3d_cascade_fullres").exists()

    run_training(997, "3d_lowres", 0, **FAST)
    next_stage = _results(env, "3d_lowres") / "predicted_next_stage" / "3d_cascade_fullres"
    assert sorted(p.name for p in next_stage.iterdir()) == ["cascade_tr000.npz", "cascade_tr001.npz"]
    fullres_cache = env["preprocessed"] / DATASET / "nnUNetPlans_3d_fullres"
    lowres_cache = env["preprocessed"] / DATASET / "nnUNetPlans_3d_lowres"
    for case in ("cascade_tr000", "cascade_tr001"):
        with np.load(next_stage / f"{case}.npz") as f:
            seg = f["seg"]
        # in the next stage's geometry (not the lowres one), labels of the dataset
        assert seg.shape == load_case(fullres_cache, case)[0].shape[1:] != load_case(lowres_cache, case)[0].shape[1:]
        assert seg.dtype == np.uint8 and set(np.unique(seg)) <= {0, 1, 2}

    assert main(["train", "997", "3d_cascade_fullres", "0", "-device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert "2 of its 4 case(s)" in err and "nnUNetv2_train 997 3d_lowres 1" in err and "3d_lowres 0" not in err

    run_training(997, "3d_lowres", 1, **FAST)
    trainer = run_training(997, "3d_cascade_fullres", 0, **FAST)
    fold = _results(env, "3d_cascade_fullres") / "fold_0"
    # the network takes the image channel and one channel per foreground label
    checkpoint = torch.load(fold / "checkpoint_final.pth", weights_only=True)
    assert checkpoint["network_def"]["input_channels"] == 3
    first_conv = next(v for k, v in checkpoint["network_weights"].items() if v.ndim == 5)
    assert first_conv.shape[1] == 3
    text = (fold / "configs" / "train.yaml").read_text()
    assert "monai_nnunet.transforms.RandBinaryOperatord" in text and "RandRemoveConnectedComponentd" in text
    assert str(next_stage) in text
    # the one-hot channels reach the batch: binary, and equal to the lowres segmentation where unaugmented
    parser = trainer.workflow.parser
    batch = parser.get_parsed_content("validate#patch_dataset").make_batch(np.random.RandomState(0))
    assert batch["image"].shape[:2] == (2, 3)
    assert set(torch.unique(batch["image"][:, 1:]).tolist()) <= {0.0, 1.0}
    case = parser.get_parsed_content("validate#dataset")[0]
    assert case["image"].shape[0] == 3 and "seg_prev" not in case
    expected = load_previous_stage_seg(next_stage, case["case_id"])[0]
    torch.testing.assert_close(case["image"][1], torch.as_tensor(expected == 1, dtype=torch.float32))
    assert json.loads((fold / "validation_raw" / "summary.json").read_text())["metric_per_case"]

    # prediction: with the lowres predictions given, and without (the lowres model runs first): the same result
    images = env["dataset_raw"] / "imagesTs"
    lowres_out, given, auto = tmp_path / "lowres", tmp_path / "given", tmp_path / "auto"
    assert main(["predict", "-i", str(images), "-o", str(lowres_out), "-c", "3d_lowres", *PREDICT]) == 0
    assert main(["predict", "-i", str(images), "-o", str(given), "-c", "3d_cascade_fullres",
                 "-prev_stage_predictions", str(lowres_out), *PREDICT]) == 0
    capsys.readouterr()
    assert main(["predict", "-i", str(images), "-o", str(auto), "-c", "3d_cascade_fullres", *PREDICT]) == 0
    assert "predicted with nnUNetTrainer__nnUNetPlans__3d_lowres (the previous stage) first" in capsys.readouterr().out
    a, _ = read_segmentation(given / "cascade_ts000.nii.gz")
    b, _ = read_segmentation(auto / "cascade_ts000.nii.gz")
    ref, _ = read_segmentation(env["dataset_raw"] / "labelsTs" / "cascade_ts000.nii.gz")
    assert a.shape == ref.shape
    np.testing.assert_array_equal(a, b)
    # a cascade stage without previous-stage files for a case is refused
    os.remove(lowres_out / "cascade_ts000.nii.gz")
    assert main(["predict", "-i", str(images), "-o", str(tmp_path / "x"), "-c", "3d_cascade_fullres",
                 "-prev_stage_predictions", str(lowres_out), *PREDICT]) == 1
    assert "1 case(s) have no 3d_lowres prediction" in capsys.readouterr().err

    # find_best_configuration reads the cascade's cross-validation results
    info = find_best_configuration(997, ["3d_lowres", "3d_cascade_fullres"], folds=(0,), allow_ensembling=False,
                                   num_processes=1)
    assert "nnUNetTrainer__nnUNetPlans__3d_cascade_fullres" in info["all_results"]
    assert {"plans": "nnUNetPlans", "configuration": "3d_cascade_fullres", "trainer": "nnUNetTrainer"} in \
        info["considered_models"]

    # export-bundle refuses a cascade stage in one line
    assert main(["export-bundle", "-d", "997", "-c", "3d_cascade_fullres", "-f", "0", "-o",
                 str(tmp_path / "m.zip")]) == 1
    assert "is a cascade stage" in capsys.readouterr().err
