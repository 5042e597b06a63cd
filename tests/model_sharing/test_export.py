"""``nnUNetv2_export_model_to_zip`` -> ``nnUNetv2_install_pretrained_model_from_zip`` ->
``nnUNetv2_predict_from_modelfolder`` on the fabricated trained models, and the cross-check with nnU-Net."""

import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from monai_nnunet.cli.main import main
from monai_nnunet.inference.model_loading import load_checkpoint
from tests.inference.conftest import DATASET

MODEL = "nnUNetTrainer__nnUNetPlans__3d_fullres"
NNUNET_PYTHON = Path("/work/nnunet_venv/bin/python")
PRED = ["-device", "cpu", "-npp", "0", "-nps", "0", "--disable_progress_bar"]


def _complete_folds(results: Path, folds=(0, 1)) -> Path:
    """What a finished training leaves beside the checkpoint (the fabricated models lack it)."""
    folder = results / DATASET / MODEL
    for f in folds:
        (folder / f"fold_{f}" / "progress.png").write_bytes(b"\x89PNG fake")
        validation = folder / f"fold_{f}" / "validation_raw"  # our trainer's name; nnU-Net's "validation" in the zip
        validation.mkdir(exist_ok=True)
        (validation / "summary.json").write_text('{"foreground_mean": {"Dice": 0.5}}')
        (validation / "case_000.nii.gz").write_bytes(b"seg")
        (validation / "case_000.npz").write_bytes(b"probabilities")
        (folder / f"fold_{f}" / "debug.json").write_text("{}")
        (folder / f"fold_{f}" / "training_log.txt").write_text("not exported")
    (folder / "crossval_results_folds_0_1").mkdir()
    (folder / "crossval_results_folds_0_1" / "summary.json").write_text("{}")
    (folder / "crossval_results_folds_0_1" / "case_000.nii.gz").write_bytes(b"seg")
    (results / DATASET / "inference_information.json").write_text("{}")
    return folder


def _export(zip_path: Path, *extra: str) -> list[str]:
    assert main(["export_model_to_zip", "-d", "998", "-o", str(zip_path), "-c", "3d_fullres", "-f", "0", "1",
                 *extra]) == 0
    with zipfile.ZipFile(zip_path) as zf:
        return sorted(zf.namelist())


def test_export_has_nnunets_files(trained_env, tmp_path):
    _complete_folds(trained_env["results"])
    m = f"{DATASET}/{MODEL}"
    folds = [f"{m}/fold_{f}/{name}" for f in (0, 1) for name in
             ("checkpoint_final.pth", "debug.json", "progress.png", "validation/summary.json")]
    assert _export(tmp_path / "a.zip") == sorted(folds + [
        f"{m}/crossval_results_folds_0_1/summary.json", f"{m}/dataset.json", f"{m}/dataset_fingerprint.json",
        f"{m}/plans.json", f"{DATASET}/inference_information.json"])
    with_cv = _export(tmp_path / "b.zip", "--exp_cv_preds")
    assert f"{m}/fold_0/validation/case_000.nii.gz" in with_cv
    assert f"{m}/crossval_results_folds_0_1/case_000.nii.gz" in with_cv
    assert not [n for n in with_cv if n.endswith(".npz") or n.endswith("training_log.txt")]


def test_export_errors(trained_env, tmp_path, capsys):
    _complete_folds(trained_env["results"])
    out = str(tmp_path / "x.zip")
    assert main(["export_model_to_zip", "-d", "998", "-o", out, "-c", "3d_fullres", "-f", "0", "3"]) == 1
    assert "fold_3 missing" in capsys.readouterr().err
    assert main(["export_model_to_zip", "-d", "998", "-o", out, "-c", "3d_fullres", "3d_lowres", "-f", "0"]) == 1
    assert "no trained model of configuration 3d_lowres" in capsys.readouterr().err
    assert main(["export_model_to_zip", "-d", "998", "-o", out, "-f", "0", "-chk", "checkpoint_best.pth",
                 "-c", "3d_fullres"]) == 1
    assert "checkpoint_best.pth is missing" in capsys.readouterr().err
    assert not Path(out).exists()  # nothing half-written
    assert main(["export_model_to_zip", "-d", "998", "-o", out, "-c", "3d_fullres", "3d_lowres", "-f", "0",
                 "--not_strict"]) == 0


def test_round_trip_predicts_as_the_original(trained_env, tmp_path, monkeypatch):
    _complete_folds(trained_env["results"])
    zip_path = tmp_path / "model.zip"
    _export(zip_path)
    images = trained_env["raw"] / DATASET / "imagesTs"
    assert main(["predict", "-i", str(images), "-o", str(tmp_path / "original"), "-d", "998", "-c", "3d_fullres",
                 "-f", "0", "1", *PRED]) == 0
    installed = tmp_path / "elsewhere"
    monkeypatch.setenv("nnUNet_results", str(installed))
    assert main(["install_pretrained_model_from_zip", str(zip_path)]) == 0
    folder = installed / DATASET / MODEL
    checkpoint = load_checkpoint(folder / "fold_0" / "checkpoint_final.pth")
    assert checkpoint["init_args"]["configuration"] == "3d_fullres"  # what nnU-Net's predictor reads
    assert any(k.startswith("encoder.stages.") for k in checkpoint["network_weights"])  # nnU-Net's layout
    assert "trainer_config" in checkpoint and "init" in checkpoint  # ours kept
    monkeypatch.delenv("nnUNet_results")
    assert main(["predict_from_modelfolder", "-i", str(images), "-o", str(tmp_path / "shared"), "-m", str(folder),
                 "-f", "0", "1", *PRED]) == 0
    for case in sorted((tmp_path / "original").glob("*.nii.gz")):
        a = np.asarray(nib.load(case).dataobj)
        b = np.asarray(nib.load(tmp_path / "shared" / case.name).dataobj)
        assert np.array_equal(a, b), case.name


@pytest.mark.slow
@pytest.mark.skipif(not NNUNET_PYTHON.is_file(), reason="nnU-Net v2's side venv (/work/nnunet_venv) is absent")
def test_nnunet_installs_and_predicts_our_zip(trained_env, tmp_path):
    """Our zip through nnU-Net's own install and predictor; prints the voxel agreement with ours."""
    _complete_folds(trained_env["results"])
    zip_path = tmp_path / "model.zip"
    _export(zip_path)
    images = trained_env["raw"] / DATASET / "imagesTs"
    assert main(["predict", "-i", str(images), "-o", str(tmp_path / "ours"), "-d", "998", "-c", "3d_fullres",
                 "-f", "0", "1", *PRED]) == 0
    env = {**os.environ, "nnUNet_results": str(tmp_path / "nnunet_results"), "nnUNet_raw": str(tmp_path),
           "nnUNet_preprocessed": str(tmp_path)}
    script = (
        "import sys, torch\n"
        "from nnunetv2.model_sharing.model_import import install_model_from_zip_file\n"
        "from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor\n"
        "if __name__ == '__main__':\n"
        "    install_model_from_zip_file(sys.argv[1])\n"
        "    p = nnUNetPredictor(perform_everything_on_device=False, device=torch.device('cpu'), allow_tqdm=False)\n"
        "    p.initialize_from_trained_model_folder(sys.argv[2], (0, 1), 'checkpoint_final.pth')\n"
        "    p.predict_from_files(sys.argv[3], sys.argv[4], num_processes_preprocessing=1,\n"
        "                         num_processes_segmentation_export=1)\n")
    (tmp_path / "nn.py").write_text(script)
    folder = tmp_path / "nnunet_results" / DATASET / MODEL
    subprocess.run(["nice", "-n", "19", str(NNUNET_PYTHON), str(tmp_path / "nn.py"), str(zip_path), str(folder),
                    str(images), str(tmp_path / "theirs")], env=env, check=True, capture_output=True, timeout=300)
    agreement = []
    for case in sorted((tmp_path / "ours").glob("*.nii.gz")):
        a = np.asarray(nib.load(case).dataobj)
        b = np.asarray(nib.load(tmp_path / "theirs" / case.name).dataobj)
        agreement.append(float((a == b).mean()))
    print(f"voxel agreement ours vs nnU-Net on our exported zip: {agreement}")
    assert agreement and min(agreement) > 0.95


def test_reexport_of_nnunets_zip_has_nnunets_members(nnunet_env, tmp_path):
    """nnU-Net's zip installed here and exported again: the same members as nnU-Net's own export."""
    nnunet_zip = Path(__file__).parent / "fixtures" / "nnunet_model.zip"
    assert main(["install_pretrained_model_from_zip", str(nnunet_zip)]) == 0
    ours = tmp_path / "again.zip"
    assert main(["export_model_to_zip", "-d", "997", "-o", str(ours), "-c", "3d_fullres", "-f", "0"]) == 0
    with zipfile.ZipFile(nnunet_zip) as a, zipfile.ZipFile(ours) as b:
        assert sorted(a.namelist()) == sorted(b.namelist())
        for name in a.namelist():
            if not name.endswith(".pth"):
                assert a.read(name) == b.read(name), name


def test_ensembles_of_exported_models_only(trained_env, tmp_path):
    folder = _complete_folds(trained_env["results"])
    ensembles = trained_env["results"] / DATASET / "ensembles"
    other = "nnUNetTrainer__nnUNetPlans__2d"
    for name in (f"ensemble___{MODEL}___{MODEL}___0_1", f"ensemble___{MODEL}___{other}___0_1"):
        (ensembles / name).mkdir(parents=True)
        (ensembles / name / "summary.json").write_text("{}")
        (ensembles / name / "case_000.nii.gz").write_bytes(b"seg")
    names = _export(tmp_path / "e.zip")
    assert f"{DATASET}/ensembles/ensemble___{MODEL}___{MODEL}___0_1/summary.json" in names
    assert not [n for n in names if other in n or n.endswith("case_000.nii.gz")]
    assert folder.is_dir()


def test_predict_from_modelfolder_options_and_errors(trained_env, tmp_path, capsys):
    folder = trained_env["results"] / DATASET / MODEL
    images = trained_env["raw"] / DATASET / "imagesTs"
    out = tmp_path / "out"
    args = ["predict_from_modelfolder", "-i", str(images), "-o", str(out), "-m", str(folder), "-f", "0", *PRED]
    assert main([*args, "--save_probabilities", "--disable_tta", "--verbose"]) == 0
    assert "configuration 3d_fullres" in capsys.readouterr().out
    seg = sorted(out.glob("*.nii.gz"))
    assert seg and all(p.with_name(p.name[: -len(".nii.gz")] + ".npz").is_file() for p in seg)
    args_json = json.loads((out / "predict_from_raw_data_args.json").read_text())
    assert args_json["use_mirroring"] is False and args_json["folds"] == ["0"]
    before = seg[0].stat().st_mtime_ns
    assert main([*args, "--continue_prediction", "--save_probabilities"]) == 0
    assert seg[0].stat().st_mtime_ns == before and "0 case(s) written" in capsys.readouterr().out
    assert main(["predict_from_modelfolder", "-i", str(images), "-o", str(out), "-m", str(tmp_path / "nope"),
                 *PRED]) == 1
    err = capsys.readouterr().err.strip()
    assert "nope does not exist" in err and len(err.splitlines()) == 1
    assert main(["predict_from_modelfolder", "-i", str(images), "-o", str(out), "-m", str(folder), "-f", "0", "4",
                 *PRED]) == 1
    assert "fold 4" in capsys.readouterr().err
    shutil.rmtree(out)
