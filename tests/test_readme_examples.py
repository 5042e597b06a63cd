"""The README's code runs as written: every ``bash``, ``python`` and ``yaml`` block of its Python API, training API,
bundle, losses and trainer-config sections, in the README's order, on the demo's synthetic dataset
(``Dataset998_Synthetic``, made as ``scripts/demo.sh`` makes it) with the ``nnUNet_*`` variables set.

A ``python`` block whose first line is ``# NAME.py`` is a file the reader saves (it is written into the working
folder, where the blocks after it import it); a fence without a language (a usage synopsis with ``[options]``) is not
run. Each block runs in its own process from the same working folder, as a reader pastes it into a terminal."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from monai.bundle import ConfigParser

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow

README = REPO_ROOT / "README.md"
#: the sections whose code runs (a "## " section includes its "### " subsections)
SECTIONS = ("## Python API", "### Python API and custom trainers", "## Bundles: every run is a MONAI bundle",
            "## Losses API", "## Trainer configs (-tr)")
DEMO_DATASET = ["-d", "998", "--num_cases", "16", "--num_test_cases", "4", "--shape", "24", "28", "26",
                "--blobs_per_class", "2"]  # scripts/demo.sh's
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)


def section_text(text: str, heading: str) -> str:
    """The lines of ``heading``'s section, up to the next heading of its level or above (outside code fences)."""
    level = len(heading.split(" ")[0])
    lines, inside, fenced = [], False, False
    for line in text.splitlines(keepends=True):
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(r"#{1,%d} " % level, line):
            if inside:
                break
            inside = line.rstrip("\n") == heading
        if inside:
            lines.append(line)
    return "".join(lines)


def readme_blocks() -> list[tuple[str, str, str]]:
    """``(section, language, code)`` of every runnable block of :data:`SECTIONS`, in the README's order."""
    text = README.read_text()
    sections = sorted(SECTIONS, key=lambda h: text.index(h + "\n"))
    return [(heading, language, code) for heading in sections
            for language, code in FENCE.findall(section_text(text, heading)) if language in ("bash", "python", "yaml")]


def test_the_sections_hold_the_examples():
    counts = {h: sum(1 for s, _, _ in readme_blocks() if s == h) for h in SECTIONS}
    assert all(n >= 1 for n in counts.values()), counts
    assert sum(counts.values()) >= 12, counts


def run_config_block(code: str, folder: Path) -> None:
    """A bundle config fragment: MONAI's parser reads it and builds every top-level component."""
    path = folder / "readme_block.yaml"
    path.write_text(code)
    parser = ConfigParser()
    parser.read_config(str(path))
    for key in parser.get():
        parser.get_parsed_content(key)


def test_every_example_runs_as_written(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("nnUNet_", "MONAI_NNUNET_"))}
    for name in ("raw", "preprocessed", "results"):
        (tmp_path / f"nnUNet_{name}").mkdir()
        env[f"nnUNet_{name}"] = str(tmp_path / f"nnUNet_{name}")
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}", nnUNet_def_n_proc="1",
               nnUNet_n_proc_DA="0", PYTHONUNBUFFERED="1")
    subprocess.run([sys.executable, "-m", "monai_nnunet", "make-synthetic-dataset", *DEMO_DATASET], env=env,
                   cwd=work, check=True, capture_output=True)
    for index, (section, language, code) in enumerate(readme_blocks()):
        first = code.splitlines()[0].strip()
        if language == "python" and re.fullmatch(r"# [\w.]+\.py", first):
            (work / first[2:]).write_text(code)
            continue
        if language == "yaml":
            run_config_block(code, work)
            continue
        command = ["bash", "-e", "-c", code] if language == "bash" else [sys.executable, "-c", code]
        result = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=1200)
        assert result.returncode == 0, (f"README block {index} ({section}, {language}) failed:\n{code}\n"
                                        f"--- stderr ---\n{result.stderr[-4000:]}")
