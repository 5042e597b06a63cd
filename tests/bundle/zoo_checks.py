"""The MONAI model zoo's bundle checks (``ci/verify_bundle.py`` of Project-MONAI/model-zoo, ``full`` mode): the same
MONAI functions with the same arguments the zoo's CI passes, offline (the metadata schema is the one we ship, where
the zoo's CI downloads it to ``eval/schema.json``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from monai.bundle import ckpt_export, verify_metadata, verify_net_in_out

from monai_nnunet.bundle.metadata import SCHEMA_FILE


def run_model_zoo_checks(models_path: Path, bundle: str) -> None:
    """Raises on the first check that fails, as the zoo's ``verify(bundle, models_path, mode="full")``."""
    bundle_path = models_path / bundle
    # verify_bundle_directory: necessary and preferred files
    for file in ("configs/metadata.json", "LICENSE", "models/model.pt"):
        assert (bundle_path / file).exists(), f"necessary file {file} is missing"
    assert any((bundle_path / "configs" / f"inference.{s}").exists() for s in ("json", "yaml", "yml"))
    # verify_version_changes: version in the changelog, not already in model_info.json
    metadata = json.loads((bundle_path / "configs" / "metadata.json").read_text())
    assert "version" in metadata and "changelog" in metadata
    assert metadata["version"] in metadata["changelog"]
    model_info = models_path / "model_info.json"
    if not model_info.exists():
        model_info.write_text("{}")
    assert f"{bundle}_v{metadata['version']}" not in json.loads(model_info.read_text())
    # verify_metadata_format
    (bundle_path / "eval").mkdir(exist_ok=True)
    shutil.copyfile(SCHEMA_FILE, bundle_path / "eval" / "schema.json")
    verify_metadata(meta_file=str(bundle_path / "configs/metadata.json"), filepath=str(bundle_path / "eval/schema.json"))
    # the optional checks of "full" mode (properties only with "supported_apps", which we do not declare)
    assert "supported_apps" not in metadata
    config_file = str(Path("configs") / ("inference.json" if (bundle_path / "configs/inference.json").exists()
                                         else "inference.yaml"))
    verify_net_in_out(net_id="network_def", meta_file=str(bundle_path / "configs/metadata.json"),
                      config_file=str(bundle_path / config_file), bundle_root=str(bundle_path))
    ckpt_export(net_id="network_def", filepath=str(bundle_path / "models/verify_model.ts"),
                ckpt_file=str(bundle_path / "models" / "model.pt"), meta_file=str(bundle_path / "configs/metadata.json"),
                config_file=str(bundle_path / config_file), bundle_root=str(bundle_path))
    if (bundle_path / "models" / "model.ts").exists():
        torch.jit.load(str(bundle_path / "models" / "model.ts"))
