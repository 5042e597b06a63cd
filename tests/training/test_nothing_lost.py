"""A trained fold is never overwritten by accident, a run refuses a cache that other plans made, and outputs honour
the process umask."""

import json
import os

import pytest

from monai_nnunet.cli.main import main
from monai_nnunet.utils.files import save_json
from tests.conftest import fold_folder

ONE_EPOCH = ["-device", "cpu", "--epochs", "1", "--iterations_per_epoch", "2", "--val_every", "1"]


def test_a_trained_fold_is_not_overwritten_without_the_flag(run_env, capsys):
    assert main(["train", "998", "3d_fullres", "0", *ONE_EPOCH]) == 0
    folder = fold_folder(run_env["results"])
    before = (folder / "checkpoint_final.pth").stat().st_mtime_ns
    assert main(["train", "998", "3d_fullres", "0", *ONE_EPOCH]) == 1
    err = capsys.readouterr().err
    assert str(folder) in err and "checkpoint_final.pth" in err and "-c" in err and "--overwrite" in err
    assert (folder / "checkpoint_final.pth").stat().st_mtime_ns == before
    assert main(["train", "998", "3d_fullres", "0", *ONE_EPOCH, "--overwrite"]) == 0
    assert (folder / "checkpoint_final.pth").stat().st_mtime_ns != before


def test_a_cache_made_by_other_plans_is_refused(run_env, tmp_path, monkeypatch, capsys):
    import shutil

    pre = tmp_path / "pre"
    shutil.copytree(run_env["preprocessed"] / "Dataset998_Synthetic", pre / "Dataset998_Synthetic")
    monkeypatch.setenv("nnUNet_preprocessed", str(pre))
    # re-plan with another spacing, but do not preprocess again
    plans_file = pre / "Dataset998_Synthetic" / "nnUNetPlans.json"
    plans = json.loads(plans_file.read_text())
    plans["configurations"]["3d_fullres"]["spacing"] = [1.4, 1.4, 1.4]
    save_json(plans, plans_file)
    assert main(["train", "998", "3d_fullres", "0", *ONE_EPOCH]) == 1
    err = capsys.readouterr().err
    assert "spacing is [1.0, 1.0, 1.0] in the cache but [1.4, 1.4, 1.4] in the plans" in err
    assert "re-run nnUNetv2_preprocess -d 998 -c 3d_fullres" in err
    assert not (run_env["results"] / "Dataset998_Synthetic").exists()  # no half-made fold folder


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o002, 0o664)])
def test_written_files_honour_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        save_json({"a": 1}, tmp_path / "x.json")
    finally:
        os.umask(old)
    assert (tmp_path / "x.json").stat().st_mode & 0o777 == mode


def test_the_fine_tuning_recipe_out_of_order_names_the_missing_steps(run_env, capsys):
    from monai_nnunet.dataset.synthetic import make_synthetic_dataset

    make_synthetic_dataset(run_env["raw"], dataset_id=995, name="Target", num_cases=4, shape=(16, 16, 16),
                           num_test_cases=0)
    try:
        assert main(["move_plans_between_datasets", "-s", "998", "-t", "995", "-sp", "nnUNetPlans",
                     "-tp", "nnUNetPlans_pretrained"]) == 0
        assert main(["train", "995", "3d_fullres", "0", "-p", "nnUNetPlans_pretrained", *ONE_EPOCH]) == 1
        err = capsys.readouterr().err
        assert "nnUNetv2_extract_fingerprint -d 995" in err
        assert "nnUNetv2_preprocess -d 995 -plans_name nnUNetPlans_pretrained -c 3d_fullres" in err
        assert not (run_env["results"] / "Dataset995_Target").exists()
    finally:  # the preprocessed root is shared by the session's tests
        import shutil

        shutil.rmtree(run_env["raw"] / "Dataset995_Target", ignore_errors=True)
        shutil.rmtree(run_env["preprocessed"] / "Dataset995_Target", ignore_errors=True)
