from __future__ import annotations

import unittest

import numpy as np
import torch
import torch.nn.functional as F
from parameterized import parameterized
from torch.nn.modules.loss import _Loss

from monai_nnunet.losses import (
    BlobDiceLoss,
    DC_and_BCE_loss,
    DC_and_CE_loss,
    DeepSupervisionWrapper,
    RegionDiceLoss,
    deep_supervision_weights,
)

from ._reference import FIXTURES

REF = np.load(FIXTURES)


class _Recorder(_Loss):
    """Returns the mean of its input and records the spatial shapes it was called with."""

    def __init__(self):
        super().__init__()
        self.calls: list[tuple] = []

    def forward(self, input, target, **kwargs):
        self.calls.append((tuple(input.shape[2:]), tuple(target.shape[2:]), {k: v for k, v in kwargs.items()}))
        return input.float().mean()


def _pyramid(x: torch.Tensor, n: int) -> list[torch.Tensor]:
    sl = lambda s: (slice(None), slice(None)) + (slice(None, None, s),) * (x.ndim - 2)  # noqa: E731
    return [x[sl(2**i)] for i in range(n)]


class TestWeights(unittest.TestCase):
    @parameterized.expand(
        [
            (1, [1.0]),
            (2, [1.0, 0.0]),
            (3, [2 / 3, 1 / 3, 0.0]),
            (5, [0.533333, 0.266667, 0.133333, 0.066667, 0.0]),
        ]
    )
    def test_default_weights(self, n, expected):
        w = deep_supervision_weights(n)
        np.testing.assert_allclose(w, expected, atol=1e-6)
        self.assertAlmostEqual(sum(w), 1.0, places=12)

    def test_matches_nnunet_fixture(self):
        np.testing.assert_allclose(deep_supervision_weights(3), REF["dsweights3"], atol=1e-12)

    def test_bad_count(self):
        for bad in (0, -1, 2.5, True):
            with self.assertRaisesRegex(ValueError, "num_outputs"):
                deep_supervision_weights(bad)


class TestWrapper(unittest.TestCase):
    @parameterized.expand([("2d",), ("3d",)])
    def test_against_nnunet(self, dim):
        x = torch.from_numpy(REF[f"x_{dim}"]).requires_grad_(True)
        y = torch.from_numpy(REF[f"y_{dim}"])
        xs, ys = _pyramid(x, 3), _pyramid(y, 3)
        outputs = [xs[0], xs[1] * 0.5, xs[2] * 2.0]
        loss = DeepSupervisionWrapper(DC_and_CE_loss({"batch_dice": True}, {}))(outputs, ys)
        loss.backward()
        np.testing.assert_allclose(loss.item(), REF[f"val_ds3_{dim}"], rtol=0, atol=1e-5)
        np.testing.assert_allclose(x.grad.numpy(), REF[f"grad_ds3_{dim}"], rtol=1e-4, atol=1e-6)

    @parameterized.expand([(3,), (5,)])
    def test_weighted_sum_and_zero_weight_skipped(self, n):
        rec = _Recorder()
        outs = [torch.full((1, 2) + (32 // 2**i,) * 3, float(i + 1)) for i in range(n)]
        value = DeepSupervisionWrapper(rec)(outs, torch.zeros(1, 1, 32, 32, 32))
        w = deep_supervision_weights(n)
        self.assertAlmostEqual(value.item(), sum(wi * (i + 1) for i, wi in enumerate(w)), places=6)
        self.assertEqual(len(rec.calls), n - 1)  # the lowest resolution (weight 0) is not computed
        for i, (out_shape, tgt_shape, _) in enumerate(rec.calls):
            self.assertEqual(out_shape, (32 // 2**i,) * 3)
            self.assertEqual(tgt_shape, out_shape)  # target resized to each output

    def test_single_target_downsampled_nearest(self):
        g = torch.Generator().manual_seed(0)
        y = torch.randint(0, 3, (2, 1, 8, 8), generator=g)
        x = torch.randn(2, 3, 8, 8, generator=g)
        outs = [x, F.avg_pool2d(x, 2), F.avg_pool2d(x, 4)]
        expected = [y, F.interpolate(y.float(), size=(4, 4), mode="nearest-exact").long()]
        loss = DeepSupervisionWrapper(DC_and_CE_loss())
        base = DC_and_CE_loss()
        ref = (2 / 3) * base(outs[0], expected[0]) + (1 / 3) * base(outs[1], expected[1])
        self.assertAlmostEqual(loss(outs, y).item(), ref.item(), places=6)
        self.assertAlmostEqual(loss(outs, y[:, 0]).item(), ref.item(), places=6)  # (B, *spatial) target
        self.assertAlmostEqual(loss(tuple(outs), [y, expected[1], None]).item(), ref.item(), places=6)

    def test_custom_weights_and_single_tensor(self):
        x = torch.randn(1, 3, 8, 8)
        y = torch.randint(0, 3, (1, 1, 8, 8))
        base = DC_and_CE_loss()
        ds = DeepSupervisionWrapper(base, weight_factors=[1.0, 1.0])
        outs = [x, x[:, :, ::2, ::2]]
        expected = base(outs[0], y) + base(outs[1], y[:, :, ::2, ::2])
        self.assertAlmostEqual(ds(outs, [y, y[:, :, ::2, ::2]]).item(), expected.item(), places=6)
        self.assertAlmostEqual(ds(x, y).item(), base(x, y).item(), places=6)

    def test_with_blob_and_region_losses(self):
        y = torch.zeros(1, 1, 16, 16, dtype=torch.long)
        y[0, 0, 2:6, 2:6] = 1
        y[0, 0, 10:14, 9:15] = 1
        x = torch.randn(1, 2, 16, 16)
        outs = [x, F.avg_pool2d(x, 2), F.avg_pool2d(x, 4)]
        inst = torch.zeros_like(y)
        inst[0, 0, 2:6, 2:6] = 1
        inst[0, 0, 10:14, 9:15] = 2
        blob = DeepSupervisionWrapper(BlobDiceLoss())
        with_instances = blob(outs, y, instances=inst)
        self.assertAlmostEqual(with_instances.item(), blob(outs, y).item(), places=6)
        region = DeepSupervisionWrapper(RegionDiceLoss())
        self.assertTrue(torch.isfinite(region(outs, y)))
        bce = DeepSupervisionWrapper(DC_and_BCE_loss())
        onehot = torch.cat([y == 0, y == 1], 1)
        self.assertTrue(torch.isfinite(bce(outs, onehot)))

    def test_bad_input(self):
        ds = DeepSupervisionWrapper(DC_and_CE_loss())
        x = torch.randn(1, 3, 8, 8)
        y = torch.zeros(1, 1, 8, 8)
        with self.assertRaisesRegex(ValueError, "non-empty list"):
            ds([], y)
        with self.assertRaisesRegex(ValueError, "target is a list of 1"):
            ds([x, x[:, :, ::2, ::2]], [y])
        with self.assertRaisesRegex(ValueError, "weight_factors has 2"):
            DeepSupervisionWrapper(DC_and_CE_loss(), [1, 0.5])([x, x, x], y)
        with self.assertRaisesRegex(ValueError, "spatial axes"):
            ds([x, x], torch.zeros(1, 1, 1, 8, 8))
        with self.assertRaisesRegex(ValueError, "every entry of input"):
            ds([x, "x"], y)
        with self.assertRaisesRegex(ValueError, "weight_factors"):
            DeepSupervisionWrapper(DC_and_CE_loss(), [0, 0])
        with self.assertRaisesRegex(ValueError, "weight_factors"):
            DeepSupervisionWrapper(DC_and_CE_loss(), [1, -1])
        with self.assertRaisesRegex(ValueError, "callable"):
            DeepSupervisionWrapper("dice")


if __name__ == "__main__":
    unittest.main()


def test_one_output_is_scored_against_the_full_resolution_target():
    # a network without deep supervision (MONAI's SegResNet, UNet) in a run whose loader makes the target list
    torch.manual_seed(0)
    inner = DC_and_CE_loss({}, {})
    target = torch.randint(0, 3, (2, 1, 8, 8, 8))
    output = torch.randn(2, 3, 8, 8, 8)
    loss = DeepSupervisionWrapper(inner)
    expected = inner(output, target)
    assert torch.allclose(loss(output, [target, target[:, :, ::2, ::2, ::2]]), expected)
    assert torch.allclose(loss(output, target), expected)


def test_heads_stacked_at_full_resolution_are_weighted_like_a_list():
    # MONAI's DynUNet with deep_supervision=True returns (B, 1 + deep_supr_num, C, *spatial) in training
    torch.manual_seed(0)
    inner = DC_and_CE_loss({}, {})
    target = torch.randint(0, 3, (2, 1, 8, 8, 8))
    stacked = torch.randn(2, 3, 3, 8, 8, 8)
    loss = DeepSupervisionWrapper(inner)
    expected = loss(list(stacked.unbind(1)), target)
    assert torch.allclose(loss(stacked, [target, target[:, :, ::2, ::2, ::2]]), expected)
    assert torch.allclose(expected, 2 / 3 * inner(stacked[:, 0], target) + 1 / 3 * inner(stacked[:, 1], target))
