"""plan_and_preprocess on the real Hippocampus data (read in place through a symlinked nnUNet_raw)."""

import json

import numpy as np
import pytest

from monai_nnunet.cli.main import main
from monai_nnunet.preprocessing.cache import case_ids_in_cache, load_case
from tests.conftest import HIPPOCAMPUS, requires_hippocampus

pytestmark = [requires_hippocampus, pytest.mark.integration]


@pytest.fixture(scope="module")
def hippocampus_preprocessed(tmp_path_factory):
    root = tmp_path_factory.mktemp("hippocampus")
    (root / "raw").mkdir()
    (root / "raw" / HIPPOCAMPUS.name).symlink_to(HIPPOCAMPUS)
    env = {"nnUNet_raw": str(root / "raw"), "nnUNet_preprocessed": str(root / "pre"),
           "nnUNet_results": str(root / "res")}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        assert main(["plan_and_preprocess", "-d", "4", "-np", "2", "--verify_dataset_integrity"]) == 0
    return root / "pre" / "Dataset004_Hippocampus"


def test_plans_match_nnunet(hippocampus_preprocessed):
    plans = json.loads((hippocampus_preprocessed / "nnUNetPlans.json").read_text())
    fullres, two_d = plans["configurations"]["3d_fullres"], plans["configurations"]["2d"]
    assert fullres["patch_size"] == [40, 56, 40]
    assert fullres["batch_size"] == 7
    assert fullres["spacing"] == [1.0, 1.0, 1.0]
    assert fullres["architecture"]["arch_kwargs"]["strides"] == [[1, 1, 1], [2, 2, 2], [2, 2, 2], [2, 2, 2]]
    assert fullres["architecture"]["arch_kwargs"]["features_per_stage"] == [32, 64, 128, 256]
    assert two_d["patch_size"] == [56, 40] and two_d["batch_size"] == 281
    assert two_d["architecture"]["arch_kwargs"]["features_per_stage"] == [32, 64, 128, 256]
    # nnU-Net 2.8.1's foreground statistics for this data (it samples; ours are exact): within 0.1%
    props = plans["foreground_intensity_properties_per_channel"]["0"]
    assert props["mean"] == pytest.approx(20661.59, rel=1e-3)
    assert props["percentile_99_5"] == pytest.approx(273541.6875, rel=1e-3)


def test_splits_cover_every_case(hippocampus_preprocessed):
    splits = json.loads((hippocampus_preprocessed / "splits_final.json").read_text())
    cases = sorted(p.name[:-len(".nii.gz")] for p in (HIPPOCAMPUS / "labelsTr").iterdir())
    assert len(splits) == 5
    vals = [set(s["val"]) for s in splits]
    for i in range(5):
        for j in range(i + 1, 5):
            assert vals[i].isdisjoint(vals[j])
    assert set().union(*vals) == set(cases)
    assert all(set(s["train"]) == set(cases) - set(s["val"]) for s in splits)


def test_cache_is_complete(hippocampus_preprocessed):
    for folder in ("nnUNetPlans_2d", "nnUNetPlans_3d_fullres"):
        ids = case_ids_in_cache(hippocampus_preprocessed / folder)
        assert len(ids) == 200
    data, seg, props = load_case(hippocampus_preprocessed / "nnUNetPlans_3d_fullres", "hippocampus_001")
    assert data.shape == (1, 35, 51, 35) and seg.shape == (1, 35, 51, 35)
    assert float(np.mean(data)) == pytest.approx(0.0, abs=1e-5)
    assert props["sitk_stuff"]["origin"] == (-1.0, -1.0, 1.0)
    assert len(props["class_locations"][1]) == 1324 and len(props["class_locations"][2]) == 1624
    assert len(list((hippocampus_preprocessed / "gt_segmentations").iterdir())) == 200


@pytest.fixture(scope="module")
def hippocampus_trained(hippocampus_preprocessed, tmp_path_factory):
    """The issue's short run on the real data: 2 epochs of 5 iterations, case validation every epoch, on the CPU."""
    results = tmp_path_factory.mktemp("hippocampus_results")
    env = {"nnUNet_raw": str(hippocampus_preprocessed.parent.parent / "raw"),
           "nnUNet_preprocessed": str(hippocampus_preprocessed.parent), "nnUNet_results": str(results)}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        assert main(["train", "4", "3d_fullres", "0", "--epochs", "2", "--iterations_per_epoch", "5",
                     "--val_every", "1", "-device", "cpu"]) == 0
    return results / "Dataset004_Hippocampus" / "nnUNetTrainer__nnUNetPlans__3d_fullres" / "fold_0"


def test_short_training_on_hippocampus(hippocampus_trained, hippocampus_preprocessed):
    import torch

    from monai_nnunet.dataset.io import read_segmentation

    fold = hippocampus_trained
    for name in ("checkpoint_latest.pth", "checkpoint_best.pth", "checkpoint_final.pth", "training_log.txt",
                 "progress.png", "debug.json", "configs/train.yaml", "validation_raw/summary.json"):
        assert (fold / name).is_file(), name
    assert (fold.parent / "plans.json").is_file() and (fold.parent / "dataset.json").is_file()
    final = torch.load(fold / "checkpoint_final.pth", weights_only=True)
    for key in ("network_weights", "optimizer_state", "grad_scaler_state", "epoch", "current_epoch", "init"):
        assert key in final
    assert final["epoch"] == final["current_epoch"] == 2
    log = final["logging"]
    total = 2 * 5
    assert log["lrs"] == pytest.approx([0.01 * (1 - e * 5 / total) ** 0.9 for e in range(2)])
    assert log["lrs_end"] == pytest.approx([0.01 * (1 - (e * 5 + 4) / total) ** 0.9 for e in range(2)])
    assert len(log["dice_per_class"]) == 2 and len(log["dice_per_class"][0]) == 2
    text = (fold / "training_log.txt").read_text()
    assert "validation epoch 1 dice Anterior=" in text and "Posterior=" in text
    val = json.loads((hippocampus_preprocessed / "splits_final.json").read_text())[0]["val"]
    summary = json.loads((fold / "validation_raw" / "summary.json").read_text())
    assert len(summary["metric_per_case"]) == len(val) == 40
    assert set(summary["mean"]) == {"1", "2"}
    case = val[0]
    pred, pred_props = read_segmentation(fold / "validation_raw" / f"{case}.nii.gz")
    ref, ref_props = read_segmentation(HIPPOCAMPUS / "labelsTr" / f"{case}.nii.gz")
    assert pred.shape == ref.shape
    np.testing.assert_allclose(pred_props["affine"], ref_props["affine"], atol=1e-5)


@pytest.mark.parametrize("spacing", ["2", "4"])
def test_coarse_replans_train(hippocampus_preprocessed, tmp_path, monkeypatch, spacing):
    """Re-planned at 2 mm (a 20x28x20 patch) and 4 mm (fewer than three stages, which nnU-Net trains and MONAI's
    DynUNet cannot express: the plain U-Net is then ShallowPlainUNet), the Hippocampus plans train."""
    import shutil

    import torch

    pre = tmp_path / "pre"
    shutil.copytree(hippocampus_preprocessed, pre / "Dataset004_Hippocampus",
                    ignore=shutil.ignore_patterns("nnUNetPlans_*"))
    monkeypatch.setenv("nnUNet_raw", str(hippocampus_preprocessed.parent.parent / "raw"))
    monkeypatch.setenv("nnUNet_preprocessed", str(pre))
    monkeypatch.setenv("nnUNet_results", str(tmp_path / "res"))
    name = f"nnUNetPlans_{spacing}mm"
    assert main(["plan_experiment", "-d", "4", "-overwrite_target_spacing", spacing, spacing, spacing,
                 "-overwrite_plans_name", name]) == 0
    plans = json.loads((pre / "Dataset004_Hippocampus" / f"{name}.json").read_text())
    n_stages = plans["configurations"]["3d_fullres"]["architecture"]["arch_kwargs"]["n_stages"]
    assert main(["preprocess", "-d", "4", "-plans_name", name, "-c", "3d_fullres", "-np", "2"]) == 0
    assert main(["train", "4", "3d_fullres", "0", "-p", name, "--epochs", "1", "--iterations_per_epoch",
                 "2", "--val_every", "1", "-device", "cpu"]) == 0
    fold = tmp_path / "res" / "Dataset004_Hippocampus" / f"nnUNetTrainer__{name}__3d_fullres" / "fold_0"
    final = torch.load(fold / "checkpoint_final.pth", weights_only=True)
    if spacing == "4":
        assert n_stages < 3 and final["network_def"]["_target_"].endswith("ShallowPlainUNet")
    assert (fold / "validation_raw" / "summary.json").is_file()
