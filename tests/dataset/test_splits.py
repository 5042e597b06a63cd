import json
from pathlib import Path

import pytest

from monai_nnunet.dataset.splits import SplitsError, ensure_splits, generate_crossval_split, load_splits

FIXTURES = Path(__file__).parent / "fixtures"


def test_matches_nnunet_split():
    # produced by nnunetv2.utilities.crossval_split.generate_crossval_split (scikit-learn KFold) in a side venv
    expected = json.loads((FIXTURES / "nnunet_splits_23_cases.json").read_text())
    assert generate_crossval_split([f"c{i:03d}" for i in range(23)][::-1]) == expected


@pytest.mark.parametrize("n", [5, 12, 200])
def test_folds_are_disjoint_and_cover_every_case(n):
    ids = [f"case_{i}" for i in range(n)]
    splits = generate_crossval_split(ids)
    assert len(splits) == 5
    vals = [set(s["val"]) for s in splits]
    assert set().union(*vals) == set(ids)
    assert sum(len(v) for v in vals) == n
    for s in splits:
        assert set(s["train"]).isdisjoint(s["val"]) and set(s["train"]) | set(s["val"]) == set(ids)


def test_too_few_cases():
    with pytest.raises(SplitsError, match="3 case"):
        generate_crossval_split(["a", "b", "c"])


def test_existing_split_is_never_overwritten(tmp_path):
    custom = [{"train": ["a", "b"], "val": ["c"]}]
    (tmp_path / "splits_final.json").write_text(json.dumps(custom))
    ensure_splits(tmp_path, ["a", "b", "c", "d", "e", "f"])
    assert json.loads((tmp_path / "splits_final.json").read_text()) == custom


def test_split_in_raw_folder_is_copied(tmp_path):
    raw, pre = tmp_path / "raw", tmp_path / "pre"
    raw.mkdir()
    custom = [{"train": ["a"], "val": ["b"]}]
    (raw / "splits_final.json").write_text(json.dumps(custom))
    ensure_splits(pre, ["a", "b"], raw)
    assert json.loads((pre / "splits_final.json").read_text()) == custom


def test_load_splits_rejects_unknown_cases(tmp_path):
    (tmp_path / "s.json").write_text(json.dumps([{"train": ["a"], "val": ["zzz"]}]))
    with pytest.raises(SplitsError, match="zzz"):
        load_splits(tmp_path / "s.json", ["a", "b"])
    (tmp_path / "t.json").write_text(json.dumps({"train": []}))
    with pytest.raises(SplitsError, match="list"):
        load_splits(tmp_path / "t.json")
