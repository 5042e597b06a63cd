"""Files from elsewhere are data: a payload planted in a checkpoint, in plans.json or in a recorded network never
runs, in any command that reads it; each is refused with one line naming the file."""

import json
import os
import shutil

import pytest
import torch

from monai_nnunet.cli.main import main

ONE_EPOCH = ["-device", "cpu", "--epochs", "1", "--iterations_per_epoch", "2", "--val_every", "1"]


class _Payload:
    """Unpickling this creates a marker file (what a malicious checkpoint would do with os.system)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture
def trained(run_env, trained_fold, tmp_path):
    return {"fold": trained_fold, "marker": tmp_path / "payload_ran", **run_env}


def _plant_checkpoint(path, marker):
    state = torch.load(path, weights_only=True)
    state["logging"] = {"payload": _Payload(marker)}
    torch.save(state, path)


def _commands(trained, tmp_path, checkpoint):
    images = trained["raw"] / "Dataset998_Synthetic" / "imagesTs"
    return {
        "predict": ["predict", "-i", str(images), "-o", str(tmp_path / "out"), "-d", "998", "-c", "3d_fullres",
                    "-f", "0", "-device", "cpu", "-npp", "0", "-nps", "0", "--disable_tta"],
        "export-bundle": ["export-bundle", "-d", "998", "-c", "3d_fullres", "-f", "0", "-o", str(tmp_path / "a.zip")],
        "import-nnunet": ["import-nnunet", str(trained["fold"].parent), "-o", str(tmp_path / "b.zip")],
        "pretrained": ["train", "998", "2d", "0", "-pretrained_weights", str(checkpoint), *ONE_EPOCH],
    }


@pytest.mark.parametrize("command", ["predict", "export-bundle", "import-nnunet", "pretrained"])
def test_a_pickle_payload_in_a_checkpoint_never_runs(trained, tmp_path, capsys, command):
    checkpoint = trained["fold"] / "checkpoint_final.pth"
    _plant_checkpoint(checkpoint, trained["marker"])
    assert main(_commands(trained, tmp_path, checkpoint)[command]) == 1
    err = capsys.readouterr().err
    assert str(checkpoint) in err and "refused" in err and len(err.strip().splitlines()) == 1
    assert not trained["marker"].exists()


@pytest.mark.parametrize("command", ["predict", "export-bundle", "import-nnunet"])
def test_random_bytes_as_a_checkpoint_give_one_line(trained, tmp_path, capsys, command):
    checkpoint = trained["fold"] / "checkpoint_final.pth"
    checkpoint.write_bytes(os.urandom(4096))
    assert main(_commands(trained, tmp_path, checkpoint)[command]) == 1
    err = capsys.readouterr().err
    assert str(checkpoint) in err and len(err.strip().splitlines()) == 1


def test_a_dotted_name_in_a_recorded_network_or_in_plans_is_not_resolved(trained, tmp_path, capsys):
    checkpoint = trained["fold"] / "checkpoint_final.pth"
    state = torch.load(checkpoint, weights_only=True)
    state["network_def"]["nonlin"] = "os.system"
    state["network_def"]["nonlin_kwargs"] = {"command": f"touch {trained['marker']}"}
    torch.save(state, checkpoint)
    assert main(_commands(trained, tmp_path, checkpoint)["predict"]) == 1
    assert "nonlin='os.system' is not an allowed operator" in capsys.readouterr().err
    # the plans' architecture block (used for checkpoints that record no network) is data too
    del state["network_def"]
    torch.save(state, checkpoint)
    plans_file = trained["fold"].parent / "plans.json"
    plans = json.loads(plans_file.read_text())
    arch = plans["configurations"]["3d_fullres"]["architecture"]["arch_kwargs"]
    arch["nonlin"], arch["nonlin_kwargs"] = "os.system", {"command": f"touch {trained['marker']}"}
    plans_file.write_text(json.dumps(plans))
    assert main(_commands(trained, tmp_path, checkpoint)["import-nnunet"]) == 1
    assert "os.system" in capsys.readouterr().err
    assert not trained["marker"].exists()


def test_any_garbage_is_a_checkpoint_error(tmp_path):
    """Random and truncated bytes fail in many ways inside torch's unpickler; every one is one CheckpointError."""
    import random

    from monai_nnunet.utils.checkpoints import CheckpointError, load_checkpoint

    rng = random.Random(0)
    valid = tmp_path / "valid.pth"
    torch.save({"network_weights": {"w": torch.zeros(3)}}, valid)
    payloads = [bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 4096))) for _ in range(30)]
    payloads += [valid.read_bytes()[:n] for n in (10, 100, 400)]
    for i, payload in enumerate(payloads):
        path = tmp_path / f"garbage_{i}.pth"
        path.write_bytes(payload)
        with pytest.raises(CheckpointError, match=str(path)):
            load_checkpoint(path)


# ---- the network a checkpoint records is data: nothing untrusted is imported, no expression reaches a bundle -----
ZEN = "Beautiful is better than ugly"
PLANTED = '''
import torch
open({marker!r}, "w").write("imported")


class Net(torch.nn.Module):
    def __init__(self, **kwargs):
        super().__init__()
'''


def _record(trained, **changes):
    checkpoint = trained["fold"] / "checkpoint_final.pth"
    state = torch.load(checkpoint, weights_only=True)
    state["network_def"].update(changes)
    torch.save(state, checkpoint)
    return checkpoint


@pytest.mark.parametrize("command", ["predict", "export-bundle", "import-nnunet"])
def test_a_recorded_network_outside_the_trusted_modules_is_never_imported(trained, tmp_path, capsys, command):
    checkpoint = _record(trained, _target_="this.Net")
    assert main(_commands(trained, tmp_path, checkpoint)[command]) == 1
    captured = capsys.readouterr()
    assert ZEN not in captured.out + captured.err  # importing `this` prints the Zen of Python
    assert "'this.Net' is not in a trusted network module" in captured.err
    assert str(checkpoint) in captured.err and len(captured.err.strip().splitlines()) == 1


def test_a_trusted_module_in_the_working_directory_is_not_imported(trained, tmp_path, capsys, monkeypatch):
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "plantednet.py").write_text(PLANTED.format(marker=str(trained["marker"])))
    monkeypatch.chdir(workdir)
    monkeypatch.syspath_prepend(str(workdir))  # as `python -m` puts the working directory first
    monkeypatch.setenv("MONAI_NNUNET_NETWORK_MODULES", "plantednet")  # even when the user trusts the name
    checkpoint = _record(trained, _target_="plantednet.Net")
    assert main(_commands(trained, tmp_path, checkpoint)["predict"]) == 1
    err = capsys.readouterr().err
    assert "would be imported from" in err and "the working directory or nnUNet_results" in err
    assert not trained["marker"].exists()


def test_a_package_inside_an_installed_model_is_not_imported(trained, tmp_path, capsys, monkeypatch):
    # a model zip that carried a package: installed under nnUNet_results, importable when that folder is on the path
    package = trained["fold"].parent / "plantedpkg"
    package.mkdir()
    (package / "__init__.py").write_text(PLANTED.format(marker=str(trained["marker"])))
    monkeypatch.syspath_prepend(str(trained["fold"].parent))
    monkeypatch.setenv("MONAI_NNUNET_NETWORK_MODULES", "plantedpkg")
    checkpoint = _record(trained, _target_="plantedpkg.Net")
    assert main(_commands(trained, tmp_path, checkpoint)["predict"]) == 1
    assert "would be imported from" in capsys.readouterr().err
    assert not trained["marker"].exists()


@pytest.mark.parametrize("command", ["predict", "export-bundle", "import-nnunet"])
@pytest.mark.parametrize("value", ["$__import__('pathlib').Path({marker!r}).touch()", "@num_classes",
                                   {"_target_": "pathlib.Path", "args": "{marker}"}])
def test_an_expression_in_recorded_arguments_is_refused(trained, tmp_path, capsys, command, value):
    value = value.format(marker=str(trained["marker"])) if isinstance(value, str) else value
    checkpoint = _record(trained, features_per_stage=value)
    assert main(_commands(trained, tmp_path, checkpoint)[command]) == 1
    err = capsys.readouterr().err
    assert str(checkpoint) in err and "network_def#features_per_stage" in err
    assert len(err.strip().splitlines()) == 1
    assert not list(tmp_path.glob("*.zip"))  # never copied into a bundle
    assert not trained["marker"].exists()


def test_a_namespace_package_in_the_working_directory_is_not_imported(trained, tmp_path, capsys, monkeypatch):
    workdir = tmp_path / "work"
    (workdir / "plantedns").mkdir(parents=True)  # no __init__.py: a namespace package
    (workdir / "plantedns" / "nets.py").write_text(PLANTED.format(marker=str(trained["marker"])))
    monkeypatch.chdir(workdir)
    monkeypatch.syspath_prepend(str(workdir))
    monkeypatch.setenv("MONAI_NNUNET_NETWORK_MODULES", "plantedns")
    checkpoint = _record(trained, _target_="plantedns.nets.Net")
    assert main(_commands(trained, tmp_path, checkpoint)["predict"]) == 1
    assert "would be imported from" in capsys.readouterr().err
    assert not trained["marker"].exists()
