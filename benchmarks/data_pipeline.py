"""Batches per second of the full 3d_fullres training data pipeline on the Hippocampus data, ours and nnU-Net v2's.

    python benchmarks/data_pipeline.py [--workers 1 2] [--batches 40] [--nnunet-python PATH]

Both pipelines use the plans' batch size (7) and patch (40x56x40), foreground oversampling, the full augmentation
and deep-supervision targets, and run in worker processes (one thread each). Each measurement runs in a fresh
process; peak memory is the summed peak RSS of that process and its workers. The data is preprocessed into a
temporary folder first by each tool (or pass --preprocessed / --nnunet-preprocessed to reuse caches). nnU-Net v2
runs from a side venv (--nnunet-python, NNUNET_PYTHON or ../nnunet_venv) and is never a dependency.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO_ROOT, fresh_dir, nnunet_bin, nnunet_python, require_hippocampus  # noqa: E402


def run_ours(preprocessed: str, workers: int, batches: int, warmup: int) -> dict:
    import torch

    torch.set_num_threads(1)
    from monai_nnunet.data import PatchBatchStream, PreprocessedCases, make_patch_loader
    from monai_nnunet.planning import PlansManager
    from monai_nnunet.transforms.labels import deep_supervision_scales
    from monai_nnunet.transforms.pipeline import augmentation_settings, training_transforms
    from monai_nnunet.utils.files import load_json

    folder = Path(preprocessed) / "Dataset004_Hippocampus"
    cfg = PlansManager(folder / "nnUNetPlans.json").get_configuration("3d_fullres")
    train_ids = load_json(folder / "splits_final.json")[0]["train"]
    settings = augmentation_settings(cfg.patch_size)
    chain = training_transforms(settings, deep_supervision_scales=deep_supervision_scales(cfg.pool_op_kernel_sizes),
                                use_mask_for_norm=cfg.use_mask_for_norm)
    stream = PatchBatchStream(PreprocessedCases(folder / cfg.data_identifier, train_ids), cfg.batch_size, chain)
    if workers == 0:
        from monai.data import set_track_meta

        set_track_meta(False)
    iterator = iter(make_patch_loader(stream, num_workers=workers))
    for _ in range(warmup):
        next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    elapsed = time.perf_counter() - start
    from _rss import total_peak_rss_mb

    return {"batches_per_s": batches / elapsed, "peak_rss_mb": total_peak_rss_mb()}


def measure(command: list[str], env: dict) -> dict:
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def preprocess(command: list[str], root: Path, data: Path, env: dict) -> str:
    raw = fresh_dir(root / "raw")
    (raw / data.name).symlink_to(data)
    env = dict(env, nnUNet_raw=str(raw), nnUNet_preprocessed=str(fresh_dir(root / "pre")),
               nnUNet_results=str(root / "res"))
    subprocess.run(command, env=env, check=True, capture_output=True)
    return str(root / "pre")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--preprocessed", default=None, help="our nnUNet_preprocessed holding Dataset004")
    parser.add_argument("--nnunet-preprocessed", default=None, help="nnU-Net's nnUNet_preprocessed holding Dataset004")
    parser.add_argument("--nnunet-python", default=None)
    parser.add_argument("--child", nargs=4, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_ours(args.child[0], *(int(v) for v in args.child[1:]))))
        return
    data = require_hippocampus()
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), OMP_NUM_THREADS="1")
    py = nnunet_python(args.nnunet_python)
    with tempfile.TemporaryDirectory() as tmp:
        ours_pre = args.preprocessed or preprocess(
            [sys.executable, "-m", "monai_nnunet", "plan_and_preprocess", "-d", "4", "-c", "3d_fullres", "-np", "2"],
            Path(tmp) / "ours", data, env)
        theirs_pre = None
        if py is not None:
            theirs_pre = args.nnunet_preprocessed or preprocess(
                [str(nnunet_bin(py, "nnUNetv2_plan_and_preprocess")), "-d", "4", "-c", "3d_fullres", "-np", "2"],
                Path(tmp) / "nnunet", data, env)
            # the same fold for both: our split file equals nnU-Net's
            split = Path(ours_pre) / "Dataset004_Hippocampus" / "splits_final.json"
            target = Path(theirs_pre) / "Dataset004_Hippocampus" / "splits_final.json"
            if not target.exists():
                target.write_text(split.read_text())
        rows = []
        for workers in args.workers:
            ours = measure([sys.executable, __file__, "--child", ours_pre, str(workers), str(args.batches),
                            str(args.warmup)], env)
            rows.append(("monai_nnunet", workers, ours))
            if py is not None:
                theirs = measure([str(py), str(Path(__file__).parent / "_nnunet_data_pipeline.py"), theirs_pre,
                                  str(workers), str(args.batches), str(args.warmup)], env)
                rows.append(("nnU-Net v2", workers, theirs))
    print(f"3d_fullres training batches (batch 7, patch 40x56x40, full augmentation), {args.batches} batches:")
    print(f"  {'pipeline':<14}{'workers':>8}{'batches/s':>11}{'per worker':>12}{'peak RSS MiB':>14}")
    for name, workers, r in rows:
        per = r["batches_per_s"] / max(workers, 1)
        print(f"  {name:<14}{workers:>8}{r['batches_per_s']:>11.2f}{per:>12.2f}{r['peak_rss_mb']:>14.0f}")
    if py is not None:
        for workers in args.workers:
            ours = next(r for n, w, r in rows if n == "monai_nnunet" and w == workers)
            theirs = next(r for n, w, r in rows if n == "nnU-Net v2" and w == workers)
            print(f"  {workers} worker(s): throughput {ours['batches_per_s'] / theirs['batches_per_s']:.2f}x "
                  f"nnU-Net's, memory {ours['peak_rss_mb'] / theirs['peak_rss_mb']:.2f}x")
    else:
        print("  (nnU-Net v2 not found: pass --nnunet-python to compare in the same run)")


if __name__ == "__main__":
    main()
