"""Locations of the nnU-Net folders, read from the environment as nnU-Net does.

``nnUNet_raw``, ``nnUNet_preprocessed`` and ``nnUNet_results`` are read at call time (not at import time) so a
process can set them after importing the package, and each getter fails with a message that says which variable
is needed and what it is for.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["MissingEnvironmentVariableError", "nnunet_raw", "nnunet_preprocessed", "nnunet_results"]

_PURPOSE = {
    "nnUNet_raw": "the folder that holds raw datasets (DatasetXXX_Name/imagesTr, labelsTr, dataset.json)",
    "nnUNet_preprocessed": "the folder where plans and preprocessed data are written",
    "nnUNet_results": "the folder where trained models are written",
}


class MissingEnvironmentVariableError(RuntimeError):
    """An nnU-Net folder variable is needed but not set."""


def _folder(variable: str) -> Path:
    value = os.environ.get(variable)
    if not value:
        raise MissingEnvironmentVariableError(
            f"The environment variable {variable} is not set; it must point to {_PURPOSE[variable]}. "
            f"For example: export {variable}=/data/{variable}"
        )
    return Path(value).expanduser()


def nnunet_raw() -> Path:
    """Returns the ``nnUNet_raw`` folder.

    Raises:
        MissingEnvironmentVariableError: when the variable is unset or empty.
    """
    return _folder("nnUNet_raw")


def nnunet_preprocessed() -> Path:
    """Returns the ``nnUNet_preprocessed`` folder.

    Raises:
        MissingEnvironmentVariableError: when the variable is unset or empty.
    """
    return _folder("nnUNet_preprocessed")


def nnunet_results() -> Path:
    """Returns the ``nnUNet_results`` folder.

    Raises:
        MissingEnvironmentVariableError: when the variable is unset or empty.
    """
    return _folder("nnUNet_results")
