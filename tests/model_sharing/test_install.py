"""``nnUNetv2_install_pretrained_model_from_zip``: nnU-Net's own zip installs and predicts here; hostile zips are
refused with a one-line message naming the member, and nothing is written."""

import pickle
import stat
import warnings
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from monai_nnunet.cli.main import main
from monai_nnunet.inference.model_loading import load_checkpoint
from monai_nnunet.model_sharing import UnsafeZipError, install, install_model_from_zip_file

FIXTURES = Path(__file__).parent / "fixtures"
MODEL = "Dataset997_TinyNnunet/nnUNetTrainer__nnUNetPlans__3d_fullres"


def test_nnunet_made_zip_installs_and_predicts(nnunet_env, tmp_path, capsys):
    assert main(["install_pretrained_model_from_zip", str(FIXTURES / "nnunet_model.zip")]) == 0
    assert "6 files installed" in capsys.readouterr().out
    folder = nnunet_env["results"] / MODEL
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == [
        "dataset.json", "dataset_fingerprint.json", "fold_0/checkpoint_final.pth", "fold_0/progress.png",
        "fold_0/validation/summary.json", "plans.json"]
    assert [p.name for p in nnunet_env["results"].iterdir()] == ["Dataset997_TinyNnunet"]  # no staging left
    # nnU-Net's checkpoint (init_args, PlainConvUNet weights) reads as data
    assert load_checkpoint(folder / "fold_0" / "checkpoint_final.pth")["init_args"]["configuration"] == "3d_fullres"
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "case_0000.nii.gz").write_bytes((FIXTURES / "case_0000.nii.gz").read_bytes())
    out = tmp_path / "out"
    assert main(["predict_from_modelfolder", "-i", str(inputs), "-o", str(out), "-m", str(folder), "-f", "0",
                 "-device", "cpu", "-npp", "0", "-nps", "0", "--disable_progress_bar"]) == 0
    ours = np.asarray(nib.load(out / "case.nii.gz").dataobj)
    theirs = np.asarray(nib.load(FIXTURES / "case_nnunet.nii.gz").dataobj)
    assert ours.shape == theirs.shape
    assert set(np.unique(ours)) == {0, 1, 2}
    # the networks agree to 1e-5; nnU-Net 2.8.1 accumulates its sliding window in float16 (see the report)
    assert (ours == theirs).mean() > 0.97


def _zip(path: Path, members: list[tuple[str, bytes]]) -> Path:
    with warnings.catch_warnings(), zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate it writes
        for name, data in members:
            zf.writestr(name, data)
    return path


def _symlink_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{MODEL}/plans.json", b"{}")
        info = zipfile.ZipInfo(f"{MODEL}/fold_0/checkpoint_final.pth")
        info.create_system = 3
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    return path


OK = (f"{MODEL}/plans.json", b"{}")
HOSTILE = {
    "absolute": ([OK, ("/tmp/evil.json", b"x")], "'/tmp/evil.json' has an absolute path"),
    "dotdot": ([OK, (f"{MODEL}/../../../evil.py", b"x")], "has a '..' component"),
    "outside_dataset": ([OK, ("evil.py", b"x")], "'evil.py' is not inside a DatasetXXX_Name/ folder"),
    "duplicate": ([OK, OK], f"'{MODEL}/plans.json' appears more than once"),
    "bomb": ([OK, (f"{MODEL}/fold_0/checkpoint_final.pth", bytes(4 * 1024 ** 2))], "compression ratio"),
    "file_and_folder": ([("Dataset997_TinyNnunet/x", b"1"), ("Dataset997_TinyNnunet/x/y", b"2")],
                        "is a file and a folder"),
    "case": ([OK, (f"{MODEL}/Plans.json", b"{}")], "differ only in case"),
    "backslash": ([OK, ("Dataset997_TinyNnunet\\..\\evil", b"x")], "backslashes"),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE) + ["symlink", "not_a_zip", "huge"])
def test_hostile_zips_are_refused_and_nothing_is_written(kind, nnunet_env, tmp_path, capsys, monkeypatch):
    path = tmp_path / "model.zip"
    if kind == "symlink":
        _symlink_zip(path)
        expected = "checkpoint_final.pth' is a symbolic link"
    elif kind == "not_a_zip":
        path.write_bytes(b"PK\x03\x04 certainly not a zip")
        expected = "is not a zip file"
    elif kind == "huge":
        monkeypatch.setattr(install, "MAX_MEMBER_BYTES", 100)
        _zip(path, [OK, (f"{MODEL}/dataset.json", b"0123456789" * 20)])
        expected = f"'{MODEL}/dataset.json' unpacks to 200 bytes (more than 100)"
    else:
        _zip(path, HOSTILE[kind][0])
        expected = HOSTILE[kind][1]
    assert main(["install_pretrained_model_from_zip", str(path)]) == 1
    err = capsys.readouterr().err.strip()
    assert expected in err and len(err.splitlines()) == 1, err
    assert list(nnunet_env["results"].iterdir()) == []


def test_member_lying_about_its_size_is_refused(nnunet_env, tmp_path):
    path = _zip(tmp_path / "lie.zip", [OK])
    data = bytearray(path.read_bytes())
    # the central directory's uncompressed size of the (stored-as-deflated) member: claim 1 byte
    central = data.rfind(b"PK\x01\x02")
    data[central + 24:central + 28] = (1).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(UnsafeZipError, match="plans.json"):
        install_model_from_zip_file(path)
    assert list(nnunet_env["results"].iterdir()) == []


def test_install_replaces_files_and_keeps_others(nnunet_env, tmp_path):
    folder = nnunet_env["results"] / MODEL
    (folder / "fold_1").mkdir(parents=True)
    (folder / "fold_1" / "checkpoint_final.pth").write_bytes(b"other fold")
    (folder / "plans.json").write_text("old")
    installed = install_model_from_zip_file(_zip(tmp_path / "m.zip", [(f"{MODEL}/plans.json", b"new")]))
    assert installed == [folder / "plans.json"]
    assert (folder / "plans.json").read_text() == "new"
    assert (folder / "fold_1" / "checkpoint_final.pth").read_bytes() == b"other fold"
    # a pickle in the zip is only a file: installed, never unpickled
    pkl = f"{MODEL}/crossval_results_folds_0/postprocessing.pkl"
    assert install_model_from_zip_file(_zip(tmp_path / "c.zip", [(pkl, b"\x80\x04not a pickle")]))
    assert (nnunet_env["results"] / pkl).read_bytes() == b"\x80\x04not a pickle"


class _Payload:
    """Unpickling this creates a marker file (what a malicious checkpoint would do with os.system)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_pickle_payload_in_a_zip_never_runs(nnunet_env, tmp_path, capsys):
    """Installed as files; the checkpoint is refused by model loading (weights_only) and the payload never runs."""
    marker = tmp_path / "payload_ran"
    with zipfile.ZipFile(FIXTURES / "nnunet_model.zip") as zf:
        members = [(n, zf.read(n)) for n in zf.namelist() if not n.endswith(".pth")]
    checkpoint = tmp_path / "evil.pth"
    torch.save({"network_weights": {}, "trainer_name": _Payload(marker)}, checkpoint)
    pkl = f"{MODEL}/crossval_results_folds_0/postprocessing.pkl"
    path = _zip(tmp_path / "evil.zip", members + [(f"{MODEL}/fold_0/checkpoint_final.pth", checkpoint.read_bytes()),
                                                  (pkl, pickle.dumps(_Payload(marker)))])
    assert main(["install_pretrained_model_from_zip", str(path)]) == 0
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "case_0000.nii.gz").write_bytes((FIXTURES / "case_0000.nii.gz").read_bytes())
    assert main(["predict_from_modelfolder", "-i", str(inputs), "-o", str(tmp_path / "out"), "-m",
                 str(nnunet_env["results"] / MODEL), "-f", "0", "-device", "cpu", "-npp", "0", "-nps", "0"]) == 1
    err = capsys.readouterr().err.strip()
    assert "refused" in err and "checkpoint_final.pth" in err and len(err.splitlines()) == 1, err
    assert not marker.exists()
