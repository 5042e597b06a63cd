"""``nnUNetv2_predict`` and the model-selection commands on the fabricated trained models."""

import json
import os
import shlex
import shutil
import subprocess
import sys

import nibabel as nib
import numpy as np

from monai_nnunet.cli.main import main
from monai_nnunet.evaluation import evaluate_folder
from monai_nnunet.inference import Predictor, iter_preprocessed_cases, predict_cases_to_folder
from tests.conftest import REPO_ROOT
from tests.inference.conftest import DATASET

BASE = ["-d", "998", "-c", "3d_fullres", "-device", "cpu", "-npp", "0", "-nps", "0", "--disable_progress_bar"]


def test_predict_command(trained_env, tmp_path, capsys):
    images = trained_env["raw"] / DATASET / "imagesTs"
    out = tmp_path / "out"
    assert main(["predict", "-i", str(images), "-o", str(out), "-f", "0", "1", "--save_probabilities", *BASE]) == 0
    assert "1 case(s) written" in capsys.readouterr().out
    seg = nib.load(str(out / "synthetic_ts000.nii.gz"))
    image = nib.load(str(images / "synthetic_ts000_0000.nii.gz"))
    assert seg.shape == image.shape and np.allclose(seg.affine, image.affine)
    with np.load(out / "synthetic_ts000.npz") as f:
        assert f["probabilities"].shape == (3, *image.shape[::-1])
    args = json.loads((out / "predict_from_raw_data_args.json").read_text())
    assert args["folds"] == ["0", "1"] and args["mirror_axes"] == [0, 1, 2]
    # without TTA, another step size
    assert main(["predict", "-i", str(images), "-o", str(tmp_path / "fast"), "-f", "0", "--disable_tta",
                 "-step_size", "1", *BASE]) == 0
    args = json.loads((tmp_path / "fast" / "predict_from_raw_data_args.json").read_text())
    assert args["mirror_axes"] == [] and args["step_size"] == 1.0


def test_predict_command_errors(trained_env, tmp_path, capsys):
    images = str(trained_env["raw"] / DATASET / "imagesTs")
    out = str(tmp_path / "out")
    assert main(["predict", "-i", images, "-o", out, "-f", "0", "-chk", "checkpoint_best.pth", *BASE]) == 1
    err = capsys.readouterr().err
    assert "checkpoint_best.pth does not exist" in err and "checkpoint_final.pth" in err and "Traceback" not in err
    assert main(["predict", "-i", images, "-o", out, *BASE]) == 1  # default folds 0-4: only 0 and 1 exist
    assert "fold 2 of nnUNetTrainer__nnUNetPlans__3d_fullres has not been trained" in capsys.readouterr().err
    base = [a if a != "3d_fullres" else "3d_lowres" for a in BASE]
    assert main(["predict", "-i", images, "-o", out, "-f", "0", *base]) == 1
    assert "Trained models of Dataset998_Synthetic: nnUNetTrainer__nnUNetPlans__2d" in capsys.readouterr().err
    assert main(["predict", "-i", images, "-o", out, "-f", "0", "-tr", "nope", *BASE]) == 1
    assert main(["predict", "-i", str(tmp_path / "missing"), "-o", out, "-f", "0", *BASE]) == 1
    assert "input folder" in capsys.readouterr().err


def test_python_dash_m_predict_with_worker_processes(trained_env, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for case in ("synthetic_tr000", "synthetic_tr003"):
        shutil.copy(trained_env["raw"] / DATASET / "imagesTr" / f"{case}_0000.nii.gz", inputs)
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), OMP_NUM_THREADS="1")
    result = subprocess.run(
        [sys.executable, "-m", "monai_nnunet", "predict", "-i", str(inputs), "-o", str(tmp_path / "out"), "-d",
         "998", "-c", "3d_fullres", "-f", "0", "-device", "cpu", "-npp", "2", "-nps", "2", "--disable_progress_bar"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out").glob("*.nii.gz")) == ["synthetic_tr000.nii.gz",
                                                                           "synthetic_tr003.nii.gz"]


def test_cross_validation_to_inference_instructions(trained_env, tmp_path):
    """Validation of fold 0 of both configurations (as the trainer's final validation writes it), model selection,
    and the instructions' command run as printed."""
    pre = trained_env["preprocessed"] / DATASET
    val = json.loads((pre / "splits_final.json").read_text())[0]["val"]
    results = trained_env["results"] / DATASET
    for config in ("3d_fullres", "2d"):
        folder = results / f"nnUNetTrainer__nnUNetPlans__{config}"
        predictor = Predictor.from_results_folder(folder, (0,), device="cpu", verbose=False)
        target = folder / "fold_0" / "validation_raw"
        identifier = predictor.configuration.data_identifier
        predict_cases_to_folder(predictor, iter_preprocessed_cases(pre / identifier, val), target,
                                save_probabilities=True, num_processes_export=0)
        summary = evaluate_folder(pre / "gt_segmentations", target, folder / "dataset.json", chill=True,
                                  num_processes=1)
        assert len(summary["metric_per_case"]) == len(val)
    assert main(["find_best_configuration", "998", "-c", "2d", "3d_fullres", "-f", "0", "-np", "1"]) == 0
    info = json.loads((results / "inference_information.json").read_text())
    assert len(info["all_results"]) == 3  # two models and their ensemble
    command = (results / "inference_instructions.txt").read_text().splitlines()[2]
    assert command.startswith("nnUNetv2_predict -d 998")
    args = shlex.split(command)[1:]
    args = [str(trained_env["raw"] / DATASET / "imagesTs") if a == "INPUT_FOLDER" else
            str(tmp_path / "final") if a.startswith("OUTPUT_FOLDER") else a for a in args]
    assert main(["predict", *args, "-device", "cpu", "-npp", "0", "-nps", "0", "--disable_progress_bar"]) == 0
    assert (tmp_path / "final" / "synthetic_ts000.nii.gz").is_file()
