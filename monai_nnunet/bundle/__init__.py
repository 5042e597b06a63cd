"""MONAI bundles: the template bundle, the run bundle each training writes, export to and import from zips."""

from pathlib import Path

#: The template bundle shipped with the package (also at bundles/nnunet in the repository).
TEMPLATE_BUNDLE = Path(__file__).parent / "template"

__all__ = ["TEMPLATE_BUNDLE"]
