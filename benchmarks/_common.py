"""Helpers shared by the benchmarks: locating the Hippocampus data and an optional nnU-Net v2 side venv."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
HIPPOCAMPUS = Path(os.environ.get("MONAI_NNUNET_HIPPOCAMPUS",
                                  REPO_ROOT.parent / "shared" / "data" / "Dataset004_Hippocampus"))


def require_hippocampus() -> Path:
    if not (HIPPOCAMPUS / "dataset.json").is_file():
        raise SystemExit(f"the Hippocampus data is not at {HIPPOCAMPUS}; set MONAI_NNUNET_HIPPOCAMPUS")
    return HIPPOCAMPUS


def nnunet_python(explicit: str | None) -> Path | None:
    """The python of a venv with nnunetv2 installed (``--nnunet-python`` or ``NNUNET_PYTHON``), if any."""
    candidate = explicit or os.environ.get("NNUNET_PYTHON")
    if candidate and Path(candidate).is_file():
        return Path(candidate)
    for guess in (REPO_ROOT.parent / "nnunet_venv" / "bin" / "python",):
        if guess.is_file():
            return guess
    return None


def nnunet_bin(python: Path, command: str) -> Path:
    return python.parent / command


def fresh_dir(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path
