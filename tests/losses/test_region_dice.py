from __future__ import annotations

import unittest

import numpy as np
import torch
from parameterized import parameterized

from monai_nnunet.losses import DC_and_CE_loss, DC_and_Region_CE_loss, RegionDiceLoss, boundary_regions

from ._reference import boundary_band_ref, region_loss_ref, softmax_np

S = 1e-5
# class 1 on voxels 3..6 of a 1x10 strip: band (width 1) = {2, 3, 6, 7}, interior region = the rest
LABELS_1x10 = torch.tensor([0, 0, 0, 1, 1, 1, 1, 0, 0, 0]).view(1, 1, 1, 10)


def _probs(p1: list[float]) -> torch.Tensor:
    p1_t = torch.tensor(p1, dtype=torch.float32)
    return torch.stack([1 - p1_t, p1_t]).view(1, 2, 1, len(p1))


class TestRegionDiceHandComputed(unittest.TestCase):
    def test_boundary_map(self):
        regions = boundary_regions(LABELS_1x10[0, 0].numpy(), 2)
        np.testing.assert_array_equal(regions[1, 0], [2, 2, 1, 1, 2, 2, 1, 1, 2, 2])

    def test_wrong_only_on_the_boundary(self):
        # false positive at voxel 2 (outer band), false negative at voxel 6 (inner band)
        probs = _probs([0, 0, 1, 1, 1, 1, 0, 0, 0, 0])
        # band: I = 1, P = 2, G = 2 -> 0.5 ; interior: I = 2, P = 2, G = 2 -> 1
        dc_band, dc_int = (2 + S) / (4 + S), 1.0
        loss = RegionDiceLoss(apply_nonlin=None)(probs, LABELS_1x10)
        self.assertAlmostEqual(loss.item(), -(2 * dc_band + dc_int) / 3, places=6)
        equal_weights = RegionDiceLoss(apply_nonlin=None, region_weights=(1, 1))(probs, LABELS_1x10)
        self.assertAlmostEqual(equal_weights.item(), -(dc_band + dc_int) / 2, places=6)

    def test_far_false_positive_costs_in_interior_region(self):
        probs = _probs([0, 0, 0, 1, 1, 1, 1, 0, 0, 1])  # FP at voxel 9, far from the object
        dc_int = (4 + S) / (3 + 2 + S)
        self.assertAlmostEqual(RegionDiceLoss(apply_nonlin=None)(probs, LABELS_1x10).item(), -(2 + dc_int) / 3, 6)

    def test_wider_band(self):
        regions = boundary_regions(LABELS_1x10[0, 0].numpy(), 2, boundary_width=2)
        np.testing.assert_array_equal(regions[1, 0], [2, 1, 1, 1, 1, 1, 1, 1, 1, 2])
        probs = _probs([0, 0, 1, 1, 1, 1, 0, 0, 0, 0])
        value = RegionDiceLoss(apply_nonlin=None, boundary_width=2)(probs, LABELS_1x10)
        # band {1..8}: I = 3, P = 4, G = 4; interior {0, 9}: I = 0, P = 0, G = 0 -> smooth / smooth = 1
        self.assertAlmostEqual(value.item(), -(2 * (6 + S) / (8 + S) + 1) / 3, places=6)

    def test_given_region_map(self):
        probs = _probs([0, 0, 1, 1, 1, 1, 0, 0, 0, 0])
        regions = torch.tensor([1, 1, 1, 1, 1, 2, 2, 2, 0, 0]).view(1, 1, 1, 10)
        # region 1 = voxels 0..4: I = 2, P = 3, G = 2; region 2 = voxels 5..7: I = 1, P = 1, G = 2
        dc1, dc2 = (4 + S) / (5 + S), (2 + S) / (3 + S)
        loss = RegionDiceLoss(regions="given", region_weights=(1.0, 3.0), apply_nonlin=None)
        self.assertAlmostEqual(loss(probs, LABELS_1x10, regions).item(), -(dc1 + 3 * dc2) / 4, places=6)
        uniform = RegionDiceLoss(regions="given", apply_nonlin=None)(probs, LABELS_1x10, regions)
        self.assertAlmostEqual(uniform.item(), -(dc1 + dc2) / 2, places=6)

    def test_perfect_prediction_is_minimum(self):
        y = torch.randint(0, 3, (2, 1, 8, 8, 8))
        perfect = torch.zeros(2, 3, 8, 8, 8).scatter_(1, y, 100.0)
        best = RegionDiceLoss()(perfect, y).item()
        self.assertAlmostEqual(best, -1.0, places=5)
        self.assertGreater(RegionDiceLoss()(perfect + torch.randn(2, 3, 8, 8, 8) * 50, y).item(), best)

    def test_empty_ground_truth(self):
        x = torch.randn(1, 3, 6, 6, requires_grad=True)
        loss = RegionDiceLoss()(x, torch.zeros(1, 1, 6, 6))
        loss.backward()
        self.assertTrue(torch.isfinite(loss))
        self.assertGreater(x.grad.abs().sum().item(), 0.0)  # predicted foreground still costs
        # nothing annotated: no region is present, the loss is 0 and still differentiable
        x.grad = None
        none = RegionDiceLoss(ignore_label=7)(x, torch.full((1, 1, 6, 6), 7))
        none.backward()
        self.assertEqual(none.item(), 0.0)
        self.assertEqual(x.grad.abs().sum().item(), 0.0)


class TestRegionDiceAgainstReference(unittest.TestCase):
    @parameterized.expand(
        [
            (shape, bd, bg, w)
            for shape in ((2, 3, 12, 12), (2, 3, 7, 8, 9))
            for bd in (False, True)
            for bg, w in ((False, 1), (True, 2))
        ]
    )
    def test_boundary_regions(self, shape, batch_dice, include_background, width):
        g = torch.Generator().manual_seed(sum(shape) + width)
        x = torch.randn(shape, generator=g) * 2
        y = torch.zeros((shape[0], 1) + shape[2:], dtype=torch.long)
        y[(slice(None), slice(None)) + tuple(slice(2, s - 2) for s in shape[2:])] = 1
        y[torch.rand(y.shape, generator=g) < 0.15] = 2
        loss = RegionDiceLoss(boundary_width=width, include_background=include_background, batch_dice=batch_dice)
        ref = region_loss_ref(
            softmax_np(x), y[:, 0].numpy(), boundary_width=width, include_background=include_background,
            batch_dice=batch_dice,
        )
        self.assertAlmostEqual(loss(x, y).item(), ref, places=5)

    def test_boundary_map_matches_filter_definition(self):
        g = torch.Generator().manual_seed(5)
        y = (torch.rand(9, 10, 11, generator=g) < 0.4).long().numpy()
        for width in (1, 2):
            np.testing.assert_array_equal(boundary_regions(y, 2, width)[1] == 1, boundary_band_ref(y == 1, width))

    @parameterized.expand([(1,), (3,)])
    def test_given_maps_shared_and_per_class(self, channels):
        g = torch.Generator().manual_seed(channels)
        x = torch.randn(2, 3, 6, 7, 8, generator=g)
        y = torch.randint(0, 3, (2, 1, 6, 7, 8), generator=g)
        regions = torch.randint(0, 4, (2, channels, 6, 7, 8), generator=g)
        loss = RegionDiceLoss(regions="given", region_weights=(1.0, 2.0, 0.5))(x, y, regions)
        ref = region_loss_ref(softmax_np(x), y[:, 0].numpy(), (1.0, 2.0, 0.5), regions=regions.numpy())
        self.assertAlmostEqual(loss.item(), ref, places=5)

    def test_precomputed_equals_computed(self):
        g = torch.Generator().manual_seed(8)
        x = torch.randn(2, 3, 9, 9, 9, generator=g)
        y = torch.randint(0, 3, (2, 1, 9, 9, 9), generator=g)
        regions = torch.from_numpy(np.stack([boundary_regions(y[b, 0].numpy(), 3) for b in range(2)]))
        loss = RegionDiceLoss()
        self.assertAlmostEqual(loss(x, y, regions).item(), loss(x, y).item(), places=6)

    def test_ignore_label(self):
        g = torch.Generator().manual_seed(6)
        x = torch.randn(2, 3, 10, 10, generator=g)
        y = torch.randint(0, 3, (2, 1, 10, 10), generator=g)
        y[torch.rand(y.shape, generator=g) < 0.2] = 5
        regions = torch.randint(1, 3, (2, 1, 10, 10), generator=g)
        value = RegionDiceLoss(regions="given", ignore_label=5)(x, y, regions)
        ref = region_loss_ref(softmax_np(x), y[:, 0].numpy(), (1.0, 1.0), ignore_label=5, regions=regions.numpy())
        self.assertAlmostEqual(value.item(), ref, places=5)

    def test_gradient(self):
        x = torch.randn(2, 3, 8, 8, 8, requires_grad=True)
        RegionDiceLoss()(x, torch.randint(0, 3, (2, 1, 8, 8, 8))).backward()
        self.assertTrue(torch.isfinite(x.grad).all())
        self.assertGreater(x.grad.abs().sum().item(), 0.0)

    @parameterized.expand([(torch.float16,), (torch.bfloat16,)])
    def test_autocast(self, dtype):
        y = torch.zeros(1, 1, 300, 300, dtype=torch.long)
        y[0, 0, 5:295, 5:295] = 1  # 84100 voxels of class 1
        regions = torch.from_numpy(boundary_regions(y[0, 0].numpy(), 2))[None]
        x = (torch.randn(1, 2, 300, 300) * 4).to(dtype)
        with torch.autocast("cpu", dtype=dtype):
            value = RegionDiceLoss()(x, y, regions)
        self.assertTrue(torch.isfinite(value))
        self.assertAlmostEqual(value.item(), RegionDiceLoss()(x.float(), y, regions).item(), places=5)


class TestRegionDiceBadInput(unittest.TestCase):
    def test_bad_input(self):
        x = torch.randn(2, 3, 6, 6)
        y = torch.zeros(2, 1, 6, 6)
        with self.assertRaisesRegex(ValueError, "batch size"):
            RegionDiceLoss()(x, torch.zeros(1, 1, 6, 6))
        with self.assertRaisesRegex(ValueError, r"\[0, 3\)"):
            RegionDiceLoss()(x, torch.full((2, 1, 6, 6), 4))
        with self.assertRaisesRegex(ValueError, "regions must be passed"):
            RegionDiceLoss(regions="given")(x, y)
        with self.assertRaisesRegex(ValueError, "channels"):
            RegionDiceLoss()(x, y, torch.ones(2, 2, 6, 6))
        with self.assertRaisesRegex(ValueError, "spatial shape"):
            RegionDiceLoss()(x, y, torch.ones(2, 1, 6, 5))
        with self.assertRaisesRegex(ValueError, r"regions values must be in \[0, 3\)"):
            RegionDiceLoss()(x, y, torch.full((2, 1, 6, 6), 3))
        with self.assertRaisesRegex(ValueError, "non-negative"):
            RegionDiceLoss(regions="given")(x, y, torch.full((2, 1, 6, 6), -1))

    def test_bad_constructor_args(self):
        with self.assertRaisesRegex(ValueError, "regions must be one of"):
            RegionDiceLoss(regions="edges")
        with self.assertRaisesRegex(ValueError, "2 entries"):
            RegionDiceLoss(region_weights=(1, 2, 3))
        with self.assertRaisesRegex(ValueError, "region_weights"):
            RegionDiceLoss(regions="given", region_weights=(0, 0))
        with self.assertRaisesRegex(ValueError, "boundary_width"):
            RegionDiceLoss(boundary_width=0)
        with self.assertRaisesRegex(ValueError, "connectivity"):
            RegionDiceLoss(connectivity=-2)
        with self.assertRaisesRegex(ValueError, r"connectivity must be in \[1, 2\]"):
            RegionDiceLoss(connectivity=3)(torch.randn(1, 2, 4, 4), torch.zeros(1, 1, 4, 4))


class TestDCandRegionCE(unittest.TestCase):
    def test_sum_of_terms(self):
        g = torch.Generator().manual_seed(14)
        x = torch.randn(2, 3, 8, 8, 8, generator=g, requires_grad=True)
        y = torch.randint(0, 3, (2, 1, 8, 8, 8), generator=g)
        loss = DC_and_Region_CE_loss({"batch_dice": True}, {}, weight_region=2.0, region_kwargs={"boundary_width": 2})
        self.assertTrue(loss.region.batch_dice)
        expected = DC_and_CE_loss({"batch_dice": True}, {})(x, y) + 2.0 * RegionDiceLoss(
            boundary_width=2, batch_dice=True
        )(x, y)
        value = loss(x, y)
        self.assertAlmostEqual(value.item(), expected.item(), places=5)
        regions = torch.from_numpy(np.stack([boundary_regions(y[b, 0].numpy(), 3, 2) for b in range(2)]))
        self.assertAlmostEqual(loss(x, y, regions).item(), expected.item(), places=5)
        value.backward()
        self.assertTrue(torch.isfinite(x.grad).all())

    def test_ignore_label(self):
        x = torch.randn(1, 3, 8, 8, requires_grad=True)
        y = torch.randint(0, 3, (1, 1, 8, 8))
        y[..., :3] = 9
        loss = DC_and_Region_CE_loss(ignore_label=9)
        loss(x, y).backward()
        self.assertEqual(x.grad[..., :3].abs().sum().item(), 0.0)
        self.assertTrue(torch.isfinite(loss(x, torch.full_like(y, 9))))
        with self.assertRaisesRegex(ValueError, "ignore_label"):
            DC_and_Region_CE_loss(region_kwargs={"ignore_label": 1}, ignore_label=9)


if __name__ == "__main__":
    unittest.main()
