"""``nnUNetv2_install_pretrained_model_from_zip ZIP``: checks every member, then installs into nnUNet_results."""

from __future__ import annotations

import argparse

from monai_nnunet import paths
from monai_nnunet.model_sharing import install_model_from_zip_file


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("zip", help="zip file (nnUNetv2_export_model_to_zip's, ours or nnU-Net's)")


def run_cli(args: argparse.Namespace) -> None:
    results = paths.nnunet_results()
    installed = install_model_from_zip_file(args.zip, results)
    relative = [p.relative_to(results).parts for p in installed]
    models = sorted({"/".join(parts[:2]) for parts in relative if len(parts) > 2})
    print(f"{len(installed)} files installed into {results}: {', '.join(models) if models else '(dataset files only)'}")
