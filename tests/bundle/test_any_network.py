"""Any network round-trips: a fold's bundle retrained with a MONAI network (SegResNet, BasicUNet, DynUNet with its
deep supervision, UNet) or a user's class from MONAI's command line records that network as data in its
checkpoints; nnUNetv2_predict, export-bundle (the zip run by MONAI's bundle CLI) and nnUNetv2_export_model_to_zip
(installed, predicted from its model folder) build it and give the same segmentation."""

import json
import os
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch

from monai_nnunet.dataset.io import read_segmentation
from tests.conftest import REPO_ROOT, fold_folder

pytestmark = pytest.mark.slow

USER_NETWORK = '''
import torch


class TwoLayerNet(torch.nn.Module):
    """A user's network: no deep supervision, not from any registry."""

    def __init__(self, in_channels, out_channels, width=8):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Conv3d(in_channels, width, 3, padding=1), torch.nn.LeakyReLU(),
                                        torch.nn.Conv3d(width, out_channels, 1))

    def forward(self, x):
        return self.body(x)
'''

#: the networks also shared as nnU-Net shares models (the same path for every class: two of them keep the test short)
NNUNET_ZIP_LEG = ("segresnet", "usernet")
NETWORKS = {
    "segresnet": ("{'_target_': 'monai.networks.nets.SegResNet', 'spatial_dims': 3, 'in_channels': "
                  "'@num_input_channels', 'out_channels': '@num_classes', 'init_filters': 8}",
                  {"_target_": "monai.networks.nets.SegResNet", "spatial_dims": 3, "in_channels": 1,
                   "out_channels": 3, "init_filters": 8}),
    "basicunet": ("{'_target_': 'monai.networks.nets.BasicUNet', 'spatial_dims': 3, 'in_channels': 1, "
                  "'out_channels': '@num_classes', 'features': [8, 8, 16, 16, 32, 8], 'norm': 'batch'}",
                  {"_target_": "monai.networks.nets.BasicUNet", "spatial_dims": 3, "in_channels": 1,
                   "out_channels": 3, "features": [8, 8, 16, 16, 32, 8], "norm": "batch"}),
    # deep supervision MONAI's way: its heads stacked at full resolution in training, one output in eval mode
    "dynunet": ("{'_target_': 'monai.networks.nets.DynUNet', 'spatial_dims': 3, 'in_channels': 1, 'out_channels': 3, "
                "'kernel_size': [3, 3, 3], 'strides': [1, 2, 2], 'upsample_kernel_size': [2, 2], "
                "'filters': [8, 16, 32], 'deep_supervision': True, 'deep_supr_num': 1}",
                {"_target_": "monai.networks.nets.DynUNet", "spatial_dims": 3, "in_channels": 1, "out_channels": 3,
                 "kernel_size": [3, 3, 3], "strides": [1, 2, 2], "upsample_kernel_size": [2, 2],
                 "filters": [8, 16, 32], "deep_supervision": True, "deep_supr_num": 1}),
    "unet": ("{'_target_': 'UNet', 'spatial_dims': 3, 'in_channels': 1, 'out_channels': 3, "
             "'channels': [8, 16, 32], 'strides': [2, 2]}",
             {"_target_": "monai.networks.nets.UNet", "spatial_dims": 3, "in_channels": 1, "out_channels": 3,
              "channels": [8, 16, 32], "strides": [2, 2]}),
    "usernet": ("{'_target_': 'usernets.TwoLayerNet', 'in_channels': '@num_input_channels', "
                "'out_channels': '@num_classes'}",
                {"_target_": "usernets.TwoLayerNet", "in_channels": 1, "out_channels": 3}),
}


@pytest.fixture(scope="module")
def base(tmp_path_factory, preprocessed_synthetic, trained_template):
    """A copy of the session's trained fold (the plain U-Net), the user's network module, and the environment of
    every command."""
    root = tmp_path_factory.mktemp("any_network")
    (root / "usernets.py").write_text(USER_NETWORK)
    shutil.copytree(trained_template, root / "results")
    env = {"nnUNet_raw": str(preprocessed_synthetic["raw"]),
           "nnUNet_preprocessed": str(preprocessed_synthetic["preprocessed"]),
           "nnUNet_results": str(root / "results"), "nnUNet_n_proc_DA": "0", "nnUNet_def_n_proc": "1",
           "PYTHONPATH": os.pathsep.join([str(root), str(REPO_ROOT)]), "MONAI_NNUNET_NETWORK_MODULES": "usernets"}
    work = root / "work"
    work.mkdir()
    return {"root": root, "env": env, "fold": fold_folder(root / "results"), "work": work,
            "images": preprocessed_synthetic["raw"] / "Dataset998_Synthetic" / "imagesTs"}


def _run(base, args, cwd=None, env=None):
    result = subprocess.run([sys.executable, "-m", *args], cwd=cwd or base["work"],
                            env={**os.environ, **base["env"], **(env or {})}, capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _segmentations(folder):
    return {p.name: read_segmentation(p)[0] for p in sorted(folder.glob("*.nii.gz"))}


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_a_network_trained_from_the_bundle_predicts_exports_and_shares(base, name):
    override, record = NETWORKS[name]
    results = base["root"] / "results"
    target = results / "Dataset998_Synthetic" / f"{name}__nnUNetPlans__3d_fullres" / "fold_0"
    # the fold's bundle, retrained from MONAI's command line into a new results folder (deep supervision left on:
    # these networks have none, their one output is scored against the full-resolution target), with a patch that
    # SegResNet's three halvings divide (the planned [20, 28, 20] does not)
    _run(base, ["monai.bundle", "run", "--config_file", "configs/train.yaml", "--output_dir", str(target),
                "--epochs", "1", "--iterations_per_epoch", "2", "--val_interval", "1", "--network_def", override,
                "--patch_size", "[24, 32, 24]"], cwd=base["fold"])
    final = torch.load(target / "checkpoint_final.pth", weights_only=True)
    assert final["network_def"] == record
    assert (target.parent / "dataset.json").is_file()
    plans = json.loads((target.parent / "plans.json").read_text())
    assert plans["configurations"]["3d_fullres"]["patch_size"] == [24, 32, 24]  # prediction slides the trained window

    out = base["root"] / f"out_{name}"
    _run(base, ["monai_nnunet", "predict", "-i", str(base["images"]), "-o", str(out / "predict"), "-d", "998",
                "-c", "3d_fullres", "-f", "0", "-tr", name, "-device", "cpu", "-npp", "0", "-nps", "0"])
    reference = _segmentations(out / "predict")
    assert reference and all(np.unique(s).tolist() <= [0, 1, 2] for s in reference.values())

    # the bundle zip, run by MONAI's bundle CLI
    zip_file = out / f"{name}.zip"
    _run(base, ["monai_nnunet", "export-bundle", "-d", "998", "-c", "3d_fullres", "-f", "0", "-tr", name,
                "-o", str(zip_file)])
    with zipfile.ZipFile(zip_file) as z:
        z.extractall(out / "unzipped")
    bundle = out / "unzipped" / name
    _run(base, ["monai.bundle", "run", "--config_file", "configs/inference.yaml", "--dataset_dir",
                str(base["images"]), "--output_dir", str(out / "zip")], cwd=bundle)
    others = ["zip"]
    if name in NNUNET_ZIP_LEG:
        others.append("modelfolder")
        _share_as_nnunet_does(base, name, out)
    for other in others:
        segmentations = _segmentations(out / other)
        assert segmentations.keys() == reference.keys()
        for case, seg in segmentations.items():
            np.testing.assert_array_equal(seg, reference[case], err_msg=f"{other}: {case}")


def _share_as_nnunet_does(base, name, out):
    """nnU-Net's model zip, installed into another results folder and predicted from its model folder."""
    nnunet_zip = out / "nnunet.zip"
    _run(base, ["monai_nnunet", "export_model_to_zip", "-d", "998", "-o", str(nnunet_zip), "-c", "3d_fullres",
                "-f", "0", "-tr", name])
    installed = {"nnUNet_results": str(out / "installed")}
    _run(base, ["monai_nnunet", "install_pretrained_model_from_zip", str(nnunet_zip)], env=installed)
    _run(base, ["monai_nnunet", "predict_from_modelfolder", "-i", str(base["images"]), "-o", str(out / "modelfolder"),
                "-m", str(out / "installed" / "Dataset998_Synthetic" / f"{name}__nnUNetPlans__3d_fullres"), "-f", "0",
                "-device", "cpu", "-npp", "0", "-nps", "0"], env=installed)


def test_a_users_network_is_built_only_when_its_module_is_trusted(base):
    name = "usernet"
    if not (base["root"] / "results" / "Dataset998_Synthetic" / f"{name}__nnUNetPlans__3d_fullres").is_dir():
        pytest.skip("needs the usernet run of the round-trip test")
    result = subprocess.run([sys.executable, "-m", "monai_nnunet", "predict", "-i", str(base["images"]), "-o",
                             str(base["root"] / "untrusted"), "-d", "998", "-c", "3d_fullres", "-f", "0", "-tr", name,
                             "-device", "cpu"], cwd=base["work"],
                            env={**os.environ, **base["env"], "MONAI_NNUNET_NETWORK_MODULES": ""},
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "'usernets.TwoLayerNet' is not in a trusted network module" in lines[0]
    assert "MONAI_NNUNET_NETWORK_MODULES" in lines[0]
