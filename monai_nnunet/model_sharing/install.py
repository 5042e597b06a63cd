"""``nnUNetv2_install_pretrained_model_from_zip``: a model zip (nnU-Net v2's or ours) -> ``$nnUNet_results``.

A zip may come from anyone, so every member is checked before anything is written: paths relative to
``nnUNet_results`` under a ``DatasetXXX_Name/`` folder (no absolute paths, no ``..``), regular files and folders only
(no symlinks, devices or encrypted members), no duplicates (nor names differing only in case), and sizes and
compression ratios a model can have. A refused zip gets a one-line error naming the member, and nothing is written.
An accepted zip is extracted into a temporary folder inside ``nnUNet_results`` and its files are then renamed into
place (replacing files of the same name, as nnU-Net's ``extractall`` does). Nothing from the zip is unpickled or
executed: ``postprocessing.pkl`` is installed as a file, checkpoints are read later by
:mod:`monai_nnunet.inference.model_loading` (``weights_only``).
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from monai_nnunet import paths

__all__ = [
    "MAX_COMPRESSION_RATIO",
    "MAX_MEMBER_BYTES",
    "MAX_MEMBERS",
    "MAX_TOTAL_BYTES",
    "UnsafeZipError",
    "check_zip_members",
    "install_model_from_zip_file",
]

#: the largest file a member may unpack to (a checkpoint of nnU-Net's largest ResEnc presets is < 2 GiB)
MAX_MEMBER_BYTES = 8 * 1024 ** 3
#: the most a whole zip may unpack to (five folds, several configurations and their cross-validation predictions)
MAX_TOTAL_BYTES = 64 * 1024 ** 3
#: the most members a zip may have
MAX_MEMBERS = 100_000
#: uncompressed / compressed size above which a member (larger than 1 MiB) is taken for a zip bomb; model files
#: (weights, JSON, PNG, compressed images) stay far below it
MAX_COMPRESSION_RATIO = 200
_RATIO_CHECK_FROM = 1024 ** 2
_DATASET_FOLDER = re.compile(r"^Dataset\d{3}_.+$")
_CHUNK = 1024 ** 2


class UnsafeZipError(ValueError):
    """A zip member that must not be extracted (path, type, size, duplicate) or a zip that is no model zip."""


@dataclass(frozen=True)
class _Member:
    info: zipfile.ZipInfo
    parts: tuple[str, ...]
    is_dir: bool


def _member_parts(zip_name: str, name: str) -> tuple[str, ...]:
    if "\x00" in name:
        raise UnsafeZipError(f"{zip_name}: member {name!r} has a NUL character in its name")
    if "\\" in name:
        raise UnsafeZipError(f"{zip_name}: member {name!r} uses backslashes (a Windows path); refusing it")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise UnsafeZipError(f"{zip_name}: member {name!r} has an absolute path")
    parts = tuple(p for p in PurePosixPath(name).parts if p != ".")
    if any(p == ".." for p in parts):
        raise UnsafeZipError(f"{zip_name}: member {name!r} has a '..' component (it would land outside nnUNet_results)")
    if not parts:
        raise UnsafeZipError(f"{zip_name}: member {name!r} has an empty path")
    if not _DATASET_FOLDER.match(parts[0]):
        raise UnsafeZipError(f"{zip_name}: member {name!r} is not inside a DatasetXXX_Name/ folder (not an nnU-Net "
                             f"model zip: its paths must be relative to nnUNet_results)")
    return parts


def _member_type(zip_name: str, info: zipfile.ZipInfo) -> bool:
    """Whether the member is a folder; refuses links and special files."""
    mode = info.external_attr >> 16
    if info.create_system == 3 and stat.S_IFMT(mode):  # Unix attributes with a file type
        if stat.S_ISLNK(mode):
            raise UnsafeZipError(f"{zip_name}: member {info.filename!r} is a symbolic link; refusing it")
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise UnsafeZipError(f"{zip_name}: member {info.filename!r} is not a regular file or folder "
                                 f"(mode {oct(mode)})")
    if info.flag_bits & 0x1:
        raise UnsafeZipError(f"{zip_name}: member {info.filename!r} is encrypted")
    return info.is_dir()


def check_zip_members(zf: zipfile.ZipFile, zip_name: str = "zip") -> list[_Member]:
    """Checks every member of an open zip before anything is extracted.

    Args:
        zf: the open zip.
        zip_name: named in error messages.

    Returns:
        The members (path components, folder or file), in zip order.

    Raises:
        UnsafeZipError: for the first member that is unsafe or does not fit a model zip; the message names it.
    """
    infos = zf.infolist()
    if not infos:
        raise UnsafeZipError(f"{zip_name} is empty")
    if len(infos) > MAX_MEMBERS:
        raise UnsafeZipError(f"{zip_name} has {len(infos)} members (at most {MAX_MEMBERS} expected of a model zip)")
    members: list[_Member] = []
    seen: dict[tuple[str, ...], bool] = {}
    seen_folded: dict[tuple[str, ...], str] = {}
    total = 0
    for info in infos:
        parts = _member_parts(zip_name, info.filename)
        is_dir = _member_type(zip_name, info)
        if parts in seen:
            raise UnsafeZipError(f"{zip_name}: member {info.filename!r} appears more than once")
        folded = tuple(unicodedata.normalize("NFC", p).casefold() for p in parts)
        if folded in seen_folded:  # one file on case-insensitive or normalising file systems (macOS, Windows)
            raise UnsafeZipError(f"{zip_name}: members {seen_folded[folded]!r} and {info.filename!r} differ only in "
                                 f"case or Unicode form")
        seen[parts] = is_dir
        seen_folded[folded] = info.filename
        if not is_dir:
            if info.file_size > MAX_MEMBER_BYTES:
                raise UnsafeZipError(f"{zip_name}: member {info.filename!r} unpacks to {info.file_size} bytes "
                                     f"(more than {MAX_MEMBER_BYTES})")
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > _RATIO_CHECK_FROM and ratio > MAX_COMPRESSION_RATIO:
                raise UnsafeZipError(f"{zip_name}: member {info.filename!r} has a compression ratio of "
                                     f"{ratio:.0f} (a zip bomb?)")
            total += info.file_size
            if total > MAX_TOTAL_BYTES:
                raise UnsafeZipError(f"{zip_name} unpacks to more than {MAX_TOTAL_BYTES} bytes "
                                     f"(at member {info.filename!r})")
        members.append(_Member(info, parts, is_dir))
    for parts, is_dir in seen.items():  # a file where another member needs a folder
        for depth in range(1, len(parts)):
            if seen.get(parts[:depth]) is False:
                raise UnsafeZipError(f"{zip_name}: member {'/'.join(parts[:depth])!r} is a file and a folder "
                                     f"(of {'/'.join(parts)!r})")
    return members


def _extract(zf: zipfile.ZipFile, member: _Member, staging: Path, zip_name: str) -> None:
    target = staging.joinpath(*member.parts)
    if member.is_dir:
        target.mkdir(parents=True, exist_ok=True)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with zf.open(member.info) as source, open(target, "xb") as out:
        while chunk := source.read(_CHUNK):
            written += len(chunk)
            if written > member.info.file_size:  # zipfile stops at the declared size; never trust a header alone
                raise UnsafeZipError(f"{zip_name}: member {member.info.filename!r} unpacks to more than its declared "
                                     f"{member.info.file_size} bytes")
            out.write(chunk)


def _check_targets(files: list[Path], staging: Path, results: Path) -> None:
    for f in files:
        target = results / f.relative_to(staging)
        if target.is_dir() and not target.is_symlink():
            raise UnsafeZipError(f"cannot install {f.relative_to(staging)}: {target} is a folder")
        for parent in target.relative_to(results).parents:
            existing = results / parent
            if parent != Path(".") and existing.exists() and not existing.is_dir():
                raise UnsafeZipError(f"cannot install {f.relative_to(staging)}: {existing} is a file, not a folder")


def install_model_from_zip_file(zip_file: str | os.PathLike, results_folder: str | os.PathLike | None = None
                                ) -> list[Path]:
    """Installs a model zip into ``nnUNet_results`` (files of the same name are replaced, as nnU-Net does).

    Args:
        zip_file: the zip (``nnUNetv2_export_model_to_zip``'s, nnU-Net's or ours).
        results_folder: where to install (default: ``$nnUNet_results``).

    Returns:
        The files installed, sorted.

    Raises:
        FileNotFoundError: when the zip does not exist.
        UnsafeZipError: when the file is not a zip, or a member is unsafe (see the module docstring); nothing is
            written then.
        MissingEnvironmentVariableError: when ``results_folder`` is not given and ``nnUNet_results`` is unset.
    """
    zip_path = Path(zip_file)
    if not zip_path.is_file():
        raise FileNotFoundError(f"{zip_path} does not exist")
    results = Path(results_folder) if results_folder is not None else paths.nnunet_results()
    try:
        zf = zipfile.ZipFile(zip_path)
    except zipfile.BadZipFile as e:
        raise UnsafeZipError(f"{zip_path} is not a zip file ({e})") from None
    with zf:
        members = check_zip_members(zf, str(zip_path))
        results.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".install_", dir=results))
        try:
            for member in members:
                try:
                    _extract(zf, member, staging, str(zip_path))
                except (zipfile.BadZipFile, EOFError, NotImplementedError) as e:
                    raise UnsafeZipError(f"{zip_path}: member {member.info.filename!r} cannot be read ({e})") from None
            files = sorted(p for p in staging.rglob("*") if p.is_file())
            _check_targets(files, staging, results)
            for folder in sorted(p for p in staging.rglob("*") if p.is_dir()):
                (results / folder.relative_to(staging)).mkdir(parents=True, exist_ok=True)
            installed = []
            for f in files:  # same file system: each rename is atomic
                target = results / f.relative_to(staging)
                os.replace(f, target)
                installed.append(target)
            return installed
        finally:
            shutil.rmtree(staging, ignore_errors=True)
