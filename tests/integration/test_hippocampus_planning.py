"""plan_and_preprocess on the real Hippocampus data (read in place through a symlinked nnUNet_raw)."""

import json

import numpy as np
import pytest

from monai_nnunet.cli.main import main
from monai_nnunet.preprocessing.cache import case_ids_in_cache, load_case
from tests.conftest import HIPPOCAMPUS, requires_hippocampus

pytestmark = [requires_hippocampus, pytest.mark.integration]


@pytest.fixture(scope="module")
def hippocampus_preprocessed(tmp_path_factory):
    root = tmp_path_factory.mktemp("hippocampus")
    (root / "raw").mkdir()
    (root / "raw" / HIPPOCAMPUS.name).symlink_to(HIPPOCAMPUS)
    env = {"nnUNet_raw": str(root / "raw"), "nnUNet_preprocessed": str(root / "pre"),
           "nnUNet_results": str(root / "res")}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        assert main(["plan_and_preprocess", "-d", "4", "-np", "2", "--verify_dataset_integrity"]) == 0
    return root / "pre" / "Dataset004_Hippocampus"


def test_plans_match_nnunet(hippocampus_preprocessed):
    plans = json.loads((hippocampus_preprocessed / "nnUNetPlans.json").read_text())
    fullres, two_d = plans["configurations"]["3d_fullres"], plans["configurations"]["2d"]
    assert fullres["patch_size"] == [40, 56, 40]
    assert fullres["batch_size"] == 7
    assert fullres["spacing"] == [1.0, 1.0, 1.0]
    assert fullres["architecture"]["arch_kwargs"]["strides"] == [[1, 1, 1], [2, 2, 2], [2, 2, 2], [2, 2, 2]]
    assert fullres["architecture"]["arch_kwargs"]["features_per_stage"] == [32, 64, 128, 256]
    assert two_d["patch_size"] == [56, 40] and two_d["batch_size"] == 281
    assert two_d["architecture"]["arch_kwargs"]["features_per_stage"] == [32, 64, 128, 256]
    # nnU-Net 2.8.1's foreground statistics for this data (it samples; ours are exact): within 0.1%
    props = plans["foreground_intensity_properties_per_channel"]["0"]
    assert props["mean"] == pytest.approx(20661.59, rel=1e-3)
    assert props["percentile_99_5"] == pytest.approx(273541.6875, rel=1e-3)


def test_splits_cover_every_case(hippocampus_preprocessed):
    splits = json.loads((hippocampus_preprocessed / "splits_final.json").read_text())
    cases = sorted(p.name[:-len(".nii.gz")] for p in (HIPPOCAMPUS / "labelsTr").iterdir())
    assert len(splits) == 5
    vals = [set(s["val"]) for s in splits]
    for i in range(5):
        for j in range(i + 1, 5):
            assert vals[i].isdisjoint(vals[j])
    assert set().union(*vals) == set(cases)
    assert all(set(s["train"]) == set(cases) - set(s["val"]) for s in splits)


def test_cache_is_complete(hippocampus_preprocessed):
    for folder in ("nnUNetPlans_2d", "nnUNetPlans_3d_fullres"):
        ids = case_ids_in_cache(hippocampus_preprocessed / folder)
        assert len(ids) == 200
    data, seg, props = load_case(hippocampus_preprocessed / "nnUNetPlans_3d_fullres", "hippocampus_001")
    assert data.shape == (1, 35, 51, 35) and seg.shape == (1, 35, 51, 35)
    assert float(np.mean(data)) == pytest.approx(0.0, abs=1e-5)
    assert props["sitk_stuff"]["origin"] == (-1.0, -1.0, 1.0)
    assert len(props["class_locations"][1]) == 1324 and len(props["class_locations"][2]) == 1624
    assert len(list((hippocampus_preprocessed / "gt_segmentations").iterdir())) == 200
