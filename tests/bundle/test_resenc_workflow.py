"""A ResEnc M plan trains, predicts, exports and imports like the plain U-Net's: plan with
``-pl nnUNetPlannerResEncM`` (reusing the plain plans' preprocessed data), train one short epoch, predict, export
a bundle (network_def + TorchScript) and turn an nnU-Net ResEnc results folder into a bundle."""

import json
import shutil
import zipfile

import numpy as np
import pytest
import torch
import yaml
from monai.bundle import ConfigParser

from monai_nnunet.bundle.inference import network_from_plans
from monai_nnunet.cli.main import main
from monai_nnunet.dataset.io import read_images, read_segmentation
from monai_nnunet.networks import ResidualEncoderUNet, monai_to_nnunet_state_dict

pytestmark = pytest.mark.slow

PLANS = "nnUNetResEncUNetMPlans"
SHORT = ["-device", "cpu", "--epochs", "1", "--iterations_per_epoch", "2", "--val_every", "1"]


@pytest.fixture(scope="module")
def resenc_run(tmp_path_factory, preprocessed_synthetic):
    root = tmp_path_factory.mktemp("resenc")
    pre = root / "nnUNet_preprocessed"
    shutil.copytree(preprocessed_synthetic["preprocessed"], pre)  # the plain plans' caches, reused by ResEnc
    env = {"nnUNet_raw": str(preprocessed_synthetic["raw"]), "nnUNet_preprocessed": str(pre),
           "nnUNet_results": str(root / "results"), "nnUNet_n_proc_DA": "0", "nnUNet_def_n_proc": "1"}
    images = root / "images"
    images.mkdir()
    for f in sorted((preprocessed_synthetic["raw"] / "Dataset998_Synthetic" / "imagesTs").iterdir()):
        shutil.copyfile(f, images / f.name)
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        assert main(["plan_experiment", "-d", "998", "-pl", "nnUNetPlannerResEncM"]) == 0
        assert main(["train", "998", "3d_fullres", "0", "-p", PLANS, *SHORT]) == 0
        assert main(["predict", "-i", str(images), "-o", str(root / "pred"), "-d", "998", "-c", "3d_fullres",
                     "-f", "0", "-p", PLANS, "-device", "cpu", "-npp", "0", "-nps", "0"]) == 0
        zip_file = root / "ResEnc.zip"
        assert main(["export-bundle", "-d", "998", "-c", "3d_fullres", "-f", "0", "-p", PLANS, "-o", str(zip_file),
                     "--torchscript"]) == 0
    fold = root / "results" / "Dataset998_Synthetic" / f"nnUNetTrainer__{PLANS}__3d_fullres" / "fold_0"
    return {"root": root, "fold": fold, "images": images, "pred": root / "pred", "zip": zip_file}


def test_training_builds_the_residual_encoder_unet(resenc_run):
    fold = resenc_run["fold"]
    train = yaml.safe_load((fold / "configs" / "train.yaml").read_text())
    plans = json.loads((fold.parent / "plans.json").read_text())
    arch = plans["configurations"]["3d_fullres"]["architecture"]["arch_kwargs"]
    assert train["network_def"]["_target_"] == "monai_nnunet.networks.ResidualEncoderUNet"
    assert train["network_def"]["n_blocks_per_stage"] == arch["n_blocks_per_stage"]
    checkpoint = torch.load(fold / "checkpoint_final.pth", weights_only=True)
    assert checkpoint["network_def"]["_target_"].endswith("ResidualEncoderUNet")
    network = network_from_plans(fold.parent / "plans.json", fold.parent / "dataset.json", "3d_fullres")
    assert isinstance(network, ResidualEncoderUNet)
    network.load_state_dict(checkpoint["network_weights"])  # strict: the trained weights are this network's
    assert (fold / "validation_raw" / "summary.json").is_file()


def test_prediction_and_exported_bundle_agree(resenc_run, tmp_path):
    inputs = sorted(resenc_run["images"].iterdir())
    for image_file in inputs:
        seg, _ = read_segmentation(resenc_run["pred"] / image_file.name.replace("_0000", ""))
        image, _ = read_images([image_file])
        assert seg.shape[1:] == image.shape[1:] and set(np.unique(seg)) <= {0, 1, 2}
    with zipfile.ZipFile(resenc_run["zip"]) as z:
        z.extractall(tmp_path)
    bundle = tmp_path / "ResEnc"
    parser = ConfigParser()
    parser.read_config(str(bundle / "configs" / "inference.yaml"))
    parser["bundle_root"] = str(bundle)
    network = parser.get_parsed_content("network_def")
    assert isinstance(network, ResidualEncoderUNet)
    network.load_state_dict(torch.load(bundle / "models" / "model.pt", weights_only=True))
    trained = network_from_plans(bundle / "configs" / "plans.json", bundle / "configs" / "dataset.json", "3d_fullres")
    trained.load_state_dict(torch.load(resenc_run["fold"] / "checkpoint_final.pth",
                                       weights_only=True)["network_weights"])
    scripted = torch.jit.load(str(bundle / "models" / "model.ts"), map_location="cpu")
    patch = json.loads((bundle / "configs" / "plans.json").read_text())["configurations"]["3d_fullres"]["patch_size"]
    x = torch.randn(1, 1, *patch)
    with torch.no_grad():
        expected = trained(x)
        torch.testing.assert_close(network.eval()(x), expected, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(scripted(x), expected, atol=1e-4, rtol=1e-4)


def test_import_of_an_nnunet_resenc_results_folder(resenc_run, tmp_path):
    fold = resenc_run["fold"]
    nnunet = tmp_path / f"nnUNetTrainer__{PLANS}__3d_fullres"
    (nnunet / "fold_0").mkdir(parents=True)
    shutil.copyfile(fold.parent / "plans.json", nnunet / "plans.json")
    shutil.copyfile(fold.parent / "dataset.json", nnunet / "dataset.json")
    ours = network_from_plans(nnunet / "plans.json", nnunet / "dataset.json", "3d_fullres")
    ours.load_state_dict(torch.load(fold / "checkpoint_final.pth", weights_only=True)["network_weights"])
    nnunet_weights = monai_to_nnunet_state_dict(ours)  # nnU-Net's layout, aliases included
    assert any(".all_modules." in k for k in nnunet_weights) and any(k.startswith("decoder.encoder.") for k in
                                                                     nnunet_weights)
    torch.save({"network_weights": nnunet_weights, "optimizer_state": {}, "grad_scaler_state": None, "logging": {},
                "_best_ema": None, "current_epoch": 1, "trainer_name": "nnUNetTrainer",
                "init_args": {"configuration": "3d_fullres", "fold": 0},
                "inference_allowed_mirroring_axes": (0, 1, 2)}, nnunet / "fold_0" / "checkpoint_final.pth")
    zip_file = tmp_path / "Imported.zip"
    assert main(["import-nnunet", str(nnunet), "-o", str(zip_file)]) == 0
    with zipfile.ZipFile(zip_file) as z:
        state = torch.load(z.open("Imported/models/model.pt"), weights_only=True)
        inference = yaml.safe_load(z.read("Imported/configs/inference.yaml"))
    assert inference["network_def"]["network"]["_target_"].endswith("ResidualEncoderUNet")
    imported = network_from_plans(nnunet / "plans.json", nnunet / "dataset.json", "3d_fullres")
    imported.load_state_dict(state)
    patch = json.loads((nnunet / "plans.json").read_text())["configurations"]["3d_fullres"]["patch_size"]
    x = torch.randn(1, 1, *patch)
    with torch.no_grad():
        torch.testing.assert_close(imported(x), ours.eval()(x), atol=1e-5, rtol=1e-5)


def test_model_zip_holds_weights_nnunet_loads_strictly(resenc_run, tmp_path, monkeypatch):
    """nnUNetv2_export_model_to_zip of a ResEnc fold: the checkpoint has nnU-Net's keys with its alias keys (nnU-Net's
    ResidualEncoderUNet loads strictly), and this package reads the zip's checkpoint back to the same network."""
    root = resenc_run["root"]
    monkeypatch.setenv("nnUNet_results", str(root / "results"))
    monkeypatch.setenv("nnUNet_preprocessed", str(root / "nnUNet_preprocessed"))
    zip_file = tmp_path / "ResEnc_nnunet.zip"
    assert main(["export_model_to_zip", "-d", "998", "-o", str(zip_file), "-c", "3d_fullres", "-f", "0",
                 "-p", PLANS]) == 0
    fold = resenc_run["fold"]
    member = f"Dataset998_Synthetic/nnUNetTrainer__{PLANS}__3d_fullres/fold_0/checkpoint_final.pth"
    with zipfile.ZipFile(zip_file) as z:
        exported = torch.load(z.open(member), weights_only=True)
    ours = network_from_plans(fold.parent / "plans.json", fold.parent / "dataset.json", "3d_fullres")
    ours.load_state_dict(torch.load(fold / "checkpoint_final.pth", weights_only=True)["network_weights"])
    expected = monai_to_nnunet_state_dict(ours)  # nnU-Net's layout (tested against nnU-Net's own state dicts)
    assert set(exported["network_weights"]) == set(expected)
    for key, tensor in expected.items():
        assert torch.equal(exported["network_weights"][key], tensor), key
    assert exported["init_args"]["configuration"] == "3d_fullres"
