import pytest

from monai_nnunet.dataset.naming import DatasetNotFoundError, dataset_id_from_name, resolve_dataset_name
from monai_nnunet.paths import MissingEnvironmentVariableError, nnunet_results


@pytest.mark.parametrize("given", [4, "4", "004", "Dataset004_Hippocampus"])
def test_ids_and_names_resolve(nnunet_env, given):
    (nnunet_env["raw"] / "Dataset004_Hippocampus").mkdir()
    (nnunet_env["raw"] / "Dataset040_Other").mkdir()
    assert resolve_dataset_name(given) == "Dataset004_Hippocampus"


def test_found_in_preprocessed_only(nnunet_env):
    (nnunet_env["preprocessed"] / "Dataset007_X").mkdir()
    assert resolve_dataset_name(7) == "Dataset007_X"


def test_unknown_and_ambiguous(nnunet_env):
    with pytest.raises(DatasetNotFoundError, match="No dataset with id 5"):
        resolve_dataset_name("5")
    (nnunet_env["raw"] / "Dataset005_A").mkdir()
    (nnunet_env["results"] / "Dataset005_B").mkdir()
    with pytest.raises(DatasetNotFoundError, match="More than one.*Dataset005_A.*Dataset005_B"):
        resolve_dataset_name(5)


@pytest.mark.parametrize("given", ["abc", "Dataset4_X", 1000, -1])
def test_malformed(nnunet_env, given):
    with pytest.raises(ValueError):
        resolve_dataset_name(given)


def test_missing_environment_variable(monkeypatch):
    for v in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        monkeypatch.delenv(v, raising=False)
    with pytest.raises(MissingEnvironmentVariableError, match="nnUNet_raw is not set"):
        resolve_dataset_name(4)
    with pytest.raises(MissingEnvironmentVariableError, match="nnUNet_results.*trained models"):
        nnunet_results()


def test_id_from_name():
    assert dataset_id_from_name("Dataset123_Abc") == 123
