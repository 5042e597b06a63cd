"""Cases per second of the whole ``plan_and_preprocess`` of the shared Hippocampus data (verification included).

    python benchmarks/preprocess.py [--np 2] [--nnunet-python /path/to/nnunet_venv/bin/python]

Runs ``nnUNetv2_plan_and_preprocess -d 4 -np N --verify_dataset_integrity`` of this package as a fresh process
(start-up included, as a user sees it) into a temporary folder; with an nnU-Net v2 side venv (``--nnunet-python``,
``NNUNET_PYTHON`` or ../nnunet_venv) it runs nnU-Net's command the same way in the same run, alternating the two,
and prints the ratio.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO_ROOT, fresh_dir, nnunet_bin, nnunet_python, require_hippocampus  # noqa: E402


def run_once(command: list[str], root: Path, data: Path) -> float:
    raw = fresh_dir(root / "raw")
    (raw / data.name).symlink_to(data)
    env = dict(os.environ, nnUNet_raw=str(raw), nnUNet_preprocessed=str(fresh_dir(root / "pre")),
               nnUNet_results=str(root / "res"), PYTHONPATH=str(REPO_ROOT))
    start = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--np", type=int, default=2, help="worker processes for both tools (default 2)")
    parser.add_argument("--repeats", type=int, default=1, help="runs per tool (default 1); the best is reported")
    parser.add_argument("--nnunet-python", default=None, help="python of a venv with nnunetv2 installed")
    args = parser.parse_args()
    data = require_hippocampus()
    n_cases = len(list((data / "labelsTr").glob("*.nii.gz")))
    ours = [sys.executable, "-m", "monai_nnunet", "plan_and_preprocess", "-d", "4", "-np", str(args.np),
            "--verify_dataset_integrity"]
    tools = {"monai_nnunet": ours}
    py = nnunet_python(args.nnunet_python)
    if py is not None:
        tools["nnU-Net v2"] = [str(nnunet_bin(py, "nnUNetv2_plan_and_preprocess")), "-d", "4", "-np", str(args.np),
                               "-npfp", str(args.np), "--verify_dataset_integrity"]
    times = {name: [] for name in tools}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            for name, command in tools.items():
                times[name].append(run_once(command, Path(tmp) / name.replace(" ", "_"), data))
    print(f"plan_and_preprocess of {n_cases} Hippocampus cases, -np {args.np}, verification included "
          f"(best of {args.repeats}):")
    for name, t in times.items():
        print(f"  {name:<14} {min(t):7.1f} s   {n_cases / min(t):6.1f} cases/s")
    if len(times) == 2:
        ratio = min(times["nnU-Net v2"]) / min(times["monai_nnunet"])
        print(f"  speed-up over nnU-Net v2: {ratio:.2f}x")
    else:
        print("  (nnU-Net v2 not found: pass --nnunet-python to compare in the same run)")


if __name__ == "__main__":
    main()
