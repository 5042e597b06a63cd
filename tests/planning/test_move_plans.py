"""The pretraining / fine-tuning recipe on two synthetic datasets: move plans, preprocess the target with them, load
the source model's weights into the target's network (all but the segmentation heads)."""

import json
import warnings

import pytest
import torch

from monai_nnunet.cli.main import main
from monai_nnunet.dataset.synthetic import make_synthetic_dataset
from monai_nnunet.networks.pretrained import load_pretrained_weights
from monai_nnunet.planning import plan_and_preprocess
from monai_nnunet.planning.move_plans import move_plans_between_datasets, renamed_data_identifier
from monai_nnunet.planning.plans import PlansError, PlansManager
from monai_nnunet.preprocessing.cache import case_ids_in_cache, load_case
from monai_nnunet.training.configs import resolve_trainer

SOURCE, TARGET = "Dataset998_Source", "Dataset997_Target"


@pytest.fixture
def two_datasets(nnunet_env):
    make_synthetic_dataset(nnunet_env["raw"], dataset_id=998, name="Source", num_cases=5, shape=(20, 24, 22),
                           num_classes=2, num_test_cases=0, seed=1)
    # the target: other sizes, another spacing, one class only
    make_synthetic_dataset(nnunet_env["raw"], dataset_id=997, name="Target", num_cases=5, shape=(12, 30, 26),
                           spacing=(2.0, 0.8, 0.8), num_classes=1, num_test_cases=0, seed=2)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    plan_and_preprocess([998], configurations=["3d_fullres"], num_processes=1)
    yield nnunet_env
    torch.set_num_threads(threads)


def test_transfer_recipe(two_datasets):
    env = two_datasets
    assert main(["move_plans_between_datasets", "-s", "998", "-t", "997", "-sp", "nnUNetPlans",
                 "-tp", "nnUNetPlans_pretrained"]) == 0
    source = json.loads((env["preprocessed"] / SOURCE / "nnUNetPlans.json").read_text())
    moved_file = env["preprocessed"] / TARGET / "nnUNetPlans_pretrained.json"
    moved = json.loads(moved_file.read_text())
    assert moved["dataset_name"] == TARGET and moved["plans_name"] == "nnUNetPlans_pretrained"
    assert moved["foreground_intensity_properties_per_channel"] == source["foreground_intensity_properties_per_channel"]
    for name, cfg in moved["configurations"].items():
        src = source["configurations"][name]
        assert cfg["data_identifier"] == "nnUNetPlans_pretrained_" + src["data_identifier"][len("nnUNetPlans_"):]
        for key in ("architecture", "patch_size", "spacing", "batch_size", "normalization_schemes"):
            if key in src:
                assert cfg[key] == src[key], (name, key)
    # preprocess the target with the moved plans: the source's spacing, its own cache folder
    assert main(["preprocess", "-d", "997", "-plans_name", "nnUNetPlans_pretrained", "-c", "3d_fullres",
                 "-np", "1"]) == 0
    cache = env["preprocessed"] / TARGET / "nnUNetPlans_pretrained_3d_fullres"
    ids = case_ids_in_cache(cache)
    assert len(ids) == 5
    _, _, props = load_case(cache, ids[0])
    assert props["target_spacing"] == source["configurations"]["3d_fullres"]["spacing"]
    assert props["spacing"] == pytest.approx([2.0, 0.8, 0.8])
    assert not (env["preprocessed"] / TARGET / "nnUNetPlans.json").exists()
    # fine-tuning: the source network's weights into the target's network (2 heads instead of 3)
    cfg = PlansManager(moved_file).get_configuration("3d_fullres")
    torch.manual_seed(0)
    source_net = resolve_trainer(None).build_network(PlansManager(source).get_configuration("3d_fullres"), 1, 3)
    checkpoint = {"network_weights": source_net.state_dict(), "trainer_name": "nnUNetTrainer"}
    torch.save(checkpoint, env["results"] / "checkpoint_final.pth")
    target_net = resolve_trainer(None).build_network(cfg, 1, 2)
    fresh_head = target_net.output_block.conv.conv.weight.detach().clone()
    loaded = load_pretrained_weights(target_net, env["results"] / "checkpoint_final.pth")
    assert loaded and not any("output_block" in k for k in loaded)
    for key, value in target_net.state_dict().items():
        if "output_block" in key or "deep_supervision_heads" in key or "super_head" in key:
            continue
        assert torch.equal(value, source_net.state_dict()[key]), key
    assert torch.equal(target_net.output_block.conv.conv.weight, fresh_head)


def test_same_plans_name_warns_and_identifiers_stay(two_datasets):
    env = two_datasets
    target_plans = env["preprocessed"] / TARGET / "nnUNetPlans.json"
    target_plans.parent.mkdir(parents=True, exist_ok=True)
    target_plans.write_text("{}")
    with pytest.warns(UserWarning, match="is replaced by the plans of Dataset998_Source"):
        move_plans_between_datasets(998, TARGET, "nnUNetPlans")
    moved = json.loads(target_plans.read_text())
    assert moved["configurations"]["3d_fullres"]["data_identifier"] == "nnUNetPlans_3d_fullres"
    assert moved["plans_name"] == "nnUNetPlans"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        move_plans_between_datasets(998, TARGET, "nnUNetPlans", "Other")


def test_renamed_identifier():
    assert renamed_data_identifier("nnUNetPlans_2d", "nnUNetPlans", "P") == "P_2d"
    assert renamed_data_identifier("custom_2d", "nnUNetPlans", "P") == "P_custom_2d"


def test_missing_source_plans_and_channel_mismatch(two_datasets):
    env = two_datasets
    with pytest.raises(FileNotFoundError, match=r"nnUNetPlansXL\.json do not exist.*Plans of Dataset998_Source: "
                                                r"nnUNetPlans"):
        move_plans_between_datasets(998, 997, "nnUNetPlansXL", "x")
    make_synthetic_dataset(env["raw"], dataset_id=996, name="TwoChannels", num_cases=1, shape=(10, 10, 10),
                           num_channels=2, num_test_cases=0)
    with pytest.raises(PlansError, match=r"normalises 1 channel\(s\).*Dataset996_TwoChannels has 2"):
        move_plans_between_datasets(998, 996, "nnUNetPlans", "nnUNetPlans_pretrained")
    assert main(["move_plans_between_datasets", "-s", "998", "-t", "995", "-sp", "nnUNetPlans"]) == 1
