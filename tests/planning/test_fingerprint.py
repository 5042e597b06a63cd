import json
from pathlib import Path

import numpy as np
import pytest

from monai_nnunet.dataset.fingerprint import CaseAnalysis, _weighted_stats, aggregate_fingerprint
from monai_nnunet.dataset.synthetic import make_synthetic_dataset
from monai_nnunet.planning.api import extract_fingerprint

FIXTURES = Path(__file__).parent / "fixtures"


def test_weighted_stats_equal_replicated_samples():
    rng = np.random.default_rng(0)
    a, b = rng.normal(10, 2, 3000), rng.normal(12, 3, 1000)
    # case b has a third of a's voxels but the same weight: replicate it 3 times
    stats = _weighted_stats(np.concatenate([a, b]), np.concatenate([np.full(3000, 1.0), np.full(1000, 3.0)]))
    replicated = np.concatenate([a, b, b, b])
    assert stats["mean"] == pytest.approx(replicated.mean())
    assert stats["std"] == pytest.approx(replicated.std())
    assert stats["min"] == replicated.min() and stats["max"] == replicated.max()
    assert stats["median"] == pytest.approx(np.median(replicated), abs=0.05)
    assert stats["percentile_99_5"] == pytest.approx(np.percentile(replicated, 99.5), abs=0.2)


def test_aggregate_keys_and_case_order():
    cases = [CaseAnalysis("b", spacing=[1, 1, 1], shape_after_crop=[4, 4, 4], relative_size_after_crop=0.5,
                          foreground_values=[np.array([1.0, 2.0], np.float32)], foreground_weight=1.0),
             CaseAnalysis("a", spacing=[2, 1, 1], shape_after_crop=[3, 4, 4], relative_size_after_crop=1.0)]
    fp = aggregate_fingerprint(cases, 1)
    assert fp["spacings"] == [[2, 1, 1], [1, 1, 1]]
    assert fp["median_relative_size_after_cropping"] == 0.75
    assert set(fp["foreground_intensity_properties_per_channel"]["0"]) == {
        "mean", "median", "std", "min", "max", "percentile_00_5", "percentile_99_5"}


def test_anisotropic_fingerprint_equals_nnunet(nnunet_env):
    """The fixture's dataset was fingerprinted by nnU-Net v2; regenerate it (same seed) and compare."""
    fx = json.loads((FIXTURES / "nnunet_plans_aniso_synthetic.json").read_text())
    make_synthetic_dataset(nnunet_env["raw"], dataset_id=997, name="Aniso", num_cases=12, shape=(20, 64, 64),
                           spacing=(3, 0.8, 0.8), seed=0)
    ours = extract_fingerprint(997, num_processes=1)
    ref = fx["fingerprint"]
    assert ours["shapes_after_crop"] == ref["shapes_after_crop"]
    np.testing.assert_allclose(ours["spacings"], ref["spacings"], rtol=1e-7)
    assert ours["median_relative_size_after_cropping"] == pytest.approx(ref["median_relative_size_after_cropping"])
    for key, value in ref["foreground_intensity_properties_per_channel"]["0"].items():
        assert ours["foreground_intensity_properties_per_channel"]["0"][key] == pytest.approx(value, rel=2e-3, abs=0.5)
