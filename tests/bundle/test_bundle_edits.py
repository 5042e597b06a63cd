"""Editing a fold's bundle changes what trains: the loss, the optimizer, the LR schedule, the network, an
augmentation transform and an extra handler, each replaced on the ``monai.bundle run`` command line or in a merged
second file, with an observable effect."""

import os
import subprocess
import sys
import textwrap

import pytest
import torch
import yaml

from tests.conftest import REPO_ROOT

MYPKG = '''
import torch
from torch.nn.modules.loss import _Loss
from monai.transforms import MapTransform

CALLS = "{calls}"


def _mark(what):
    with open(CALLS, "a") as f:
        f.write(what + "\\n")


class MyLoss(_Loss):
    """Cross-entropy on the full-resolution output only."""

    def forward(self, input, target):
        _mark("loss")
        input = input[0] if isinstance(input, (list, tuple)) else input
        target = target[0] if isinstance(target, (list, tuple)) else target
        return torch.nn.functional.cross_entropy(input, target[:, 0].long())


class MarkingTransformd(MapTransform):
    def __call__(self, data):
        _mark("transform")
        return dict(data)
'''


@pytest.fixture
def fold(run_env, trained_fold, tmp_path, monkeypatch):
    """A fresh run's fold folder (trained for one epoch), and a user package on the path."""
    package = tmp_path / "userpkg"
    package.mkdir()
    calls = tmp_path / "calls.txt"
    (package / "mypkg.py").write_text(MYPKG.format(calls=calls))
    monkeypatch.syspath_prepend(str(package))
    folder = trained_fold
    return {"folder": folder, "calls": calls, "pythonpath": f"{package}{os.pathsep}{REPO_ROOT}"}


def _bundle_run(fold, *args, files=("configs/train.yaml",)):
    """The fold's bundle run in place, trained again with the edit (``--overwrite True``)."""
    env = dict(os.environ, PYTHONPATH=fold["pythonpath"])
    config = files[0] if len(files) == 1 else "[" + ",".join(f"'{f}'" for f in files) + "]"
    result = subprocess.run([sys.executable, "-m", "monai.bundle", "run", "--config_file", config,
                             "--overwrite", "True", "--epochs", "1", "--iterations_per_epoch", "2",
                             "--val_interval", "1", *args],
                            cwd=fold["folder"], env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _calls(fold, what):
    return fold["calls"].read_text().splitlines().count(what) if fold["calls"].is_file() else 0


def _final(fold):
    return torch.load(fold["folder"] / "checkpoint_final.pth", weights_only=True)


def test_train_yaml_names_every_component(fold):
    text = (fold["folder"] / "configs" / "train.yaml").read_text()
    assert "nnunet_trainer" not in text
    config = yaml.safe_load(text)
    assert config["network_def"]["_target_"] == "monai_nnunet.networks.PlansDynUNet"
    assert config["optimizer"]["_target_"] == "torch.optim.SGD"
    assert config["loss"]["loss"]["_target_"] == "monai_nnunet.losses.DC_and_CE_loss"
    assert config["lr_scheduler"]["_target_"] == "monai_nnunet.training.PolyLRScheduler"
    assert config["train"]["trainer"]["_target_"] == "monai_nnunet.training.NnUNetSupervisedTrainer"


def test_replacing_the_loss_on_the_command_line(fold):
    _bundle_run(fold, "--loss", "{'_target_': 'mypkg.MyLoss'}")
    assert _calls(fold, "loss") >= 2  # every training iteration (and the validation patches)


def test_replacing_the_optimizer_and_its_lr(fold):
    _bundle_run(fold, "--optimizer",
                "{'_target_': 'torch.optim.Adam', 'params': '$@network.parameters()', 'lr': 0.0005}")
    final = _final(fold)
    assert "betas" in final["optimizer_state"]["param_groups"][0]  # Adam
    assert final["logging"]["lrs"][0] == pytest.approx(0.0005)
    log = (fold["folder"] / "training_log.txt").read_text().splitlines()
    assert " lr 0.0005 " in [line for line in log if " train_loss " in line][-1]


def test_replacing_the_lr_scheduler(fold):
    _bundle_run(fold, "--lr_scheduler", "{'_target_': 'torch.optim.lr_scheduler.StepLR', 'optimizer': '@optimizer', "
                                        "'step_size': 1, 'gamma': 0.5}")
    lrs = _final(fold)["logging"]["iteration_lrs"][-2:]
    assert lrs == pytest.approx([0.01, 0.005])  # StepLR halves the rate after every iteration


def test_replacing_the_network(fold):
    _bundle_run(fold, "--network_def#_target_", "monai_nnunet.networks.custom.DynamicKiUNet")
    final = _final(fold)
    assert final["network_def"]["_target_"].endswith("DynamicKiUNet")
    assert any("kinet" in k.lower() or "crfb" in k.lower() for k in final["network_weights"])


def test_replacing_one_augmentation_transform(fold):
    # the first intensity augmentation (Gaussian noise) becomes the user's transform
    _bundle_run(fold, "--train#augmentation#1", "{'_target_': 'mypkg.MarkingTransformd', 'keys': 'image'}")
    assert _calls(fold, "transform") >= 2 * 2  # every sample of both training batches


def test_monai_dice_ce_without_deep_supervision(fold):
    _bundle_run(fold, "--deep_supervision", "False", "--loss",
                "{'_target_': 'monai.losses.DiceCELoss', 'to_onehot_y': True, 'softmax': True}")
    final = _final(fold)
    assert final["epoch"] == 1 and final["network_def"]["deep_supervision"] is False
    assert (fold["folder"] / "validation_raw" / "summary.json").is_file()


def test_tensorboard_handler_from_a_merged_file(fold):
    _bundle_run(fold, files=("configs/train.yaml", "configs/tensorboard.yaml"))
    events = list((fold["folder"] / "tensorboard").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0


def test_a_merged_second_file_replaces_the_loss(fold, tmp_path):
    second = fold["folder"] / "configs" / "my_loss.yaml"
    second.write_text(textwrap.dedent("""
        loss:
          _target_: mypkg.MyLoss
    """))
    _bundle_run(fold, files=("configs/train.yaml", "configs/my_loss.yaml"))
    assert _calls(fold, "loss") >= 2


def test_a_boolean_given_as_a_lowercase_string_is_refused(fold):
    env = dict(os.environ, PYTHONPATH=fold["pythonpath"])
    result = subprocess.run([sys.executable, "-m", "monai.bundle", "run", "--config_file", "configs/train.yaml",
                             "--deep_supervision", "false"], cwd=fold["folder"], env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode != 0
    assert "run parameter deep_supervision must be true or false, got 'false'" in result.stderr + result.stdout
