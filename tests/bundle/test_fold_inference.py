"""A fold folder's ``configs/inference.yaml`` predicts in place with the fold's checkpoint, as ``nnUNetv2_predict -f 0``
does; a copied results folder predicts with its own files; ``evaluate.yaml`` merged after ``inference.yaml`` (of the
fold and of an exported zip) writes ``summary.json`` beside the segmentations."""

import json
import os
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import yaml

from monai_nnunet.bundle import TEMPLATE_BUNDLE
from monai_nnunet.cli.main import main
from monai_nnunet.dataset.io import read_segmentation
from monai_nnunet.evaluation import evaluate_folder
from tests.conftest import REPO_ROOT, SHORT, fold_folder

MERGED = "['configs/inference.yaml','configs/evaluate.yaml']"


@pytest.fixture(scope="module")
def trained(tmp_path_factory, preprocessed_synthetic):
    """One short training of fold 0, its test cases predicted by nnUNetv2_predict (with mirroring), and its zip."""
    root = tmp_path_factory.mktemp("fold_inference")
    env = {"nnUNet_raw": str(preprocessed_synthetic["raw"]),
           "nnUNet_preprocessed": str(preprocessed_synthetic["preprocessed"]),
           "nnUNet_results": str(root / "results"), "nnUNet_n_proc_DA": "0", "nnUNet_def_n_proc": "1"}
    raw = preprocessed_synthetic["raw"] / "Dataset998_Synthetic"
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        assert main(["train", "998", "3d_fullres", "0", *SHORT]) == 0
        reference = root / "predict_out"
        assert main(["predict", "-i", str(raw / "imagesTs"), "-o", str(reference), "-d", "998", "-c", "3d_fullres",
                     "-f", "0", "-device", "cpu", "-npp", "0", "-nps", "0"]) == 0
        zip_file = root / "Synthetic_3d_fullres.zip"
        assert main(["export-bundle", "-d", "998", "-c", "3d_fullres", "-f", "0", "-o", str(zip_file)]) == 0
    return {"fold": fold_folder(root / "results"), "images": raw / "imagesTs", "labels": raw / "labelsTs",
            "reference": reference, "zip": zip_file}


def _bundle_run(cwd, config_file, *args):
    """``python -m monai.bundle run`` without any nnUNet_* variable (the bundle needs none)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("nnUNet_")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    return subprocess.run([sys.executable, "-m", "monai.bundle", "run", "--config_file", str(config_file),
                           "--num_workers", "0", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def _assert_same_segmentations(out, reference):
    names = sorted(p.name for p in reference.glob("*.nii.gz"))
    assert names and sorted(p.name for p in out.glob("*.nii.gz")) == names
    for name in names:
        np.testing.assert_array_equal(read_segmentation(out / name)[0], read_segmentation(reference / name)[0])


def _assert_summary(out, trained):
    summary = json.loads((out / "summary.json").read_text())
    expected = evaluate_folder(trained["labels"], trained["reference"], trained["fold"].parent / "dataset.json",
                               output_file=out.parent / f"{out.name}_expected.json", chill=True)
    assert len(summary["metric_per_case"]) == len(list(trained["images"].iterdir()))
    # the same segmentations give the same Dice and IoU per class (NaN for a class absent from both)
    assert json.dumps(summary["mean"], sort_keys=True) == json.dumps(expected["mean"], sort_keys=True)


class _UniqueKeyLoader(yaml.SafeLoader):
    def construct_mapping(self, node, deep=False):
        keys = [self.construct_object(k, deep=deep) for k, _ in node.value]
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        assert not duplicates, f"duplicate keys {duplicates} at {node.start_mark}"
        return super().construct_mapping(node, deep=deep)


def test_fold_inference_yaml_carries_the_run(trained):
    text = (trained["fold"] / "configs" / "inference.yaml").read_text()
    config = yaml.load(text, Loader=_UniqueKeyLoader)
    assert config["bundle_root"] == "$nnunet_bundle.bundle_folder()"
    assert config["checkpoint"] == "checkpoint_final.pth" and config["configuration"] == "3d_fullres"
    assert "configs/plans.json" not in text and "Hippocampus" not in text and "patch_size: [40, 56, 40]" not in text
    for name in ("inference.yaml", "evaluate.yaml", "tensorboard.yaml", "mlflow.yaml"):
        yaml.load((TEMPLATE_BUNDLE / "configs" / name).read_text(), Loader=_UniqueKeyLoader)


def test_fold_predicts_in_place_as_nnunet_predict_and_evaluates(trained, tmp_path):
    out = tmp_path / "out"
    run = _bundle_run(trained["fold"], MERGED, "--dataset_dir", str(trained["images"]), "--label_dir",
                      str(trained["labels"]), "--output_dir", str(out))
    assert run.returncode == 0, run.stderr[-3000:]
    _assert_same_segmentations(out, trained["reference"])
    _assert_summary(out, trained)


def test_copied_results_folder_predicts_with_its_own_files(trained, tmp_path):
    model_folder = trained["fold"].parent
    copy = tmp_path / "copied" / model_folder.name
    shutil.copytree(model_folder, copy)
    hidden = model_folder.parent / (model_folder.name + ".hidden")
    model_folder.rename(hidden)  # the original's checkpoints, plans and dataset.json are gone while the copy runs
    try:
        out = tmp_path / "out"
        # run from elsewhere: the bundle is the folder of the config file, not the working directory
        run = _bundle_run(tmp_path, copy / "fold_0" / "configs" / "inference.yaml", "--dataset_dir",
                          str(trained["images"]), "--output_dir", str(out))
    finally:
        hidden.rename(model_folder)
    assert run.returncode == 0, run.stderr[-3000:]
    _assert_same_segmentations(out, trained["reference"])


def test_fold_without_the_checkpoint_names_it(trained, tmp_path):
    run = _bundle_run(trained["fold"], "configs/inference.yaml", "--dataset_dir", str(trained["images"]),
                      "--output_dir", str(tmp_path / "out"), "--checkpoint", "checkpoint_missing.pth")
    assert run.returncode != 0
    line = next(line for line in run.stderr.splitlines() if line.startswith(
        "monai_nnunet.inference.model_loading.ModelLoadingError:"))
    assert str(trained["fold"] / "checkpoint_missing.pth") in line
    assert "checkpoint_best.pth, checkpoint_final.pth, checkpoint_latest.pth" in line


def test_zip_inference_and_evaluate_merged(trained, tmp_path):
    with zipfile.ZipFile(trained["zip"]) as z:
        z.extractall(tmp_path)
    bundle = tmp_path / "Synthetic_3d_fullres"
    out = tmp_path / "out"
    run = _bundle_run(bundle, MERGED, "--dataset_dir", str(trained["images"]), "--label_dir", str(trained["labels"]),
                      "--output_dir", str(out))
    assert run.returncode == 0, run.stderr[-3000:]
    _assert_same_segmentations(out, trained["reference"])
    _assert_summary(out, trained)
