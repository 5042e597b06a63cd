"""A fold's ``train.yaml`` is self-contained and readable: every component of a ``-tr`` config (registered from a
user's module, built in, or a subclass's hooks) is a ``_target_`` with arguments, so the bundle re-runs in a fresh
process without the module that registered it; and no key is written twice (a whole component replaces the
template's block of that key)."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from monai.bundle import ConfigParser

from monai_nnunet.bundle import TEMPLATE_BUNDLE
from monai_nnunet.bundle.run_bundle import compose_train_yaml
from monai_nnunet.losses import DC_and_Blob_CE_loss
from monai_nnunet.training import nnUNetTrainer
from monai_nnunet.training.configs import TrainerConfig, load_overlay, to_bundle_overrides
from tests.conftest import REPO_ROOT, fold_folder
from tests.strict_yaml import DuplicateKeyError, load_strict, load_strict_file

ADAMW_STEPLR = dict(optimizer=functools.partial(torch.optim.AdamW, betas=(0.9, 0.99)), initial_lr=1e-3,
                    lr_scheduler=torch.optim.lr_scheduler.StepLR, lr_scheduler_kwargs={"step_size": 2, "gamma": 0.5})


class HookedTrainer(nnUNetTrainer):
    """A subclass whose optimiser and loss hooks replace whole components of the bundle."""

    def configure_optimizers(self):
        self.optimizer = torch.optim.Adam(self.network.parameters(), lr=0.002)

    def build_loss(self):
        return super().build_loss()


def _parsed(text, tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text(text)
    parser = ConfigParser()
    parser.read_config(str(path))
    return parser


def _template_comments():
    """The template's comment lines outside the blocks nnUNetv2_train writes (run parameters, network)."""
    comments, inside = [], False
    for line in (TEMPLATE_BUNDLE / "configs" / "train.yaml").read_text().splitlines():
        if line.startswith("# >>>") or line.startswith("# <<<"):
            inside = line.startswith("# >>>")
        elif line.startswith("#") and not inside:
            comments.append(line)
    return comments


def test_strict_loader_refuses_a_duplicate_key():
    with pytest.raises(DuplicateKeyError, match="'optimizer'"):
        load_strict("optimizer: {lr: 1}\nloss: 2\noptimizer: {lr: 2}\n")
    assert load_strict("a: {b: 1}\nc: [1, 2]\n") == {"a": {"b": 1}, "c": [1, 2]}


def test_whole_components_replace_the_templates_block(tmp_path):
    parameters = {"trainer_name": "mine", "initial_lr": 0.001}
    network = {"network_def": {"_target_": "monai_nnunet.networks.PlansDynUNet"}}
    config = TrainerConfig(loss=DC_and_Blob_CE_loss({"batch_dice": True}, {}), **ADAMW_STEPLR)
    sections = [("region-based labels", load_overlay(TEMPLATE_BUNDLE / "configs" / "region_labels.yaml")),
                ("-tr mine: the trainer config", to_bundle_overrides(config, "mine")),
                ("-tr mine: a subclass", {"loss": "$@nnunet_trainer.build_loss()", "nnunet_trainer": {"_target_": "x"}})]
    text = compose_train_yaml(parameters, network, sections)
    content = load_strict(text)  # no key twice: the region section's and the config's loss#loss, optimizer, loss
    assert text.count("\noptimizer:") == 1 and text.count("\nlr_scheduler:") == 1 and text.count("\nloss:") == 1
    assert content["optimizer"]["_target_"] == "torch.optim.AdamW" and content["optimizer"]["betas"] == [0.9, 0.99]
    assert content["lr_scheduler"] == {"_target_": "torch.optim.lr_scheduler.StepLR", "optimizer": "@optimizer",
                                       "step_size": 2, "gamma": 0.5}
    assert content["loss"] == "$@nnunet_trainer.build_loss()"
    assert "loss#loss" not in content  # the subclass's whole loss replaces both sections' loss#loss
    assert content["nnunet_trainer"] == {"_target_": "x"}  # a key the template lacks is appended
    # in place, where the template declares them, under a note; the template's comments all stay
    lines = text.splitlines()
    assert lines[lines.index("optimizer:") - 1] == "# optimizer: set by -tr mine"
    assert lines.index("optimizer:") < lines.index("lr_scheduler:") < lines.index("loss: $@nnunet_trainer.build_loss()")
    assert set(_template_comments()) <= set(lines)
    parser = _parsed(text, tmp_path)
    assert parser["optimizer"]["_target_"] == "torch.optim.AdamW"


@pytest.mark.parametrize("trainer", ["kiunet", "uiunet", "blob_dice", "region_dice", "adamw_steplr", "hooked"])
def test_every_generated_train_yaml_has_each_key_once(run_env, trainer, tmp_path):
    if trainer == "hooked":
        run = HookedTrainer(998, "3d_fullres", 0, device="cpu", trainer_name="hooked")
    else:
        config = TrainerConfig(**ADAMW_STEPLR) if trainer == "adamw_steplr" else trainer
        run = nnUNetTrainer(998, "3d_fullres", 0, device="cpu", trainer_config=config, trainer_name=trainer)
    text = run.train_yaml()
    content = load_strict(text)
    assert "registered_loss" not in text
    assert set(_template_comments()) <= set(text.splitlines())
    parser = _parsed(text, tmp_path)
    if trainer == "adamw_steplr":
        assert parser["optimizer"]["_target_"] == "torch.optim.AdamW" and content["initial_lr"] == 1e-3
        assert parser["lr_scheduler"]["_target_"] == "torch.optim.lr_scheduler.StepLR"
    elif trainer == "hooked":
        assert content["optimizer"] == "$@nnunet_trainer.bundle_optimizer(@network)"
        assert content["loss"] == "$@nnunet_trainer.build_loss()"
        # the checkpoints record the rate of the subclass's own optimiser
        assert parser["checkpoint_record"]["init"]["initial_lr"] == "$@optimizer.defaults['lr']"
    else:
        assert parser["optimizer"]["_target_"] == "torch.optim.SGD"


def _subprocess(args, cwd, pythonpath, extra_env=None):
    env = {k: v for k, v in os.environ.items() if k != "MONAI_NNUNET_TRAINER_MODULES"}
    env.update(PYTHONPATH=os.pathsep.join([*map(str, pythonpath), str(REPO_ROOT)]), **(extra_env or {}))
    result = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_a_registered_config_reruns_in_a_fresh_process_without_its_module(run_env, tmp_path):
    users = tmp_path / "users"
    users.mkdir()
    (users / "myconfigs.py").write_text(textwrap.dedent("""
        import functools

        import torch

        from monai_nnunet.losses import DC_and_Blob_CE_loss
        from monai_nnunet.training.configs import TrainerConfig, register_trainer_config

        register_trainer_config("myblob", TrainerConfig(
            loss=DC_and_Blob_CE_loss({"batch_dice": True}, {}, weight_blob=0.5),
            optimizer=functools.partial(torch.optim.AdamW, betas=(0.9, 0.99)), initial_lr=1e-3,
            lr_scheduler=torch.optim.lr_scheduler.StepLR, lr_scheduler_kwargs={"step_size": 2, "gamma": 0.5}))
    """))
    _subprocess(["-m", "monai_nnunet", "train", "998", "3d_fullres", "0", "-tr", "myblob", "-device", "cpu",
                 "--epochs", "2", "--iterations_per_epoch", "2", "--val_every", "2"], tmp_path, [users],
                {"MONAI_NNUNET_TRAINER_MODULES": "myconfigs"})
    fold = fold_folder(run_env["results"], trainer="myblob")
    train_yaml = fold / "configs" / "train.yaml"
    load_strict_file(train_yaml)
    parser = ConfigParser()
    parser.read_config(str(train_yaml))
    assert parser["loss"]["loss"]["_target_"] == "monai_nnunet.losses.DC_and_Blob_CE_loss"
    assert parser["loss"]["loss"]["weight_blob"] == 0.5 and parser["loss"]["loss"]["soft_dice_kwargs"] == {
        "batch_dice": True}
    # a fresh process: neither the variable nor the module on the path, a new output folder
    rerun = tmp_path / "rerun"
    rerun.mkdir()
    _subprocess(["-m", "monai.bundle", "run", "--config_file", "configs/train.yaml", "--output_dir", str(rerun)],
                fold, [])
    for checkpoint in (fold / "checkpoint_final.pth", rerun / "checkpoint_final.pth"):
        state = torch.load(checkpoint, weights_only=True)
        group = state["optimizer_state"]["param_groups"][0]
        assert tuple(group["betas"]) == (0.9, 0.99) and "momentum" not in group  # AdamW with the partial's betas
        assert group["initial_lr"] == state["init"]["initial_lr"] == 1e-3  # the rate the optimiser had is recorded
        assert state["logging"]["iteration_lrs"] == pytest.approx([1e-3, 1e-3, 5e-4, 5e-4])  # StepLR(2, 0.5)
        assert state["lr_scheduler_state"]["step_size"] == 2
        assert state["trainer_config"]["loss"] == {"instance_of": "monai_nnunet.losses.compound:DC_and_Blob_CE_loss"}
