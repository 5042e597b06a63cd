"""Trained models ship as bundle zips that run anywhere: export, unzip, verify, predict through monai.bundle,
download/load, import from nnU-Net, and clear errors for broken inputs."""

import json
import os
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch

from monai_nnunet.bundle.metadata import SCHEMA_FILE
from monai_nnunet.cli.main import main
from monai_nnunet.dataset.io import read_images, read_segmentation
from tests.bundle.zoo_checks import run_model_zoo_checks
from tests.conftest import REPO_ROOT
from tests.conftest import SHORT, fold_folder


@pytest.fixture(scope="module")
def exported(tmp_path_factory, preprocessed_synthetic):
    """One short training, exported; module scope: the zip is shared by the tests below."""
    root = tmp_path_factory.mktemp("export")
    env = {"nnUNet_raw": str(preprocessed_synthetic["raw"]), "nnUNet_preprocessed": str(preprocessed_synthetic["preprocessed"]),
           "nnUNet_results": str(root / "results"), "nnUNet_n_proc_DA": "0", "nnUNet_def_n_proc": "1"}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        assert main(["train", "998", "3d_fullres", "0", *SHORT]) == 0
        zip_file = root / "Synthetic_3d_fullres.zip"
        assert main(["export-bundle", "-d", "998", "-c", "3d_fullres", "-f", "0", "-o", str(zip_file)]) == 0
        images = root / "images"
        images.mkdir()
        for f in sorted((preprocessed_synthetic["raw"] / "Dataset998_Synthetic" / "imagesTs").iterdir()):
            shutil.copyfile(f, images / f.name)
        reference_out = root / "predict_out"
        assert main(["predict", "-i", str(images), "-o", str(reference_out), "-d", "998", "-c", "3d_fullres",
                     "-f", "0", "-device", "cpu", "-npp", "0", "-nps", "0"]) == 0
    return {"zip": zip_file, "images": images, "predict_out": reference_out, "root": root,
            "fold": fold_folder(root / "results")}


def _clean_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith("nnUNet_")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    return env


def test_zip_layout(exported):
    with zipfile.ZipFile(exported["zip"]) as z:
        names = z.namelist()
    assert {n.split("/")[0] for n in names} == {"Synthetic_3d_fullres"}  # one top-level folder
    for member in ("configs/inference.yaml", "configs/inference.json", "configs/metadata.json", "configs/plans.json",
                   "configs/dataset.json", "configs/evaluate.yaml", "models/model.pt", "docs/README.md", "LICENSE"):
        assert f"Synthetic_3d_fullres/{member}" in names, member
    with zipfile.ZipFile(exported["zip"]) as z:
        readme = z.read("Synthetic_3d_fullres/docs/README.md").decode()
        metadata = json.loads(z.read("Synthetic_3d_fullres/configs/metadata.json"))
    # the model zoo's README sections, filled from the run
    for section in ("## Model Overview", "## Data", "## Training configuration", "## Performance",
                    "## MONAI Bundle Commands", "# References", "# License"):
        assert f"\n{section}\n" in readme, section
    dice = json.loads((exported["fold"] / "validation_raw" / "summary.json").read_text())["mean"]
    row = next(line for line in readme.splitlines() if line.startswith("| 0 |"))
    assert f"{dice['1']['Dice']:.4f}" in row and f"{dice['2']['Dice']:.4f}" in row  # the fold's validation Dice
    assert "| class1 | class2 |" in readme and "epochs 2, iterations_per_epoch 2" in readme
    assert "val_mean_dice" in metadata["eval_metrics"]


def test_unzipped_bundle_runs_anywhere(exported, tmp_path):
    with zipfile.ZipFile(exported["zip"]) as z:
        z.extractall(tmp_path)
    bundle = tmp_path / "Synthetic_3d_fullres"
    env = _clean_env()
    verify = subprocess.run([sys.executable, "-m", "monai.bundle", "verify_metadata", "--meta_file",
                             "configs/metadata.json", "--filepath", str(SCHEMA_FILE)], cwd=bundle, env=env,
                            capture_output=True, text=True, timeout=300)
    assert verify.returncode == 0, verify.stderr
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "monai.bundle", "run", "--config_file", "configs/inference.yaml",
                          "--dataset_dir", str(exported["images"]), "--output_dir", str(out), "--num_workers", "0"],
                         cwd=bundle, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    inputs = sorted(exported["images"].iterdir())
    assert sorted(p.name for p in out.glob("*.nii.gz")) == sorted(f.name.replace("_0000", "") for f in inputs)
    for image_file in inputs:
        name = image_file.name.replace("_0000", "")
        seg, seg_props = read_segmentation(out / name)
        image, image_props = read_images([image_file])
        assert seg.shape[1:] == image.shape[1:]
        np.testing.assert_allclose(seg_props["affine"], image_props["affine"], atol=1e-5)
        reference, _ = read_segmentation(exported["predict_out"] / name)
        np.testing.assert_array_equal(seg, reference)  # the bundle predicts what nnUNetv2_predict predicts


def test_download_and_load_give_the_network(exported, tmp_path):
    import monai.bundle

    monai.bundle.download(name="Synthetic_3d_fullres", url=f"file://{exported['zip']}", bundle_dir=str(tmp_path))
    network = monai.bundle.load(name="Synthetic_3d_fullres", bundle_dir=str(tmp_path), workflow_type="inference",
                                source="github", device="cpu")
    assert isinstance(network, torch.nn.Module)
    trained = torch.load(exported["fold"] / "checkpoint_final.pth", weights_only=True)["network_weights"]
    for key, value in network.state_dict().items():
        torch.testing.assert_close(value, trained[key])


def test_import_from_nnunet_results(exported, tmp_path):
    """An nnU-Net v2 results folder (PlainConvUNet key layout) becomes the same kind of bundle."""
    from monai_nnunet.bundle.inference import network_from_plans
    from monai_nnunet.networks import monai_to_nnunet_state_dict

    fold = exported["fold"]
    nnunet = tmp_path / "nnUNetTrainer__nnUNetPlans__3d_fullres"
    (nnunet / "fold_0").mkdir(parents=True)
    shutil.copyfile(fold.parent / "plans.json", nnunet / "plans.json")
    shutil.copyfile(fold.parent / "dataset.json", nnunet / "dataset.json")
    ours = network_from_plans(nnunet / "plans.json", nnunet / "dataset.json", "3d_fullres")
    ours.load_state_dict(torch.load(fold / "checkpoint_final.pth", weights_only=True)["network_weights"])
    torch.save({"network_weights": monai_to_nnunet_state_dict(ours), "optimizer_state": {}, "grad_scaler_state": None,
                "logging": {}, "_best_ema": None, "current_epoch": 2, "trainer_name": "nnUNetTrainer",
                "init_args": {"configuration": "3d_fullres", "fold": 0}, "inference_allowed_mirroring_axes": (0, 1, 2)},
               nnunet / "fold_0" / "checkpoint_final.pth")
    zip_file = tmp_path / "Imported.zip"
    assert main(["import-nnunet", str(nnunet), "-o", str(zip_file)]) == 0
    with zipfile.ZipFile(zip_file) as z:
        z.extractall(tmp_path / "unzipped")
        state = torch.load(z.open("Imported/models/model.pt"), weights_only=True)
    x = torch.randn(1, 1, *json.loads((nnunet / "plans.json").read_text())["configurations"]["3d_fullres"]["patch_size"])
    imported = network_from_plans(nnunet / "plans.json", nnunet / "dataset.json", "3d_fullres")
    imported.load_state_dict(state)
    with torch.no_grad():
        torch.testing.assert_close(imported(x), ours.eval()(x), atol=1e-5, rtol=1e-5)
    run_model_zoo_checks(tmp_path / "unzipped", "Imported")  # an imported nnU-Net model ships like the zoo's too


def test_broken_inputs_name_what_is_missing(exported, tmp_path, capsys, monkeypatch):
    # a results folder without the checkpoint
    empty = tmp_path / "results_without_checkpoint"
    (empty / "fold_0").mkdir(parents=True)
    shutil.copyfile(exported["fold"].parent / "plans.json", empty / "plans.json")
    shutil.copyfile(exported["fold"].parent / "dataset.json", empty / "dataset.json")
    assert main(["import-nnunet", str(empty), "-o", str(tmp_path / "x.zip")]) == 1
    assert "checkpoint_final.pth" in capsys.readouterr().err
    # a checkpoint whose weights do not fit the plans
    bad = tmp_path / "bad_results"
    shutil.copytree(empty, bad)
    torch.save({"network_weights": {"encoder.stages.0.0.convs.0.conv.weight": torch.zeros(3, 3)}, "trainer_name":
                "nnUNetTrainer", "init_args": {"configuration": "3d_fullres"}}, bad / "fold_0" / "checkpoint_final.pth")
    assert main(["import-nnunet", str(bad), "-o", str(tmp_path / "y.zip")]) == 1
    assert "fit" in capsys.readouterr().err
    # a bundle without models/
    with zipfile.ZipFile(exported["zip"]) as z:
        z.extractall(tmp_path / "nomodels")
    bundle = tmp_path / "nomodels" / "Synthetic_3d_fullres"
    shutil.rmtree(bundle / "models")
    run = subprocess.run([sys.executable, "-m", "monai.bundle", "run", "--config_file", "configs/inference.yaml",
                          "--dataset_dir", str(exported["images"]), "--output_dir", str(tmp_path / "o"),
                          "--num_workers", "0"], cwd=bundle, env=_clean_env(), capture_output=True, text=True,
                         timeout=600)
    assert run.returncode != 0 and "models/model.pt" in run.stderr
    # export of a fold that was never trained
    monkeypatch.setenv("nnUNet_results", str(exported["root"] / "results"))
    assert main(["export-bundle", "-d", "998", "-c", "3d_fullres", "-f", "3", "-o", str(tmp_path / "z.zip")]) == 1
    assert "fold_3" in capsys.readouterr().err


def test_torchscript_export(exported, tmp_path, monkeypatch):
    monkeypatch.setenv("nnUNet_results", str(exported["root"] / "results"))
    zip_file = tmp_path / "WithTs.zip"
    assert main(["export-bundle", "-d", "998", "-c", "3d_fullres", "-f", "0", "-o", str(zip_file),
                 "--torchscript"]) == 0
    with zipfile.ZipFile(zip_file) as z:
        z.extractall(tmp_path)
    scripted = torch.jit.load(str(tmp_path / "WithTs" / "models" / "model.ts"), map_location="cpu")
    from monai_nnunet.bundle.inference import network_from_plans

    bundle = tmp_path / "WithTs" / "configs"
    network = network_from_plans(bundle / "plans.json", bundle / "dataset.json", "3d_fullres")
    network.load_state_dict(torch.load(tmp_path / "WithTs" / "models" / "model.pt", weights_only=True))
    patch = json.loads((bundle / "plans.json").read_text())["configurations"]["3d_fullres"]["patch_size"]
    x = torch.randn(1, 1, *patch)
    with torch.no_grad():
        torch.testing.assert_close(scripted(x), network(x), atol=1e-4, rtol=1e-4)
