"""Connected-component post-processing: decisions and Dice values equal nnU-Net v2's on the same predictions
(fixture written by nnU-Net, see fixtures/make_nnunet_postprocessing.py), nnU-Net's postprocessing.pkl written byte for
byte as CPython pickles it, the JSON twin as the only file read, and the commands."""

import json
import math
import os
import pickle
import pickletools
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from monai_nnunet.cli.main import main
from monai_nnunet.dataset.io import read_segmentation, write_segmentation
from monai_nnunet.evaluation import inference_instructions
from monai_nnunet.postprocessing import (
    NNUNET_MODULE,
    apply_postprocessing_to_folder,
    determine_postprocessing,
    load_postprocessing,
    remove_all_but_largest_component,
    remove_all_but_largest_component_from_segmentation,
)
from monai_nnunet.postprocessing.pickle_writer import GlobalReference, dumps
from tests.conftest import REPO_ROOT
from tests.postprocessing._cases import GEOMETRY, INFERENCE_INFORMATION, SCENARIOS, cases, dataset_json, plans_json

EXPECTED = json.loads((Path(__file__).parent / "fixtures" / "nnunet_postprocessing.json").read_text())
STEP = "remove_all_but_largest_component_from_segmentation"
NNUNET_PYTHON = Path(os.environ.get("NNUNET_REFERENCE_PYTHON", REPO_ROOT.parent / "nnunet_venv" / "bin" / "python"))


def write_scenario(root: Path, scenario: str) -> tuple[Path, Path]:
    """Reference folder and a crossval_results folder (with dataset.json and plans.json) of one scenario."""
    ref, pred = root / "ref", root / "crossval_results_folds_0_1_2_3_4"
    for name, (r, p) in cases(scenario).items():
        write_segmentation(r, ref / f"{name}.nii.gz", {"sitk_stuff": GEOMETRY})
        write_segmentation(p, pred / f"{name}.nii.gz", {"sitk_stuff": GEOMETRY})
    (pred / "dataset.json").write_text(json.dumps(dataset_json(scenario)))
    (pred / "plans.json").write_text(json.dumps(plans_json()))
    return ref, pred


def nan_to_none(obj):
    if isinstance(obj, dict):
        return {k: nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [nan_to_none(v) for v in obj]
    return None if isinstance(obj, float) and math.isnan(obj) else obj


def assert_same(ours, theirs, where=""):
    """Equal structure; floats to 1e-12; None stands for NaN."""
    if isinstance(theirs, dict):
        assert sorted(ours) == sorted(theirs), where
        for k in theirs:
            assert_same(ours[k], theirs[k], f"{where}/{k}")
    elif isinstance(theirs, list):
        assert len(ours) == len(theirs), where
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert_same(a, b, f"{where}[{i}]")
    elif isinstance(theirs, float):
        assert ours == pytest.approx(theirs, abs=1e-12), where
    else:
        assert ours == theirs, where


class _OnlyTheStep(pickle.Unpickler):
    """Reads our own pickle in the test, resolving nothing but nnU-Net's step name (to a string)."""

    def find_class(self, module, name):
        if (module, name) != (NNUNET_MODULE, STEP):
            raise pickle.UnpicklingError(f"unexpected global {module}.{name}")
        return f"{module}.{name}"


def read_our_pickle(path: Path):
    ops = {op.name for op, _, _ in pickletools.genops(path.read_bytes())}
    assert ops <= {"PROTO", "FRAME", "SHORT_BINUNICODE", "MEMOIZE", "STACK_GLOBAL", "BINGET", "EMPTY_LIST", "APPEND",
                   "APPENDS", "EMPTY_DICT", "SETITEM", "SETITEMS", "BININT1", "MARK", "TUPLE1", "TUPLE2", "TUPLE3",
                   "TUPLE", "STOP"}, ops
    with open(path, "rb") as f:
        return _OnlyTheStep(f).load()


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_decisions_and_dice_equal_nnunet(tmp_path, scenario, capsys):
    ref, pred = write_scenario(tmp_path, scenario)
    expected = EXPECTED[scenario]
    fns, kwargs = determine_postprocessing(pred, ref, num_processes=1)

    assert [f.__name__ for f in fns] == [name.rsplit(".", 1)[1] for name in expected["pickle_functions"]]
    assert repr(kwargs) == expected["pickle_kwargs_repr"]
    ours = nan_to_none(json.loads((pred / "postprocessing.json").read_text()))
    assert_same(ours, expected["postprocessing_json"])
    # the postprocessed folder: the same files, the same per-case counts and Dice
    assert sorted(p.name for p in (pred / "postprocessed").iterdir()) == expected["postprocessed_files"]
    summary = nan_to_none(json.loads((pred / "postprocessed" / "summary.json").read_text()))
    for case in summary["metric_per_case"]:
        assert Path(case["prediction_file"]).parent == pred / "postprocessed"
        case["prediction_file"], case["reference_file"] = (Path(case["prediction_file"]).name,
                                                           Path(case["reference_file"]).name)
    assert_same(summary, expected["postprocessed_summary"])
    assert not (pred / "postprocessed" / "temp").exists()
    # nnU-Net's pickle: the same steps and arguments (tuples stay tuples), plain ints
    functions, pickled_kwargs = read_our_pickle(pred / "postprocessing.pkl")
    assert functions == expected["pickle_functions"]
    assert repr(pickled_kwargs) == expected["pickle_kwargs_repr"]
    out = capsys.readouterr().out
    assert ("Results were improved by removing all but the largest foreground region" in out) == (
        scenario == "single_label")


def test_one_label_gains_and_the_other_loses(tmp_path, capsys):
    """The labels scenario in words: the whole-foreground step is refused because label 2 would lose, label 1's step
    is taken, label 2's refused; what the files then hold."""
    ref, pred = write_scenario(tmp_path, "labels")
    fns, kwargs = determine_postprocessing(pred, ref, num_processes=1)
    assert kwargs == [{"labels_or_regions": 1}]
    out = capsys.readouterr().out
    assert "Removing all but the largest foreground region did not improve results!" in out
    assert "Results were improved by removing all but the largest component for 1. Dice before: 0.6501 after: 0.67403" \
        in out
    assert "Removing all but the largest component for 2 did not improve results! Dice before: 0.75238 after: 0.72222" \
        in out
    seg, _ = read_segmentation(pred / "postprocessed" / "case_0.nii.gz")
    _, original = cases("labels")["case_0"]
    assert seg[0, 6, 0, 0] == 0 and seg[0, 6, 1, 0] == 0  # label 1's speck removed
    assert seg[0, 4, 4, 4] == 1  # the corner neighbour of the cube is part of it (full connectivity)
    assert np.array_equal(seg[0] == 2, original == 2)  # label 2 untouched
    # without the postprocessed files
    assert main(["determine_postprocessing", "-i", str(pred), "-ref", str(ref), "-np", "1",
                 "--remove_postprocessed"]) == 0
    assert not (pred / "postprocessed").exists() and (pred / "postprocessing.json").is_file()


def test_largest_component_rules():
    mask = np.zeros((5, 5, 5), bool)
    mask[0:2, 0:2, 0:2] = True           # 8 voxels
    mask[2, 2, 2] = True                  # corner neighbour: same component
    mask[4, 4, 0:2] = True                # 2 voxels
    assert remove_all_but_largest_component(mask).sum() == 9
    tie = np.zeros((3, 7), bool)
    tie[0, 0:2] = tie[2, 5:7] = True      # two of the same size: both stay
    assert np.array_equal(remove_all_but_largest_component(tie), tie)
    assert not remove_all_but_largest_component(np.zeros((3, 3), bool)).any()
    seg = np.zeros((4, 6), np.uint8)
    seg[0, 0:3] = 1
    seg[1, 0] = 2                          # touches label 1: in the region (1, 2) they are one component
    seg[3, 5] = 2
    out = remove_all_but_largest_component_from_segmentation(seg, (1, 2), background_label=0)
    assert out[3, 5] == 0 and out[1, 0] == 2 and (out[0, 0:3] == 1).all()
    assert remove_all_but_largest_component_from_segmentation(seg, 2)[1, 0] == 2  # a tie at size 1
    assert seg[3, 5] == 2  # the input is not modified
    assert remove_all_but_largest_component_from_segmentation(seg, [2], background_label=7)[3, 5] == 2


def test_pickle_bytes_equal_cpython(monkeypatch):
    module = types.ModuleType(NNUNET_MODULE)

    def remove_all_but_largest_component_from_segmentation():
        pass

    remove_all_but_largest_component_from_segmentation.__module__ = NNUNET_MODULE
    remove_all_but_largest_component_from_segmentation.__qualname__ = STEP
    module.remove_all_but_largest_component_from_segmentation = remove_all_but_largest_component_from_segmentation
    for name in ("nnunetv2", "nnunetv2.postprocessing"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, NNUNET_MODULE, module)
    fn, ref = remove_all_but_largest_component_from_segmentation, GlobalReference(NNUNET_MODULE, STEP)
    kwargs = [{"labels_or_regions": [1, 2]}, {"labels_or_regions": (1, 2)}, {"labels_or_regions": 3,
                                                                             "background_label": 0}]
    assert dumps(([ref, ref, ref], kwargs)) == pickle.dumps(([fn, fn, fn], kwargs), protocol=4)
    assert dumps(([], [])) == pickle.dumps(([], []), protocol=4)
    plain = [None, True, False, 1.5, -3, 300, 70000, 2 ** 40, -2 ** 40, -1, (1, 2, 3, 4), (), "x" * 300,
             list(range(1500)), {i: str(i) for i in range(1200)}]
    assert dumps(plain) == pickle.dumps(plain, protocol=4)
    with pytest.raises(TypeError, match="plain data only"):
        dumps([np.int64(1)])


def test_apply_reads_the_json_twin_and_never_the_pickle(tmp_path, capsys):
    ref, pred = write_scenario(tmp_path, "labels")
    determine_postprocessing(pred, ref, num_processes=1)
    out = tmp_path / "applied"
    assert main(["apply_postprocessing", "-i", str(pred), "-o", str(out),
                 "-pp_pkl_file", str(pred / "postprocessing.pkl"), "-np", "1"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"{n}.nii.gz" for n in sorted(cases("labels"))]
    for name in names:
        assert np.array_equal(read_segmentation(out / name)[0], read_segmentation(pred / "postprocessed" / name)[0])
    # a pickle without its twin is refused, in one line; so is a JSON naming a step we do not know
    lone = tmp_path / "elsewhere" / "postprocessing.pkl"
    lone.parent.mkdir()
    lone.write_bytes((pred / "postprocessing.pkl").read_bytes())
    capsys.readouterr()
    assert main(["apply_postprocessing", "-i", str(pred), "-o", str(out), "-pp_pkl_file", str(lone)]) == 1
    err = capsys.readouterr().err.strip()
    assert "we do not unpickle files" in err and str(lone.with_suffix(".json")) in err and "\n" not in err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"postprocessing_fns": ["os.system"], "postprocessing_kwargs": [{}]}))
    with pytest.raises(ValueError, match="unknown post-processing step 'os.system'"):
        load_postprocessing(bad)
    bad.write_text(json.dumps({"postprocessing_fns": [STEP], "postprocessing_kwargs": [{"labels_or_regions": "1"}]}))
    with pytest.raises(ValueError, match="expected a label"):
        load_postprocessing(bad)
    # the folder needs its plans and dataset.json (or the flags)
    (tmp_path / "bare").mkdir()
    with pytest.raises(FileNotFoundError, match="plans.json is missing"):
        apply_postprocessing_to_folder(tmp_path / "bare", out, *load_postprocessing(pred / "postprocessing.json"))


@pytest.mark.slow
@pytest.mark.skipif(not NNUNET_PYTHON.is_file(), reason=f"nnU-Net v2's side venv ({NNUNET_PYTHON}) is not available; "
                    f"set NNUNET_REFERENCE_PYTHON to a python with nnunetv2 installed")
def test_nnunet_applies_our_pickle_to_the_same_files(tmp_path):
    ref, pred = write_scenario(tmp_path, "labels")
    determine_postprocessing(pred, ref, num_processes=1)
    out = tmp_path / "nnunet_applied"
    script = ("import sys; from batchgenerators.utilities.file_and_folder_operations import load_pickle; "
              "from nnunetv2.postprocessing.remove_connected_components import entry_point_apply_postprocessing; "
              "fns, kw = load_pickle(sys.argv[1]); print([f.__module__ + '.' + f.__name__ for f in fns], kw); "
              "sys.argv = ['nnUNetv2_apply_postprocessing'] + sys.argv[2:]; entry_point_apply_postprocessing()")
    done = subprocess.run([str(NNUNET_PYTHON), "-c", script, str(pred / "postprocessing.pkl"), "-i", str(pred),
                           "-o", str(out), "-pp_pkl_file", str(pred / "postprocessing.pkl"), "-np", "1"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"['{NNUNET_MODULE}.{STEP}'] [{{'labels_or_regions': 1}}]" in done.stdout
    for name in sorted(cases("labels")):
        theirs, their_props = read_segmentation(out / f"{name}.nii.gz")
        ours, our_props = read_segmentation(pred / "postprocessed" / f"{name}.nii.gz")
        assert np.array_equal(theirs, ours), name
        assert np.allclose(their_props["affine"], our_props["affine"])


@pytest.mark.parametrize("kind", list(INFERENCE_INFORMATION))
def test_inference_instructions_are_nnunets_text(kind, monkeypatch):
    monkeypatch.delenv("nnUNet_def_n_proc", raising=False)
    theirs = EXPECTED["inference_instructions"][kind]
    # nnU-Net's predict line has two spaces after -f (its fold string starts with one); ours has one
    assert inference_instructions(INFERENCE_INFORMATION[kind]) == theirs.replace("-f  ", "-f ")


def test_find_best_configuration_determines_the_postprocessing(nnunet_env, capsys):
    """One trained model whose cross-validation predictions are the labels scenario: the winner's post-processing
    is nnU-Net's decision, and inference_information.json / inference_instructions.txt carry it."""
    name = plans_json()["dataset_name"]
    names = sorted(cases("labels"))
    for case, (r, _) in cases("labels").items():
        write_segmentation(r, nnunet_env["raw"] / name / "labelsTr" / f"{case}.nii.gz", {"sitk_stuff": GEOMETRY})
    plans = dict(plans_json(), configurations={"3d_fullres": {}})
    (nnunet_env["preprocessed"] / name).mkdir(parents=True)
    (nnunet_env["preprocessed"] / name / "nnUNetPlans.json").write_text(json.dumps(plans))
    model = nnunet_env["results"] / name / "nnUNetTrainer__nnUNetPlans__3d_fullres"
    model.mkdir(parents=True)
    (model / "plans.json").write_text(json.dumps(plans))
    (model / "dataset.json").write_text(json.dumps(dataset_json("labels")))
    for i, case in enumerate(names):
        write_segmentation(cases("labels")[case][1], model / f"fold_{i % 2}" / "validation" / f"{case}.nii.gz",
                           {"sitk_stuff": GEOMETRY})
    assert main(["find_best_configuration", "996", "-c", "3d_fullres", "-f", "0", "1", "-np", "1",
                 "--disable_ensembling"]) == 0
    assert "***Determining postprocessing for best model/ensemble***" in capsys.readouterr().out
    source = model / "crossval_results_folds_0_1"
    assert json.loads((source / "postprocessing.json").read_text())["postprocessing_kwargs"] == [
        {"labels_or_regions": 1}]
    info = json.loads((nnunet_env["results"] / name / "inference_information.json").read_text())
    assert set(info) == {"folds", "dataset_name_or_id", "considered_models", "ensembling_allowed", "all_results",
                         "best_model_or_ensemble"}
    best = info["best_model_or_ensemble"]
    assert set(best) == {"result_on_crossval_pre_pp", "result_on_crossval_post_pp", "postprocessing_file",
                         "some_plans_file", "selected_model_or_models"}
    expected = EXPECTED["labels"]["postprocessing_json"]
    assert best["result_on_crossval_pre_pp"] == pytest.approx(expected["input_folder"]["foreground_mean"]["Dice"])
    assert best["result_on_crossval_post_pp"] == pytest.approx(expected["postprocessed"]["foreground_mean"]["Dice"])
    assert best["postprocessing_file"] == str(source / "postprocessing.pkl")
    text = (nnunet_env["results"] / name / "inference_instructions.txt").read_text()
    assert text == inference_instructions(info)
    assert text.endswith(f"nnUNetv2_apply_postprocessing -i OUTPUT_FOLDER -o OUTPUT_FOLDER_PP -pp_pkl_file "
                         f"{source / 'postprocessing.pkl'} -np 1 -plans_json {source / 'plans.json'}\n")
    # the instructions' command runs as written (the .pkl resolves to its JSON twin)
    out = nnunet_env["results"] / "pp"
    assert main(["apply_postprocessing", "-i", str(source), "-o", str(out), "-pp_pkl_file",
                 best["postprocessing_file"], "-np", "1", "-plans_json", best["some_plans_file"]]) == 0
    assert np.array_equal(read_segmentation(out / "case_0.nii.gz")[0],
                          read_segmentation(source / "postprocessed" / "case_0.nii.gz")[0])


class _Payload:
    """Unpickling this creates a marker file (what a malicious postprocessing.pkl would do with os.system)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_planted_pickle_never_runs(tmp_path, capsys):
    ref, pred = write_scenario(tmp_path, "single_label")
    determine_postprocessing(pred, ref, num_processes=1)
    marker = tmp_path / "payload_ran"
    (pred / "postprocessing.pkl").write_bytes(pickle.dumps(_Payload(marker)))
    assert main(["apply_postprocessing", "-i", str(pred), "-o", str(tmp_path / "out"), "-pp_pkl_file",
                 str(pred / "postprocessing.pkl"), "-np", "1"]) == 0  # read from the JSON twin
    (pred / "postprocessing.json").unlink()
    assert main(["apply_postprocessing", "-i", str(pred), "-o", str(tmp_path / "out"), "-pp_pkl_file",
                 str(pred / "postprocessing.pkl"), "-np", "1"]) == 1
    assert "we do not unpickle files" in capsys.readouterr().err
    assert not marker.exists()
