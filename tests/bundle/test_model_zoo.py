"""Exported bundles ship like the model zoo's: each architecture's zip passes the zoo's own checks, its
``network_def`` returns one full-resolution tensor, ``monai.bundle.onnx_export`` works from the metadata alone, and
the ONNX bundle predicts what the PyTorch bundle predicts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser, onnx_export

from monai_nnunet.cli.main import main
from monai_nnunet.dataset.io import read_segmentation
from tests.bundle.zoo_checks import run_model_zoo_checks
from tests.conftest import REPO_ROOT

ONE_EPOCH = ["-device", "cpu", "--epochs", "1", "--iterations_per_epoch", "1", "--val_every", "1"]
TRAINERS = {"nnUNetTrainer": "PlansDynUNet", "kiunet_minimal": "DynamicKiUNet", "uiunet_minimal": "DynamicUIUNet"}


@pytest.fixture(scope="module")
def exports(tmp_path_factory, preprocessed_synthetic):
    """One short training per architecture, each exported with TorchScript and ONNX."""
    root = tmp_path_factory.mktemp("zoo")
    env = {"nnUNet_raw": str(preprocessed_synthetic["raw"]), "nnUNet_preprocessed": str(preprocessed_synthetic["preprocessed"]),
           "nnUNet_results": str(root / "results"), "nnUNet_n_proc_DA": "0", "nnUNet_def_n_proc": "1"}
    zips = {}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        for trainer in TRAINERS:
            assert main(["train", "998", "3d_fullres", "0", "-tr", trainer, *ONE_EPOCH]) == 0
            zips[trainer] = root / f"Synthetic_{trainer}.zip"
            assert main(["export-bundle", "-d", "998", "-c", "3d_fullres", "-f", "0", "-tr", trainer, "-o",
                         str(zips[trainer]), "--torchscript", "--onnx"]) == 0
    models = root / "models"
    for z in zips.values():
        with zipfile.ZipFile(z) as f:
            f.extractall(models)
    return {"models": models, "raw": preprocessed_synthetic["raw"] / "Dataset998_Synthetic", "root": root}


@pytest.mark.parametrize("trainer", list(TRAINERS))
def test_every_architecture_passes_the_model_zoo_checks(exports, trainer):
    bundle = f"Synthetic_{trainer}"
    run_model_zoo_checks(exports["models"], bundle)
    path = exports["models"] / bundle
    metadata = json.loads((path / "configs" / "metadata.json").read_text())
    image, pred = metadata["network_data_format"]["inputs"]["image"], metadata["network_data_format"]["outputs"]["pred"]
    plans = json.loads((path / "configs" / "plans.json").read_text())["configurations"]["3d_fullres"]
    strides = plans["architecture"]["arch_kwargs"]["strides"]
    assert image["spatial_shape"] == [f"{int(np.prod([s[a] for s in strides]))}*(n+1)" for a in range(3)]
    assert pred["num_channels"] == 3 and pred["dtype"] == "float32"
    # network_def is the run's own architecture and returns one full-resolution tensor
    parser = ConfigParser()
    parser.read_config(str(path / "configs" / "inference.yaml"))
    network = parser.get_parsed_content("network_def")
    assert type(network).__mro__[1].__name__ == TRAINERS[trainer]
    network.load_state_dict(torch.load(path / "models" / "model.pt", weights_only=True))
    x = torch.randn(1, 1, *plans["patch_size"])
    with torch.no_grad():
        out = network.eval()(x)
        assert torch.is_tensor(out) and out.shape == (1, 3, *plans["patch_size"])
        scripted = torch.jit.load(str(path / "models" / "model.ts"))
        torch.testing.assert_close(scripted(x), out, rtol=1e-4, atol=1e-4)
    # monai.bundle.onnx_export from the metadata alone (no input shape given)
    onnx_export(net_id="network_def", filepath=str(path / "models" / "from_metadata.onnx"),
                ckpt_file=str(path / "models" / "model.pt"), meta_file=str(path / "configs" / "metadata.json"),
                config_file=str(path / "configs" / "inference.yaml"), bundle_root=str(path))
    assert (path / "models" / "from_metadata.onnx").stat().st_size > 1000
    # the shipped ONNX model: ONNX Runtime's logits equal PyTorch's
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path / "models" / "model.onnx"), providers=["CPUExecutionProvider"])
    ort_out = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    np.testing.assert_allclose(ort_out, out.numpy(), rtol=1e-3, atol=1e-4)


def test_onnx_bundle_predicts_what_the_pytorch_bundle_predicts(exports, tmp_path):
    bundle = exports["models"] / "Synthetic_nnUNetTrainer"
    env = {k: v for k, v in os.environ.items() if not k.startswith("nnUNet_")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    images = exports["raw"] / "imagesTs"
    outputs = {}
    for name, files in (("torch", "configs/inference.yaml"),
                        ("onnx", "['configs/inference.yaml','configs/inference_onnx.yaml']")):
        outputs[name] = tmp_path / name
        run = subprocess.run([sys.executable, "-m", "monai.bundle", "run", "--config_file", files, "--dataset_dir",
                              str(images), "--output_dir", str(outputs[name]), "--num_workers", "0"], cwd=bundle,
                             env=env, capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stderr[-3000:]
    cases = sorted(p.name for p in outputs["torch"].glob("*.nii.gz"))
    assert cases and cases == sorted(p.name for p in outputs["onnx"].glob("*.nii.gz"))
    for case in cases:
        a, b = (read_segmentation(outputs[n] / case)[0] for n in ("torch", "onnx"))
        assert np.array_equal(a, b), case
