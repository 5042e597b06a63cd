"""nnU-Net's per-epoch pseudo Dice on the validation patches and its moving average."""

import math

import numpy as np
import pytest
import torch
from ignite.engine import Engine

from monai_nnunet.training import PseudoDice
from monai_nnunet.training.logging.training_log import TrainingLog


def _run(metric, batches):
    engine = Engine(lambda e, b: b)
    metric.attach(engine, "pseudo")
    engine.run(batches, max_epochs=1)
    return engine.state.metrics


def test_counts_are_summed_over_the_patches_before_the_dice():
    rng = np.random.default_rng(0)
    batches, tp, fp, fn = [], np.zeros(2), np.zeros(2), np.zeros(2)
    for _ in range(3):
        logits = torch.from_numpy(rng.normal(size=(2, 3, 6, 6)).astype(np.float32))
        label = torch.from_numpy(rng.integers(0, 4, size=(2, 1, 6, 6))).to(torch.int16)  # 3: the ignore label
        batches.append((logits, label))
        prediction, target = logits.argmax(1).numpy(), label[:, 0].numpy()
        valid = target != 3
        for i, c in enumerate((1, 2)):
            tp[i] += ((prediction == c) & (target == c) & valid).sum()
            fp[i] += ((prediction == c) & (target != c) & valid).sum()
            fn[i] += ((prediction != c) & (target == c) & valid).sum()
    metrics = _run(PseudoDice([1, 2], ignore_label=3, output_transform=lambda b: b), batches)
    expected = 2 * tp / (2 * tp + fp + fn)
    np.testing.assert_allclose(metrics["pseudo_per_class"], expected)
    assert metrics["pseudo"] == pytest.approx(expected.mean())


def test_regions_use_positive_logits_and_the_ignore_channel():
    logits = torch.tensor([[[[2.0, -1.0, 3.0, 1.0]]]])  # one region, (1, 1, 1, 4)
    label = torch.tensor([[[[1, 1, 0, 1]], [[0, 0, 0, 1]]]], dtype=torch.uint8)  # region mask, then ignore mask
    metrics = _run(PseudoDice([(1, 2)], regions=True, output_transform=lambda b: b), [(logits, label)])
    # voxels 0-2 count: tp 1 (voxel 0), fn 1 (voxel 1), fp 1 (voxel 2)
    assert metrics["pseudo_per_class"] == [pytest.approx(0.5)]


def test_moving_average_is_nnunets():
    log = TrainingLog()
    for per_class in ([0.2, 0.4], [0.6, 0.8], [float("nan"), 0.5]):
        log.record_pseudo_dice(per_class)
    assert log.ema_pseudo_dice[0] == pytest.approx(0.3)
    assert log.ema_pseudo_dice[1] == pytest.approx(0.9 * 0.3 + 0.1 * 0.7)
    assert log.ema_pseudo_dice[2] == pytest.approx(0.9 * log.ema_pseudo_dice[1] + 0.1 * 0.5)
    restored = TrainingLog.from_dict(log.to_dict())  # kept in checkpoints: a resumed run continues the average
    assert restored.ema_pseudo_dice == log.ema_pseudo_dice and math.isnan(restored.pseudo_dice[2][0])
