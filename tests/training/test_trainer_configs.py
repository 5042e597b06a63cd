"""TrainerConfig, the TRAINER_CONFIGS registry and -tr resolution."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn as nn

from monai_nnunet.networks import DynamicKiUNet, DynamicUIUNet, PlansDynUNet
from monai_nnunet.training.configs import (
    DEFAULT_TRAINER,
    TRAINER_CONFIGS,
    TrainerConfig,
    UnknownTrainerError,
    available_trainer_configs,
    register_trainer_config,
    resolve_reference,
    resolve_trainer,
    trainer_output_folder_name,
)
from tests.networks._plans import SMALL_2D

BUILTIN = {"nnUNetTrainer", "kiunet", "kiunet_minimal", "uiunet", "uiunet_minimal", "blob_dice", "region_dice"}


@pytest.fixture(autouse=True)
def _restore_registry():
    saved = dict(TRAINER_CONFIGS)
    yield
    TRAINER_CONFIGS.clear()
    TRAINER_CONFIGS.update(saved)


class RecordingLoss(nn.Module):
    """Stands in for a compound loss; records its arguments."""

    def __init__(self, soft_dice_kwargs, ce_kwargs, weight_ce=1.0, ignore_label=None):
        super().__init__()
        self.args = dict(soft_dice_kwargs=soft_dice_kwargs, ce_kwargs=ce_kwargs, weight_ce=weight_ce,
                         ignore_label=ignore_label)


# ---- the two forms of the user documentation -------------------------------------------------------------------


def test_document_example_with_loss_class_and_kwargs():
    losses = pytest.importorskip("monai_nnunet.losses")
    config = TrainerConfig(
        architecture=DynamicKiUNet,
        architecture_kwargs={"pool_type": "max", "deep_supervision": True},
        loss=losses.DC_and_CE_loss,
        loss_kwargs={"soft_dice_kwargs": {}, "ce_kwargs": {}},
    )
    assert config.enable_deep_supervision is True
    TRAINER_CONFIGS["kiunet_doc"] = config  # the document's registration form
    assert resolve_trainer("kiunet_doc") is config
    loss = config.build_loss(soft_dice_kwargs={"batch_dice": True, "smooth": 1e-5, "do_bg": False}, ce_kwargs={},
                             weight_ce=1, weight_dice=1, ignore_label=None)
    assert isinstance(loss, losses.DC_and_CE_loss)
    net = config.build_network(SMALL_2D, 1, 3)
    assert isinstance(net, DynamicKiUNet) and net.deep_supervision and net.pool_type == "max"


def test_document_example_with_loss_instance():
    losses = pytest.importorskip("monai_nnunet.losses")
    instance = losses.DC_and_Blob_CE_loss({"batch_dice": True}, {})
    config = TrainerConfig(loss=instance)
    assert config.build_loss(soft_dice_kwargs={"batch_dice": False}) is instance
    assert config.to_dict()["loss"] == {"instance_of": "monai_nnunet.losses.compound:DC_and_Blob_CE_loss"}
    with pytest.raises(ValueError, match="instance"):
        TrainerConfig(loss=instance, loss_kwargs={"weight_blob": 2})


# ---- building ---------------------------------------------------------------------------------------------------


def test_build_loss_merges_defaults_under_loss_kwargs_and_drops_unaccepted_defaults():
    config = TrainerConfig(loss=RecordingLoss, loss_kwargs={"soft_dice_kwargs": {"smooth": 0.0}, "weight_ce": 2.0})
    loss = config.build_loss(soft_dice_kwargs={"batch_dice": True, "smooth": 1e-5}, ce_kwargs={}, weight_dice=1,
                             ignore_label=3)
    assert loss.args == {"soft_dice_kwargs": {"batch_dice": True, "smooth": 0.0}, "ce_kwargs": {}, "weight_ce": 2.0,
                         "ignore_label": 3}
    with pytest.raises(TypeError):  # a typo in loss_kwargs is never dropped silently
        TrainerConfig(loss=RecordingLoss, loss_kwargs={"weight_dcie": 1}).build_loss(soft_dice_kwargs={}, ce_kwargs={})


def test_build_loss_default_and_missing_loss():
    built = TrainerConfig().build_loss(RecordingLoss, soft_dice_kwargs={}, ce_kwargs={"label_smoothing": 0.1})
    assert isinstance(built, RecordingLoss) and built.args["ce_kwargs"] == {"label_smoothing": 0.1}
    with pytest.raises(ValueError, match="no loss"):
        TrainerConfig().build_loss(soft_dice_kwargs={})


def test_build_optimizer_and_scheduler_with_trainer_defaults():
    params = [nn.Parameter(torch.zeros(2))]
    defaults = {"lr": 0.01, "weight_decay": 3e-5, "momentum": 0.99, "nesterov": True}
    sgd = TrainerConfig().build_optimizer(params, torch.optim.SGD, **defaults)
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["momentum"] == 0.99
    adam = TrainerConfig(optimizer=torch.optim.Adam).build_optimizer(params, torch.optim.SGD, **defaults)
    assert isinstance(adam, torch.optim.Adam) and adam.defaults["lr"] == 0.01  # momentum/nesterov dropped
    step = functools.partial(torch.optim.lr_scheduler.StepLR, step_size=5)
    scheduler = TrainerConfig(lr_scheduler=step).build_lr_scheduler(adam, gamma=0.5, max_steps=1000)
    assert isinstance(scheduler, torch.optim.lr_scheduler.StepLR) and scheduler.gamma == 0.5
    with pytest.raises(ValueError, match="no optimizer"):
        TrainerConfig().build_optimizer(params)


def test_build_network_default_and_deep_supervision_override():
    net = TrainerConfig().build_network(SMALL_2D, 1, 2)
    assert isinstance(net, PlansDynUNet) and net.deep_supervision is True
    off = TrainerConfig(enable_deep_supervision=False).build_network(SMALL_2D, 1, 2)
    assert off.deep_supervision is False
    by_reference = TrainerConfig(architecture="monai_nnunet.networks.custom:DynamicUIUNet")
    assert isinstance(by_reference.build_network(SMALL_2D, 1, 2, deep_supervision=False), DynamicUIUNet)


# ---- validation -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs,error",
    [
        ({"num_epochs": 0}, ValueError),
        ({"num_epochs": True}, ValueError),
        ({"batch_size": 2.5}, ValueError),
        ({"initial_lr": 0}, ValueError),
        ({"weight_decay": -1e-5}, ValueError),
        ({"oversample_foreground_percent": 1.5}, ValueError),
        ({"patch_size": [0, 32]}, ValueError),
        ({"patch_size": [32]}, ValueError),
        ({"mirror_axes": (0, 0)}, ValueError),
        ({"mirror_axes": (3,)}, ValueError),
        ({"enable_deep_supervision": 1}, TypeError),
        ({"architecture": 42}, TypeError),
        ({"architecture": "no_module_separator"}, ValueError),
        ({"loss_kwargs": [1]}, TypeError),
        ({"architecture_kwargs": {"num_classes": 3}}, ValueError),
        ({"architecture_kwargs": {"deep_supervision": True}, "enable_deep_supervision": False}, ValueError),
        ({"description": 3}, TypeError),
    ],
)
def test_invalid_values_are_refused(kwargs, error):
    with pytest.raises(error):
        TrainerConfig(**kwargs)


def test_overrides_lists_only_what_is_set_and_normalises_sequences():
    config = TrainerConfig(num_epochs=5, patch_size=[32, 48], mirror_axes=[], optimizer="torch.optim:Adam")
    assert config.overrides() == {"num_epochs": 5, "patch_size": (32, 48), "mirror_axes": (),
                                  "optimizer": "torch.optim:Adam"}
    assert TrainerConfig().overrides() == {}


def test_to_dict_is_json_ready():
    config = TrainerConfig(architecture=DynamicKiUNet, architecture_kwargs={"kinet_max_scale": (2, 2, 1)},
                           loss=RecordingLoss, patch_size=(8, 8), description="x")
    described = json.loads(json.dumps(config.to_dict()))
    assert described["architecture"] == "monai_nnunet.networks.custom.kiunet:DynamicKiUNet"
    assert described["architecture_kwargs"] == {"kinet_max_scale": [2, 2, 1]}
    assert described["loss"].endswith(":RecordingLoss")
    assert described["patch_size"] == [8, 8] and described["num_epochs"] is None


# ---- registry ---------------------------------------------------------------------------------------------------


def test_builtin_configs_are_registered():
    assert BUILTIN <= set(available_trainer_configs())
    assert resolve_trainer() is TRAINER_CONFIGS[DEFAULT_TRAINER] is resolve_trainer("nnUNetTrainer")
    assert resolve_trainer("nnUNetTrainer").architecture is None and resolve_trainer("nnUNetTrainer").loss is None
    assert resolve_reference(resolve_trainer("kiunet").architecture) is DynamicKiUNet
    assert resolve_reference(resolve_trainer("uiunet").architecture) is DynamicUIUNet
    for name in ("kiunet_minimal", "uiunet_minimal"):
        assert resolve_trainer(name).batch_size == 2 and resolve_trainer(name).architecture_kwargs


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_every_builtin_builds_its_network(name):
    net = resolve_trainer(name).build_network(SMALL_2D, 1, 2)
    out = net.train()(torch.randn(1, 1, *SMALL_2D["patch_size"]))
    assert isinstance(out, list) and out[0].shape == (1, 2, *SMALL_2D["patch_size"])


@pytest.mark.parametrize("name,class_name", [("blob_dice", "DC_and_Blob_CE_loss"),
                                             ("region_dice", "DC_and_Region_CE_loss")])
def test_builtin_loss_configs_build_their_losses(name, class_name):
    losses = pytest.importorskip("monai_nnunet.losses")
    loss = resolve_trainer(name).build_loss(soft_dice_kwargs={"batch_dice": False, "smooth": 1e-5, "do_bg": False},
                                            ce_kwargs={}, weight_ce=1, weight_dice=1, ignore_label=None)
    assert type(loss) is getattr(losses, class_name)
    logits, target = torch.randn(1, 2, 8, 8), torch.zeros(1, 1, 8, 8)
    target[..., 2:5, 2:5] = 1
    assert torch.isfinite(loss(logits, target))


def test_register_refuses_duplicates_bad_names_and_non_configs():
    config = register_trainer_config("my_cfg", TrainerConfig(num_epochs=10))
    assert TRAINER_CONFIGS["my_cfg"] is config
    with pytest.raises(ValueError, match="already registered"):
        register_trainer_config("my_cfg", TrainerConfig())
    with pytest.raises(ValueError, match="already registered"):
        register_trainer_config("kiunet", TrainerConfig())
    for bad in ("", "a:b", "a__b", "with space", "_hidden"):
        with pytest.raises(ValueError, match="invalid trainer config name"):
            register_trainer_config(bad, TrainerConfig())
    with pytest.raises(TypeError):
        register_trainer_config("not_a_config", {"loss": None})


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(UnknownTrainerError) as caught:
        resolve_trainer("kiunett")
    message = str(caught.value)
    for known in BUILTIN:
        assert known in message
    assert "package.module:NAME" in message
    assert isinstance(caught.value, KeyError) and isinstance(caught.value, ValueError)


def test_module_name_imports_a_users_config_or_trainer_class(tmp_path, monkeypatch):
    (tmp_path / "my_trainers.py").write_text(textwrap.dedent("""
        from monai_nnunet.training.configs import TrainerConfig

        my_config = TrainerConfig(num_epochs=3, description="mine")

        class MyTrainer:
            pass

        not_a_trainer = 3
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    assert resolve_trainer("my_trainers:my_config").description == "mine"
    assert resolve_trainer("my_trainers:MyTrainer").__name__ == "MyTrainer"
    with pytest.raises(TypeError, match="int"):
        resolve_trainer("my_trainers:not_a_trainer")
    with pytest.raises(UnknownTrainerError, match="cannot import"):
        resolve_trainer("my_trainers:missing")
    with pytest.raises(UnknownTrainerError, match="cannot import"):
        resolve_trainer("no_such_module_here:thing")


def test_output_folder_name_uses_the_tr_name():
    assert trainer_output_folder_name("kiunet", "nnUNetPlans", "3d_fullres") == "kiunet__nnUNetPlans__3d_fullres"
    assert trainer_output_folder_name("pkg.mod:Mine", "nnUNetPlans", "2d") == "pkg.mod.Mine__nnUNetPlans__2d"


# ---- optimiser, scheduler and loss as bundle components ---------------------------------------------------------


def _parse(overrides, **values):
    """A MONAI ConfigParser over ``overrides`` with the ids they refer to (a network, the run parameters)."""
    from monai.bundle import ConfigParser

    config = {"imports": ["$import torch"], "network": "$torch.nn.Linear(2, 2)", "initial_lr": 0.01,
              "weight_decay": 3e-5, "momentum": 0.99, "lr_exponent": 0.9, "epochs": 2, "iterations_per_epoch": 3,
              "lr_schedule": "per_iteration", "batch_dice": False, "ignore_label": None, **values}
    parser = ConfigParser(config)
    for key, value in overrides.items():
        parser[key] = value
    return parser


def test_public_name_is_the_importable_path():
    from monai_nnunet.training.configs import qualified_name
    from monai_nnunet.training.configs.overrides import OverlayError

    assert qualified_name(torch.optim.AdamW) == "torch.optim.AdamW"  # torch.optim.adamw is no attribute of torch.optim
    assert qualified_name(torch.optim.lr_scheduler.StepLR) == "torch.optim.lr_scheduler.StepLR"
    assert qualified_name(DynamicKiUNet) == "monai_nnunet.networks.DynamicKiUNet"

    class Local:
        pass

    with pytest.raises(OverlayError, match="defined in a function"):
        qualified_name(Local)


def test_optimizer_class_is_written_and_built_with_the_runs_lr():
    from monai_nnunet.training.configs import to_bundle_overrides

    config = TrainerConfig(optimizer=torch.optim.AdamW, initial_lr=1e-3)
    overrides = to_bundle_overrides(config, "adamw")
    assert overrides["optimizer"] == {"_target_": "torch.optim.AdamW", "params": "$@network.parameters()",
                                      "lr": "@initial_lr", "weight_decay": "@weight_decay"}  # no SGD momentum
    optimizer = _parse(overrides).get_parsed_content("optimizer")
    assert isinstance(optimizer, torch.optim.AdamW) and optimizer.defaults["lr"] == 1e-3


def test_an_lr_given_to_the_optimizer_is_the_runs_initial_lr():
    from monai_nnunet.training.configs import to_bundle_overrides

    partial_lr = TrainerConfig(optimizer=functools.partial(torch.optim.AdamW, lr=1e-3, betas=(0.9, 0.99)))
    kwargs_lr = TrainerConfig(optimizer=torch.optim.AdamW, optimizer_kwargs={"lr": 1e-3, "betas": (0.9, 0.99)})
    for config in (partial_lr, kwargs_lr):
        assert config.initial_lr == 1e-3
        overrides = to_bundle_overrides(config, "adamw")
        assert overrides["initial_lr"] == 1e-3 and overrides["optimizer"]["lr"] == "@initial_lr"
        optimizer = _parse(overrides).get_parsed_content("optimizer")
        assert optimizer.defaults["lr"] == 1e-3 and tuple(optimizer.defaults["betas"]) == (0.9, 0.99)
    with pytest.raises(ValueError, match="contradicts initial_lr"):
        TrainerConfig(optimizer=torch.optim.AdamW, optimizer_kwargs={"lr": 1e-3}, initial_lr=0.01)


@pytest.mark.parametrize("scheduler,kwargs", [
    (functools.partial(torch.optim.lr_scheduler.StepLR, step_size=10, gamma=0.5), {}),
    (torch.optim.lr_scheduler.StepLR, {"step_size": 10, "gamma": 0.5}),
    ("torch.optim.lr_scheduler:StepLR", {"step_size": 10, "gamma": 0.5}),
])
def test_scheduler_with_its_required_arguments(scheduler, kwargs):
    from monai_nnunet.training.configs import to_bundle_overrides

    config = TrainerConfig(optimizer=torch.optim.SGD, lr_scheduler=scheduler, lr_scheduler_kwargs=kwargs)
    overrides = to_bundle_overrides(config, "step")
    assert overrides["lr_scheduler"] == {"_target_": "torch.optim.lr_scheduler.StepLR", "optimizer": "@optimizer",
                                         "step_size": 10, "gamma": 0.5}
    built = _parse(overrides).get_parsed_content("lr_scheduler")
    assert isinstance(built, torch.optim.lr_scheduler.StepLR) and (built.step_size, built.gamma) == (10, 0.5)
    params = [nn.Parameter(torch.zeros(2))]
    in_python = config.build_lr_scheduler(config.build_optimizer(params, lr=0.1), max_steps=5)
    assert (in_python.step_size, in_python.gamma) == (10, 0.5)
    described = json.loads(json.dumps(config.to_dict()))
    assert described["lr_scheduler_kwargs"] == kwargs
    if isinstance(scheduler, functools.partial):
        assert described["lr_scheduler"] == {"partial": "torch.optim.lr_scheduler:StepLR",
                                             "keywords": {"step_size": 10, "gamma": 0.5}}


@pytest.mark.parametrize("kwargs,field", [
    ({"lr_scheduler": torch.optim.lr_scheduler.StepLR}, "lr_scheduler"),  # step_size is required
    ({"optimizer": torch.optim.AdamW, "optimizer_kwargs": {"momentum": 0.9}}, "optimizer"),
    ({"optimizer": functools.partial(torch.optim.AdamW, 0.1)}, "optimizer"),  # positional: the trainer passes params
    ({"optimizer_kwargs": {"momentum": 0.9}}, "optimizer_kwargs"),  # for which optimiser?
    ({"optimizer": torch.optim.AdamW, "optimizer_kwargs": {"params": []}}, "optimizer_kwargs"),
    ({"optimizer": torch.optim.AdamW, "optimizer_kwargs": {"betas": torch.ones(2)}}, "optimizer_kwargs"),
    ({"lr_scheduler": torch.optim.lr_scheduler.StepLR, "lr_scheduler_kwargs": [10]}, "lr_scheduler_kwargs"),
    ({"optimizer": torch.optim.AdamW, "optimizer_kwargs": {"lr": -1.0}}, "optimizer lr"),
])
def test_bad_optimizer_or_scheduler_is_refused_in_one_line_naming_the_field(kwargs, field):
    with pytest.raises((TypeError, ValueError)) as caught:
        TrainerConfig(**kwargs)
    message = str(caught.value)
    assert field in message and "\n" not in message


def test_reference_strings_are_checked_when_the_bundle_is_written():
    from monai_nnunet.training.configs import to_bundle_overrides
    from monai_nnunet.training.configs.overrides import OverlayError

    for config, words in [(TrainerConfig(lr_scheduler="torch.optim.lr_scheduler:StepLR"), "needs 'step_size'"),
                          (TrainerConfig(optimizer="torch.optim:Adamw"), "cannot be imported"),
                          (TrainerConfig(optimizer="torch.optim:AdamW", optimizer_kwargs={"nesterov": True}),
                           "takes no argument 'nesterov'")]:
        with pytest.raises(OverlayError, match=words) as caught:
            to_bundle_overrides(config, "mine")
        assert str(caught.value).startswith("-tr mine: ") and "\n" not in str(caught.value)


def test_a_loss_instance_is_written_as_its_class_and_recorded_arguments():
    losses = pytest.importorskip("monai_nnunet.losses")
    from monai_nnunet.training.configs import to_bundle_overrides

    instance = losses.DC_and_Blob_CE_loss({"batch_dice": True}, {"weight": torch.tensor([1.0, 2.0, 4.0])},
                                          weight_blob=0.5)
    overrides = to_bundle_overrides(TrainerConfig(loss=instance), "myblob")
    component = overrides["loss#loss"]
    assert component["_target_"] == "monai_nnunet.losses.DC_and_Blob_CE_loss" and component["weight_blob"] == 0.5
    assert "registered_loss" not in json.dumps(overrides)
    assert overrides["train#loss_target_keys"] == ["instances"]  # the loader computes the blobs
    rebuilt = _parse({"loss": component}).get_parsed_content("loss")
    assert type(rebuilt) is losses.DC_and_Blob_CE_loss and rebuilt.weight_blob == 0.5 and rebuilt.dc.batch_dice
    assert torch.equal(rebuilt.ce.weight, instance.ce.weight)
    logits, target = torch.randn(2, 3, 8, 8), torch.randint(0, 3, (2, 1, 8, 8))
    assert torch.allclose(rebuilt(logits, target), instance(logits, target))
    wrapped = to_bundle_overrides(TrainerConfig(loss=losses.DeepSupervisionWrapper(losses.DC_and_CE_loss())), "w")
    assert wrapped["loss#loss"]["loss"]["_target_"] == "monai_nnunet.losses.DC_and_CE_loss"


def test_a_loss_instance_without_recorded_arguments_is_refused_in_one_line():
    from monai_nnunet.training.configs import to_bundle_overrides
    from monai_nnunet.training.configs.overrides import OverlayError

    with pytest.raises(OverlayError, match="pass the class and loss_kwargs instead") as caught:
        to_bundle_overrides(TrainerConfig(loss=torch.nn.CrossEntropyLoss(label_smoothing=0.1)), "ce")
    assert "\n" not in str(caught.value)
    with pytest.raises(OverlayError, match="cannot hold"):  # recorded, but not as data a bundle holds
        to_bundle_overrides(TrainerConfig(loss=RecordingLossWithInit(torch.sigmoid)), "fn")


class RecordingLossWithInit(nn.Module):
    """A user loss that records its arguments, one of them a function."""

    def __init__(self, nonlin):
        super().__init__()
        self.init_kwargs = {"nonlin": nonlin}
