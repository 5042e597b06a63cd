"""A user's trainer configs are found by their plain name (environment variable, entry point of an installed
package) and name the output folder; prediction and exported zips build the run's own network from the checkpoint,
with no trainer config registered; a command that fails before training leaves the fold's bundle as it was."""

import os
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import torch

from monai_nnunet.cli.main import main
from monai_nnunet.dataset.io import read_segmentation
from tests.conftest import REPO_ROOT, fold_folder
from tests.strict_yaml import load_strict

ONE_EPOCH = ["-device", "cpu", "--epochs", "1", "--iterations_per_epoch", "2", "--val_every", "1"]


def _cli(args, pythonpath, cwd, extra_env=None, timeout=900):
    env = {k: v for k, v in os.environ.items() if k != "MONAI_NNUNET_TRAINER_MODULES"}
    env.update(PYTHONPATH=os.pathsep.join([str(p) for p in pythonpath] + [str(REPO_ROOT)]), **(extra_env or {}))
    result = subprocess.run([sys.executable, "-m", "monai_nnunet", *args], cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _predict_and_check(run_env, tmp_path, trainer, pythonpath, extra_env=None):
    images = run_env["raw"] / "Dataset998_Synthetic" / "imagesTs"
    out = tmp_path / f"pred_{trainer}"
    _cli(["predict", "-i", str(images), "-o", str(out), "-d", "998", "-c", "3d_fullres", "-f", "0", "-tr", trainer,
          "-device", "cpu", "-npp", "0", "-nps", "0", "--disable_tta"], pythonpath, tmp_path, extra_env)
    written = sorted(out.glob("*.nii.gz"))
    assert len(written) == len(list(images.glob("*_0000.nii.gz")))
    return written


def test_config_registered_in_a_module_named_by_the_environment(run_env, tmp_path):
    (tmp_path / "myconfigs.py").write_text(textwrap.dedent("""
        from monai_nnunet.losses import DC_and_Blob_CE_loss
        from monai_nnunet.training.configs import TRAINER_CONFIGS, TrainerConfig

        TRAINER_CONFIGS["myblob"] = TrainerConfig(loss=DC_and_Blob_CE_loss, loss_kwargs={"weight_blob": 0.5})
    """))
    env = {"MONAI_NNUNET_TRAINER_MODULES": "myconfigs"}
    _cli(["train", "998", "3d_fullres", "0", "-tr", "myblob", *ONE_EPOCH], [tmp_path], tmp_path, env)
    folder = fold_folder(run_env["results"], trainer="myblob")
    final = torch.load(folder / "checkpoint_final.pth", weights_only=True)
    assert final["trainer_name"] == "myblob"
    text = (folder / "configs" / "train.yaml").read_text()
    loss = load_strict(text)["loss#loss"]  # each key once
    assert loss["_target_"] == "monai_nnunet.losses.DC_and_Blob_CE_loss" and loss["weight_blob"] == 0.5
    assert "LabelToBlobsd" in text  # the loader precomputes the blobs for this loss
    # prediction needs neither the variable nor the module
    _predict_and_check(run_env, tmp_path, "myblob", [])


def test_config_declared_by_an_installed_package_entry_point(run_env, tmp_path):
    site = tmp_path / "site"
    (site / "mypkg").mkdir(parents=True)
    (site / "mypkg" / "__init__.py").write_text("")
    (site / "mypkg" / "configs.py").write_text(textwrap.dedent("""
        from monai_nnunet.networks import DynamicKiUNet
        from monai_nnunet.training.configs import TrainerConfig

        mykiunet = TrainerConfig(architecture=DynamicKiUNet, architecture_kwargs={"pool_type": "conv"})
    """))
    dist = site / "mypkg-0.1.dist-info"  # what pip writes for a package declaring the entry point
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mypkg\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[monai_nnunet.trainer_configs]\nmykiunet = mypkg.configs:mykiunet\n")
    _cli(["train", "998", "3d_fullres", "0", "-tr", "mykiunet", *ONE_EPOCH], [site], tmp_path)
    folder = fold_folder(run_env["results"], trainer="mykiunet")
    final = torch.load(folder / "checkpoint_final.pth", weights_only=True)
    assert final["network_def"]["_target_"].endswith("DynamicKiUNet") and final["network_def"]["pool_type"] == "conv"
    _predict_and_check(run_env, tmp_path, "mykiunet", [site])


def test_kiunet_zip_predicts_where_the_training_package_is_never_imported(run_env, tmp_path):
    assert main(["train", "998", "3d_fullres", "0", "-tr", "kiunet", *ONE_EPOCH]) == 0
    zip_file = tmp_path / "Kiunet_3d_fullres.zip"
    assert main(["export-bundle", "-d", "998", "-c", "3d_fullres", "-f", "0", "-tr", "kiunet", "-o",
                 str(zip_file)]) == 0
    with zipfile.ZipFile(zip_file) as z:
        z.extractall(tmp_path / "unzipped")
    bundle = tmp_path / "unzipped" / "Kiunet_3d_fullres"
    assert "DynamicKiUNet" in (bundle / "configs" / "inference.yaml").read_text()
    images = run_env["raw"] / "Dataset998_Synthetic" / "imagesTs"
    out = tmp_path / "zip_out"
    code = textwrap.dedent(f"""
        import sys
        from monai.bundle import ConfigWorkflow
        workflow = ConfigWorkflow(config_file="configs/inference.yaml", workflow_type="infer", logging_file=False,
                                  meta_file="configs/metadata.json", dataset_dir={str(images)!r},
                                  output_dir={str(out)!r}, device="cpu", num_workers=0, use_mirroring=False)
        workflow.initialize()
        workflow.run()
        loaded = sorted(m for m in sys.modules if m.startswith("monai_nnunet.training"))
        assert not loaded, loaded
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith("nnUNet_") and k != "MONAI_NNUNET_TRAINER_MODULES"}
    env["PYTHONPATH"] = str(REPO_ROOT)
    result = subprocess.run([sys.executable, "-c", code], cwd=bundle, env=env, capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    reference = tmp_path / "predict_out"
    assert main(["predict", "-i", str(images), "-o", str(reference), "-d", "998", "-c", "3d_fullres", "-f", "0",
                 "-tr", "kiunet", "-device", "cpu", "-npp", "0", "-nps", "0", "--disable_tta"]) == 0
    for ref in sorted(reference.glob("*.nii.gz")):
        np.testing.assert_array_equal(read_segmentation(out / ref.name)[0], read_segmentation(ref)[0])


def test_a_failing_command_leaves_the_trained_folds_bundle(run_env, tmp_path, capsys):
    assert main(["train", "998", "3d_fullres", "0", *ONE_EPOCH]) == 0
    folder = fold_folder(run_env["results"])
    train_yaml = (folder / "configs" / "train.yaml").read_text()
    metadata = (folder / "configs" / "metadata.json").read_text()
    bad = tmp_path / "not_a_checkpoint.pth"
    bad.write_bytes(os.urandom(256))
    assert main(["train", "998", "3d_fullres", "0", "-pretrained_weights", str(bad), *ONE_EPOCH]) == 1
    assert str(bad) in capsys.readouterr().err
    assert main(["train", "998", "3d_fullres", "0", "--val", "-device", "cpu"]) == 0
    assert main(["train", "998", "3d_fullres", "0", "-c", *ONE_EPOCH, "--epochs", "2"]) == 0
    assert (folder / "configs" / "train.yaml").read_text() == train_yaml
    assert (folder / "configs" / "metadata.json").read_text() == metadata
    # the -c run's changed setting is recorded beside the bundle, and the two together are the run
    assert "epochs: 2" in (folder / "configs" / "overrides.yaml").read_text()
    assert torch.load(folder / "checkpoint_final.pth", weights_only=True)["epoch"] == 2


def test_best_checkpoint_records_the_epoch_of_its_weights(run_env):
    assert main(["train", "998", "3d_fullres", "0", *ONE_EPOCH]) == 0
    folder = fold_folder(run_env["results"])
    best = torch.load(folder / "checkpoint_best.pth", weights_only=True)
    final = torch.load(folder / "checkpoint_final.pth", weights_only=True)
    assert all(torch.equal(best["network_weights"][k], final["network_weights"][k]) for k in final["network_weights"])
    assert best["epoch"] == final["epoch"] == 1
