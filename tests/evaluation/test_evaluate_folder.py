"""Folder evaluation: nnU-Net v2's summary.json, compared with nnU-Net's own output on the same label maps."""

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from monai_nnunet.cli.main import main
from monai_nnunet.dataset.io import write_segmentation
from monai_nnunet.evaluation import compute_metrics_on_folder, evaluate_folder, load_summary_json
from tests.conftest import REPO_ROOT
from tests.evaluation._cases import IGNORE, LABELS, REGIONS, cases

FIXTURES = Path(__file__).resolve().parent / "fixtures"
GEOMETRY = {"sitk_stuff": {"spacing": (1.0, 1.0, 1.0), "origin": (0.0, 0.0, 0.0),
                           "direction": (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)}}


@pytest.fixture
def folders(tmp_path):
    ref, pred = tmp_path / "ref", tmp_path / "pred"
    for name, (r, p) in cases().items():
        write_segmentation(r, ref / f"{name}.nii.gz", GEOMETRY)
        write_segmentation(p, pred / f"{name}.nii.gz", GEOMETRY)
    return ref, pred


def dataset_json(tmp_path, regions=False):
    labels = {"background": 0, "a": [1, 2], "b": 2} if regions else {"background": 0, "a": 1, "b": 2, "ignore": IGNORE}
    d = {"channel_names": {"0": "MRI"}, "labels": labels, "numTraining": 3, "file_ending": ".nii.gz"}
    if regions:
        d["regions_class_order"] = [1, 2]
    path = tmp_path / ("dataset_regions.json" if regions else "dataset.json")
    path.write_text(json.dumps(d))
    return path


def same(a, b):
    if isinstance(a, float) and math.isnan(a):
        return b is None or (isinstance(b, float) and math.isnan(b))
    return a == pytest.approx(b)


def assert_matches_nnunet(ours_file, fixture):
    ours = json.loads(Path(ours_file).read_text().replace("NaN", "null"))
    theirs = json.loads((FIXTURES / fixture).read_text())
    assert set(ours) == set(theirs) == {"foreground_mean", "mean", "metric_per_case"}
    assert ours["mean"].keys() == theirs["mean"].keys()
    for key in theirs["mean"]:
        assert ours["mean"][key].keys() == theirs["mean"][key].keys()
        for m, v in theirs["mean"][key].items():
            assert same(v if v is not None else float("nan"), ours["mean"][key][m]), (key, m)
    for m, v in theirs["foreground_mean"].items():
        assert same(v if v is not None else float("nan"), ours["foreground_mean"][m]), m
    assert len(ours["metric_per_case"]) == len(theirs["metric_per_case"])
    for o, t in zip(ours["metric_per_case"], theirs["metric_per_case"]):
        assert set(o) == set(t) == {"metrics", "prediction_file", "reference_file"}
        assert Path(o["prediction_file"]).name == t["prediction_file"]
        assert Path(o["reference_file"]).name == t["reference_file"]
        assert o["metrics"].keys() == t["metrics"].keys()
        for key in t["metrics"]:
            for m, v in t["metrics"][key].items():
                mine = o["metrics"][key][m]
                assert (mine is None) if v is None else mine == pytest.approx(v), (o["prediction_file"], key, m)


def test_labels_with_ignore_label_match_nnunet(folders, tmp_path):
    ref, pred = folders
    summary = evaluate_folder(ref, pred, dataset_json(tmp_path), num_processes=1)
    assert (pred / "summary.json").is_file()
    assert_matches_nnunet(pred / "summary.json", "nnunet_summary_labels.json")
    assert summary["mean"][1]["Dice"] == pytest.approx(np.mean([4 / 7, 4 / 5, 0.0]))
    assert summary["mean"][2]["Dice"] == pytest.approx(np.mean([16 / 17, 2 * 5 / (5 + 6)]))  # NaN of case_b skipped
    assert summary["foreground_mean"]["Dice"] == pytest.approx((summary["mean"][1]["Dice"] +
                                                                summary["mean"][2]["Dice"]) / 2)


def test_regions_match_nnunet(folders, tmp_path):
    ref, pred = folders
    out = tmp_path / "regions.json"
    summary = evaluate_folder(ref, pred, dataset_json(tmp_path, regions=True), out, num_processes=1)
    assert set(summary["mean"]) == set(REGIONS) == {(1, 2), 2}
    assert_matches_nnunet(out, "nnunet_summary_regions.json")
    loaded = load_summary_json(out)
    assert set(loaded["mean"]) == {(1, 2), 2} and loaded["foreground_mean"] == pytest.approx(
        summary["foreground_mean"], nan_ok=True)


def test_nnunet_summaries_load(tmp_path):
    s = load_summary_json(FIXTURES / "nnunet_summary_labels.json")
    assert set(s["mean"]) == {1, 2}


def test_parallel_equals_serial(folders, tmp_path, monkeypatch):
    monkeypatch.setenv("MONAI_NNUNET_START_METHOD", "fork")
    ref, pred = folders
    a = compute_metrics_on_folder(ref, pred, LABELS, ".nii.gz", IGNORE, num_processes=1)
    b = compute_metrics_on_folder(ref, pred, LABELS, ".nii.gz", IGNORE, num_processes=2)
    assert json.dumps(a, default=str) == json.dumps(b, default=str)


def test_missing_predictions_fail_unless_chill(folders, tmp_path):
    ref, pred = folders
    (pred / "case_c.nii.gz").unlink()
    with pytest.raises(FileNotFoundError, match=r"lacks predictions for 1 reference case.*case_c"):
        evaluate_folder(ref, pred, dataset_json(tmp_path), num_processes=1)
    summary = evaluate_folder(ref, pred, dataset_json(tmp_path), num_processes=1, chill=True)
    assert len(summary["metric_per_case"]) == 2


def test_prediction_without_reference_and_shape_mismatch(folders, tmp_path):
    ref, pred = folders
    write_segmentation(np.zeros((2, 2, 2), np.uint8), pred / "stray.nii.gz", GEOMETRY)
    with pytest.raises(FileNotFoundError, match="no reference .* for prediction.*stray"):
        compute_metrics_on_folder(ref, pred, LABELS, ".nii.gz", num_processes=1)
    write_segmentation(np.zeros((2, 2, 2), np.uint8), ref / "stray.nii.gz", GEOMETRY)
    write_segmentation(np.zeros((2, 3, 2), np.uint8), pred / "stray.nii.gz", GEOMETRY)
    with pytest.raises(RuntimeError, match=r"stray\.nii\.gz has shape"):
        compute_metrics_on_folder(ref, pred, LABELS, ".nii.gz", num_processes=1)


def test_cli_evaluate_folder_and_simple(folders, tmp_path, capsys):
    ref, pred = folders
    assert main(["evaluate_folder", str(ref), str(pred), "-djfile", str(dataset_json(tmp_path)), "-o",
                 str(tmp_path / "s.json"), "-np", "1"]) == 0
    assert_matches_nnunet(tmp_path / "s.json", "nnunet_summary_labels.json")
    assert "foreground mean: Dice" in capsys.readouterr().out
    assert main(["evaluate_simple", str(ref), str(pred), "-l", "1", "2", "-il", str(IGNORE), "-np", "1"]) == 0
    assert_matches_nnunet(pred / "summary.json", "nnunet_summary_labels.json")
    assert main(["evaluate_folder", str(ref), str(tmp_path / "nope"), "-djfile", str(dataset_json(tmp_path))]) == 1
    assert "prediction folder" in capsys.readouterr().err


def test_console_script_module_runs(folders, tmp_path):
    ref, pred = folders
    result = subprocess.run([sys.executable, "-m", "monai_nnunet", "evaluate_simple", str(ref), str(pred), "-l", "1",
                             "2", "-np", "1"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "foreground mean" in result.stdout
