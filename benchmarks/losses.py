"""CPU milliseconds per forward + backward of the losses on a 2 x 3 x 96 x 96 x 96 batch.

    python benchmarks/losses.py [--threads 2] [--repeats 7] [--size 96] [--blobs 32]

Every figure comes from the same run: fixed thread count, warm-up, then ``--repeats`` rounds that each
run every case once (interleaved, so load from other processes hits all cases alike); the table gives
the median milliseconds and the median of the per-round ratios to DC_and_CE_loss.
The labels hold ``--blobs`` separate cubes per foreground class; instance and region maps for the
"precomputed" rows are made beforehand (as ``LabelToBlobsd`` / ``LabelToRegionsd`` do in the data
loader) and not timed.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from monai_nnunet.losses import (
    BlobDiceLoss,
    DC_and_Blob_CE_loss,
    DC_and_CE_loss,
    DC_and_Region_CE_loss,
    RegionDiceLoss,
    boundary_regions,
    label_blobs,
)


def make_labels(batch: int, size: int, n_classes: int, blobs: int, seed: int = 0) -> np.ndarray:
    """(B, 1, S, S, S) labels with ``blobs`` separate cubes (edge 5 to 9) per foreground class."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((batch, 1, size, size, size), np.uint8)
    for b in range(batch):
        occupied = np.zeros((size,) * 3, bool)
        for c in range(1, n_classes):
            placed = 0
            while placed < blobs:
                edge = int(rng.integers(5, 10))
                lo = rng.integers(1, size - edge - 1, 3)
                box = tuple(slice(int(o) - 1, int(o) + edge + 1) for o in lo)  # keep a 1-voxel gap
                if occupied[box].any():
                    continue
                inner = tuple(slice(int(o), int(o) + edge) for o in lo)
                labels[b, 0][inner] = c
                occupied[box] = True
                placed += 1
    return labels


def time_interleaved(fns: list[Callable[[], None]], repeats: int, warmup: int = 2) -> list[list[float]]:
    """Milliseconds per call, ``repeats`` rounds; each round runs every case once, so load changes on a
    shared machine hit all cases alike."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    rounds = []
    for _ in range(repeats):
        row = []
        for fn in fns:
            start = time.perf_counter()
            fn()
            row.append((time.perf_counter() - start) * 1000)
        rounds.append(row)
    return rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--classes", type=int, default=3)
    parser.add_argument("--blobs", type=int, default=32, help="blobs per foreground class and sample")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    labels_np = make_labels(args.batch, args.size, args.classes, args.blobs)
    labels = torch.from_numpy(labels_np)
    instances = torch.from_numpy(np.stack([label_blobs(labels_np[b, 0]) for b in range(args.batch)])[:, None])
    regions = torch.from_numpy(
        np.stack([boundary_regions(labels_np[b, 0], args.classes) for b in range(args.batch)])
    )
    logits = torch.randn(args.batch, args.classes, *(args.size,) * 3, requires_grad=True)

    def step(loss: torch.nn.Module, *extra: torch.Tensor) -> Callable[[], None]:
        def run() -> None:
            logits.grad = None
            loss(logits, labels, *extra).backward()

        return run

    trainer_dice = {"batch_dice": False, "smooth": 1e-5, "do_bg": False}
    cases = [
        ("DC_and_CE_loss", step(DC_and_CE_loss(trainer_dice, {}))),
        ("BlobDiceLoss, precomputed instances", step(BlobDiceLoss(), instances)),
        ("BlobDiceLoss, labels components itself", step(BlobDiceLoss())),
        ("RegionDiceLoss, precomputed regions", step(RegionDiceLoss(), regions)),
        ("RegionDiceLoss, computes regions itself", step(RegionDiceLoss())),
        ("DC_and_Blob_CE_loss, precomputed instances", step(DC_and_Blob_CE_loss(trainer_dice, {}), instances)),
        ("DC_and_Region_CE_loss, precomputed regions", step(DC_and_Region_CE_loss(trainer_dice, {}), regions)),
    ]
    print(
        f"CPU forward+backward, logits {tuple(logits.shape)} float32, {int(instances.max())} blobs per sample "
        f"({args.blobs} per foreground class), torch {torch.__version__}, {args.threads} threads, "
        f"median of {args.repeats} interleaved rounds after 2 warm-ups, {platform.processor() or platform.machine()}"
    )
    rounds = time_interleaved([fn for _, fn in cases], args.repeats)
    print(f"| {'loss':<44} | {'ms':>8} | {'x DC_and_CE':>11} |")
    print(f"|{'-' * 46}|{'-' * 10}|{'-' * 13}|")
    ratios = []
    for i, (name, _) in enumerate(cases):
        ms = statistics.median(r[i] for r in rounds)
        ratio = statistics.median(r[i] / r[0] for r in rounds)  # per-round ratio, then median
        ratios.append(ratio)
        print(f"| {name:<44} | {ms:8.1f} | {ratio:11.2f} |")
    for (name, _), ratio in zip(cases, ratios):
        if "precomputed" in name and not name.startswith("DC_and_"):
            verdict = "OK" if ratio <= 2 else "OVER BUDGET"
            print(f"{name}: {ratio:.2f}x DC_and_CE_loss (budget 2x): {verdict}")

if __name__ == "__main__":
    main()
