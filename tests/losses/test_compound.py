from __future__ import annotations

import unittest

import numpy as np
import torch
import torch.nn.functional as F
from parameterized import parameterized

from monai_nnunet.losses import DC_and_BCE_loss, DC_and_CE_loss, RobustCrossEntropyLoss, SoftDiceLoss

from ._reference import FIXTURES

REF = np.load(FIXTURES)
IGNORE = 3
DIMS_BD = [(d, bd) for d in ("2d", "3d") for bd in (0, 1)]


def _x(dim: str) -> torch.Tensor:
    return torch.from_numpy(REF[f"x_{dim}"])


def _trainer_loss(bd: int, ignore_label=None) -> DC_and_CE_loss:
    """As nnU-Net's trainer builds it."""
    return DC_and_CE_loss(
        {"batch_dice": bool(bd), "smooth": 1e-5, "do_bg": False, "ddp": False}, {}, 1, 1, ignore_label
    )


class TestDCandCEAgainstNnUNet(unittest.TestCase):
    @parameterized.expand(DIMS_BD)
    def test_value_and_grad(self, dim, bd):
        x = _x(dim).requires_grad_(True)
        loss = _trainer_loss(bd)(x, torch.from_numpy(REF[f"y_{dim}"]))
        loss.backward()
        np.testing.assert_allclose(loss.item(), REF[f"val_dcce_bd{bd}_{dim}"], rtol=0, atol=1e-5)
        np.testing.assert_allclose(x.grad.numpy(), REF[f"grad_dcce_bd{bd}_{dim}"], rtol=1e-4, atol=1e-6)

    @parameterized.expand(DIMS_BD)
    def test_ignore_label(self, dim, bd):
        x = _x(dim).requires_grad_(True)
        loss = _trainer_loss(bd, IGNORE)(x, torch.from_numpy(REF[f"yign_{dim}"]))
        loss.backward()
        np.testing.assert_allclose(loss.item(), REF[f"val_dcceign_bd{bd}_{dim}"], rtol=0, atol=1e-5)
        np.testing.assert_allclose(x.grad.numpy(), REF[f"grad_dcceign_bd{bd}_{dim}"], rtol=1e-4, atol=1e-6)

    @parameterized.expand(DIMS_BD)
    def test_nothing_annotated_is_finite(self, dim, bd):
        x = _x(dim).requires_grad_(True)
        y = torch.full(REF[f"y_{dim}"].shape, IGNORE)
        loss = _trainer_loss(bd, IGNORE)(x, y)
        loss.backward()
        self.assertTrue(torch.isfinite(loss))
        np.testing.assert_allclose(loss.item(), REF[f"val_dcceallign_bd{bd}_{dim}"], rtol=0, atol=1e-6)
        self.assertTrue(torch.isfinite(x.grad).all())
        self.assertEqual(x.grad.abs().sum().item(), 0.0)  # nothing annotated: nothing to learn

    @parameterized.expand([("2d",), ("3d",)])
    def test_weights_and_ce_kwargs(self, dim):
        loss = DC_and_CE_loss({"batch_dice": False}, {"label_smoothing": 0.1}, weight_ce=2.0, weight_dice=0.5)
        value = loss(_x(dim), torch.from_numpy(REF[f"y_{dim}"]))
        np.testing.assert_allclose(value.item(), REF[f"val_dccew_bd0_{dim}"], rtol=0, atol=1e-5)


class TestDCandCE(unittest.TestCase):
    def test_is_ce_plus_dice(self):
        g = torch.Generator().manual_seed(3)
        x = torch.randn(2, 4, 6, 6, 6, generator=g)
        y = torch.randint(0, 4, (2, 1, 6, 6, 6), generator=g)
        expected = F.cross_entropy(x, y[:, 0]) + SoftDiceLoss(batch_dice=True)(x, y)
        self.assertAlmostEqual(DC_and_CE_loss({"batch_dice": True}, {})(x, y).item(), expected.item(), places=5)
        only_ce = DC_and_CE_loss({}, {}, weight_dice=0)(x, y)
        self.assertAlmostEqual(only_ce.item(), F.cross_entropy(x, y[:, 0]).item(), places=5)
        only_dice = DC_and_CE_loss({}, {}, weight_ce=0)(x, y[:, 0])  # (B, *spatial) target too
        self.assertAlmostEqual(only_dice.item(), SoftDiceLoss()(x, y).item(), places=6)

    def test_ignored_voxels_do_not_matter(self):
        g = torch.Generator().manual_seed(4)
        x = torch.randn(2, 3, 8, 8, generator=g, requires_grad=True)
        y = torch.randint(0, 3, (2, 1, 8, 8), generator=g)
        y[:, :, :3] = 255
        loss = DC_and_CE_loss({}, {}, ignore_label=255)
        loss(x, y).backward()
        self.assertEqual(x.grad[:, :, :3].abs().sum().item(), 0.0)
        self.assertGreater(x.grad[:, :, 3:].abs().sum().item(), 0.0)
        x2 = x.detach().clone()
        x2[:, :, :3] = torch.randn(2, 3, 3, 8, generator=g) * 10  # change logits only where ignored
        self.assertAlmostEqual(loss(x, y).item(), loss(x2, y).item(), places=6)

    def test_kwargs_dicts_not_modified(self):
        dice_kwargs, ce_kwargs = {"batch_dice": True}, {}
        DC_and_CE_loss(dice_kwargs, ce_kwargs, ignore_label=5)
        self.assertEqual(ce_kwargs, {})
        self.assertEqual(dice_kwargs, {"batch_dice": True})

    def test_perfect_prediction_is_minimum(self):
        y = torch.randint(0, 3, (2, 1, 6, 6))
        perfect = torch.zeros(2, 3, 6, 6).scatter_(1, y, 100.0)
        value = DC_and_CE_loss()(perfect, y).item()
        self.assertAlmostEqual(value, -1.0, places=5)  # CE ~ 0, Dice term -1
        self.assertGreater(DC_and_CE_loss()(perfect + torch.randn(2, 3, 6, 6) * 50, y).item(), value)

    @parameterized.expand([(torch.float16,), (torch.bfloat16,)])
    def test_autocast(self, dtype):
        y = torch.randint(0, 3, (1, 1, 300, 300))
        x = (torch.randn(1, 3, 300, 300) * 4).to(dtype)
        with torch.autocast("cpu", dtype=dtype):
            value = DC_and_CE_loss({"batch_dice": True}, {})(x, y)
        self.assertTrue(torch.isfinite(value))
        self.assertAlmostEqual(value.item(), DC_and_CE_loss({"batch_dice": True}, {})(x.float(), y).item(), places=4)

    @parameterized.expand(
        [
            ("batch", (2, 3, 4, 4), (1, 1, 4, 4), "batch size"),
            ("spatial", (2, 3, 4, 4), (2, 1, 4, 3), "spatial shape"),
            ("one_hot", (2, 3, 4, 4), (2, 3, 4, 4), "channels"),
        ]
    )
    def test_bad_shapes(self, _, xs, ys, msg):
        with self.assertRaisesRegex(ValueError, msg):
            DC_and_CE_loss()(torch.randn(xs), torch.zeros(ys))

    def test_bad_labels(self):
        y = torch.zeros(1, 1, 4, 4)
        y[..., 0, 0] = 3
        with self.assertRaisesRegex(ValueError, r"\[0, 3\)"):
            DC_and_CE_loss()(torch.randn(1, 3, 4, 4), y)
        y[..., 0, 0] = 255  # fine once it is the ignore label
        self.assertTrue(torch.isfinite(DC_and_CE_loss(ignore_label=255)(torch.randn(1, 3, 4, 4), y)))
        with self.assertRaisesRegex(ValueError, r"ignore_label=255 aside"):
            y[..., 1, 1] = 4
            DC_and_CE_loss(ignore_label=255)(torch.randn(1, 3, 4, 4), y)

    def test_bad_constructor_args(self):
        with self.assertRaisesRegex(ValueError, "apply_nonlin"):
            DC_and_CE_loss({"apply_nonlin": torch.sigmoid}, {})
        with self.assertRaisesRegex(ValueError, "ce_kwargs"):
            DC_and_CE_loss({}, [1])


class TestRobustCE(unittest.TestCase):
    def test_squeezes_channel(self):
        x = torch.randn(2, 3, 4, 4)
        y = torch.randint(0, 3, (2, 1, 4, 4)).float()
        self.assertAlmostEqual(RobustCrossEntropyLoss()(x, y).item(), F.cross_entropy(x, y[:, 0].long()).item(), 6)
        with self.assertRaisesRegex(ValueError, "label map"):
            RobustCrossEntropyLoss()(x, torch.zeros(2, 2, 4, 4))


class TestDCandBCE(unittest.TestCase):
    @parameterized.expand(DIMS_BD)
    def test_against_nnunet(self, dim, bd):
        x = _x(dim)
        kwargs = {"batch_dice": bool(bd), "do_bg": True, "smooth": 1e-5, "ddp": False}
        value = DC_and_BCE_loss({}, kwargs)(x, torch.from_numpy(REF[f"reg_{dim}"]))
        np.testing.assert_allclose(value.item(), REF[f"val_bce_bd{bd}_{dim}"], rtol=0, atol=1e-5)
        xi = x.clone().requires_grad_(True)
        value = DC_and_BCE_loss({}, kwargs, use_ignore_label=True)(xi, torch.from_numpy(REF[f"regign_{dim}"]))
        value.backward()
        np.testing.assert_allclose(value.item(), REF[f"val_bceign_bd{bd}_{dim}"], rtol=0, atol=1e-5)
        if bd:
            np.testing.assert_allclose(xi.grad.numpy(), REF[f"grad_bceign_bd1_{dim}"], rtol=1e-4, atol=1e-6)

    def test_defaults_keep_every_region(self):
        x = torch.randn(2, 2, 5, 5)
        t = (torch.rand(2, 2, 5, 5) > 0.5).float()
        expected = F.binary_cross_entropy_with_logits(x, t) + SoftDiceLoss("sigmoid", do_bg=True)(x, t)
        self.assertAlmostEqual(DC_and_BCE_loss()(x, t).item(), expected.item(), places=5)

    def test_nothing_annotated_is_finite(self):
        x = torch.randn(1, 2, 5, 5, requires_grad=True)
        t = torch.ones(1, 3, 5, 5)  # last channel: everything ignored
        value = DC_and_BCE_loss(use_ignore_label=True)(x, t)
        value.backward()
        self.assertAlmostEqual(value.item(), -1.0, places=6)
        self.assertTrue(torch.isfinite(x.grad).all())

    def test_bad_input(self):
        with self.assertRaisesRegex(ValueError, "channels"):
            DC_and_BCE_loss(use_ignore_label=True)(torch.randn(1, 2, 4, 4), torch.zeros(1, 2, 4, 4))
        with self.assertRaisesRegex(ValueError, r"\[0, 1\]"):
            DC_and_BCE_loss()(torch.randn(1, 2, 4, 4), torch.full((1, 2, 4, 4), 2.0))
        with self.assertRaisesRegex(ValueError, "region target"):
            DC_and_BCE_loss()(torch.randn(1, 2, 4, 4), torch.zeros(1, 4, 4))
        with self.assertRaisesRegex(ValueError, "batch size"):
            DC_and_BCE_loss()(torch.randn(1, 2, 4, 4), torch.zeros(2, 2, 4, 4))


if __name__ == "__main__":
    unittest.main()
