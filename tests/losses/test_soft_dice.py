from __future__ import annotations

import os
import tempfile
import unittest

import numpy as np
import pytest
import torch
import torch.distributed as dist
from parameterized import parameterized

from monai_nnunet.losses import SoftDiceLoss

from ._reference import FIXTURES

REF = np.load(FIXTURES)


def _xy(dim: str) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(REF[f"x_{dim}"]), torch.from_numpy(REF[f"y_{dim}"]).long()


class TestSoftDiceAgainstNnUNet(unittest.TestCase):
    """Values (and gradients) of nnU-Net v2's MemoryEfficientSoftDiceLoss, stored as fixtures."""

    @parameterized.expand([(d, bd) for d in ("2d", "3d") for bd in (0, 1)])
    def test_value_and_grad(self, dim, bd):
        x, y = _xy(dim)
        x.requires_grad_(True)
        loss = SoftDiceLoss(batch_dice=bool(bd))(x, y)
        loss.backward()
        np.testing.assert_allclose(loss.item(), REF[f"val_sd_bd{bd}_{dim}"], rtol=0, atol=1e-5)
        np.testing.assert_allclose(x.grad.numpy(), REF[f"grad_sd_bd{bd}_{dim}"], rtol=1e-4, atol=1e-6)

    @parameterized.expand([(d, bd) for d in ("2d", "3d") for bd in (0, 1)])
    def test_loss_mask(self, dim, bd):
        x, y = _xy(dim)
        mask = torch.from_numpy(REF[f"mask_{dim}"])
        loss = SoftDiceLoss(batch_dice=bool(bd))(x, y, loss_mask=mask)
        np.testing.assert_allclose(loss.item(), REF[f"val_sdmask_bd{bd}_{dim}"], rtol=0, atol=1e-5)

    @parameterized.expand([("2d",), ("3d",)])
    def test_do_bg_and_smooth(self, dim):
        x, y = _xy(dim)
        loss = SoftDiceLoss(do_bg=True, smooth=1.0)(x, y)
        np.testing.assert_allclose(loss.item(), REF[f"val_sdbg_bd0_{dim}"], rtol=0, atol=1e-5)

    def test_target_without_channel_axis(self):
        x, y = _xy("3d")
        np.testing.assert_allclose(SoftDiceLoss()(x, y[:, 0]).item(), REF["val_sd_bd0_3d"], atol=1e-5, rtol=0)


class TestSoftDiceValues(unittest.TestCase):
    def test_hand_computed(self):
        # one sample, 2 classes, 1x4 image; probabilities given directly
        p1 = torch.tensor([0.0, 1.0, 0.5, 0.5])
        probs = torch.stack([1 - p1, p1]).view(1, 2, 1, 4)
        labels = torch.tensor([0, 1, 1, 0]).view(1, 1, 1, 4)
        s = 1e-5
        expected = -(2 * 1.5 + s) / (2.0 + 2.0 + s)
        loss = SoftDiceLoss(apply_nonlin=None)(probs, labels)
        self.assertAlmostEqual(loss.item(), expected, places=6)
        # with background: mean of the background Dice (I=1.5, P=2, G=2) and the class-1 Dice
        loss_bg = SoftDiceLoss(apply_nonlin=None, do_bg=True)(probs, labels)
        self.assertAlmostEqual(loss_bg.item(), expected, places=6)

    def test_batch_dice_pools_sums(self):
        # sample 0: I=1, P=1, G=1 (dc 1); sample 1: I=0, P=1, G=1 (dc 0)
        p1 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        probs = torch.stack([1 - p1, p1], 1).view(2, 2, 1, 2)
        labels = torch.tensor([[1, 0], [1, 0]]).view(2, 1, 1, 2)
        s = 1e-5
        per_sample = SoftDiceLoss(apply_nonlin=None, batch_dice=False)(probs, labels).item()
        pooled = SoftDiceLoss(apply_nonlin=None, batch_dice=True)(probs, labels).item()
        self.assertAlmostEqual(per_sample, -((2 + s) / (2 + s) + s / (2 + s)) / 2, places=6)
        self.assertAlmostEqual(pooled, -(2 + s) / (4 + s), places=6)

    @parameterized.expand([((2, 3, 6, 6),), ((2, 4, 4, 4, 5),)])
    def test_perfect_prediction_is_minimum(self, shape):
        g = torch.Generator().manual_seed(0)
        labels = torch.randint(0, shape[1], (shape[0], 1) + shape[2:], generator=g)
        perfect = torch.zeros(shape).scatter_(1, labels, 100.0)
        loss = SoftDiceLoss()
        best = loss(perfect, labels).item()
        self.assertAlmostEqual(best, -1.0, places=5)
        noisy = loss(perfect + torch.randn(shape, generator=g) * 50, labels).item()
        self.assertGreater(noisy, best + 1e-3)

    def test_one_hot_target_equals_label_map(self):
        g = torch.Generator().manual_seed(1)
        x = torch.randn(2, 3, 5, 5, generator=g)
        y = torch.randint(0, 3, (2, 1, 5, 5), generator=g)
        onehot = torch.zeros(2, 3, 5, 5).scatter_(1, y, 1.0)
        loss = SoftDiceLoss(batch_dice=True)
        self.assertAlmostEqual(loss(x, y).item(), loss(x, onehot).item(), places=6)
        self.assertAlmostEqual(loss(x, y).item(), loss(x, onehot.bool()).item(), places=6)

    def test_gradient_finite_and_nonzero(self):
        x = torch.randn(2, 3, 4, 4, 4, requires_grad=True)
        y = torch.randint(0, 3, (2, 1, 4, 4, 4))
        SoftDiceLoss()(x, y).backward()
        self.assertTrue(torch.isfinite(x.grad).all())
        self.assertGreater(x.grad.abs().sum().item(), 0)

    def test_empty_ground_truth_is_finite(self):
        x = torch.randn(1, 3, 6, 6, requires_grad=True)
        y = torch.zeros(1, 1, 6, 6, dtype=torch.long)
        loss = SoftDiceLoss()(x, y)
        loss.backward()
        self.assertTrue(torch.isfinite(loss))
        self.assertTrue(torch.isfinite(x.grad).all())
        # all-zero mask: every sum is 0 and the Dice is smooth / smooth = 1
        self.assertAlmostEqual(SoftDiceLoss()(x, y, loss_mask=torch.zeros_like(y)).item(), -1.0, places=6)

    def test_string_nonlinearities(self):
        x = torch.randn(2, 3, 5, 5)
        y = torch.randint(0, 2, (2, 3, 5, 5)).float()
        self.assertAlmostEqual(
            SoftDiceLoss("sigmoid", do_bg=True)(x, y).item(),
            SoftDiceLoss(torch.sigmoid, do_bg=True)(x, y).item(),
            places=6,
        )
        self.assertAlmostEqual(
            SoftDiceLoss("none", do_bg=True)(torch.sigmoid(x), y).item(),
            SoftDiceLoss("sigmoid", do_bg=True)(x, y).item(),
            places=6,
        )


class TestSoftDiceAutocast(unittest.TestCase):
    @parameterized.expand([(torch.float16,), (torch.bfloat16,)])
    def test_no_overflow(self, dtype):
        # 300 * 300 = 90000 voxels of one class: sums past float16's 65504
        g = torch.Generator().manual_seed(0)
        y = torch.ones(1, 1, 300, 300, dtype=torch.long)
        y[:, :, :10] = 0
        x = (torch.randn(1, 3, 300, 300, generator=g) * 4).to(dtype)
        with torch.autocast("cpu", dtype=dtype):
            loss = SoftDiceLoss(batch_dice=True)(x, y)
        self.assertEqual(loss.dtype, torch.float32)
        self.assertTrue(torch.isfinite(loss))
        ref = SoftDiceLoss(batch_dice=True)(x.float(), y)
        self.assertAlmostEqual(loss.item(), ref.item(), places=5)


class TestSoftDiceBadInput(unittest.TestCase):
    @parameterized.expand(
        [
            ("batch", (2, 3, 4, 4), (3, 1, 4, 4), "batch size"),
            ("spatial", (2, 3, 4, 4), (2, 1, 4, 5), "spatial shape"),
            ("channels", (2, 3, 4, 4), (2, 2, 4, 4), "channels"),
            ("ndim", (2, 3, 4, 4), (2, 1, 1, 4, 4), "target must have shape"),
            ("no_spatial", (2, 3), (2, 1), "at least one spatial axis"),
        ]
    )
    def test_shape_mismatch(self, _, xs, ys, msg):
        with self.assertRaisesRegex(ValueError, msg):
            SoftDiceLoss()(torch.randn(xs), torch.zeros(ys, dtype=torch.long))

    @parameterized.expand([(3,), (-1,), (7,)])
    def test_label_out_of_range(self, value):
        y = torch.zeros(1, 1, 4, 4, dtype=torch.long)
        y[0, 0, 1, 1] = value
        with self.assertRaisesRegex(ValueError, r"label values must be in \[0, 3\)"):
            SoftDiceLoss()(torch.randn(1, 3, 4, 4), y)

    def test_non_integer_labels(self):
        y = torch.zeros(1, 1, 4, 4)
        y[0, 0, 0, 0] = 0.5
        with self.assertRaisesRegex(ValueError, "integer class labels"):
            SoftDiceLoss()(torch.randn(1, 3, 4, 4), y)

    def test_one_hot_out_of_range(self):
        with self.assertRaisesRegex(ValueError, r"\[0, 1\]"):
            SoftDiceLoss()(torch.randn(1, 3, 4, 4), torch.full((1, 3, 4, 4), 2.0))

    def test_single_channel_without_background(self):
        with self.assertRaisesRegex(ValueError, "at least 2 channels"):
            SoftDiceLoss()(torch.randn(1, 1, 4, 4), torch.zeros(1, 1, 4, 4))

    def test_bad_mask(self):
        with self.assertRaisesRegex(ValueError, "loss_mask"):
            SoftDiceLoss()(torch.randn(1, 3, 4, 4), torch.zeros(1, 1, 4, 4), loss_mask=torch.ones(1, 3, 4, 4))

    def test_bad_constructor_args(self):
        with self.assertRaisesRegex(ValueError, "apply_nonlin"):
            SoftDiceLoss(apply_nonlin="tanh")
        with self.assertRaisesRegex(ValueError, "smooth"):
            SoftDiceLoss(smooth=-1)

    def test_integer_input(self):
        with self.assertRaisesRegex(ValueError, "floating point"):
            SoftDiceLoss()(torch.zeros(1, 3, 4, 4, dtype=torch.long), torch.zeros(1, 1, 4, 4))


def _ddp_worker(rank: int, world: int, init_file: str, x: torch.Tensor, y: torch.Tensor, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        n = x.shape[0] // world
        xi = x[rank * n : (rank + 1) * n].clone().requires_grad_(True)
        loss = SoftDiceLoss(batch_dice=True, ddp=True)(xi, y[rank * n : (rank + 1) * n])
        loss.backward()
        torch.save({"loss": loss.detach(), "grad": xi.grad}, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


class TestSoftDiceDDP(unittest.TestCase):
    def test_world_size_one_matches_plain(self):
        x, y = _xy("3d")
        with tempfile.TemporaryDirectory() as tmp:
            dist.init_process_group("gloo", init_method=f"file://{tmp}/init", rank=0, world_size=1)
            try:
                xa = x.clone().requires_grad_(True)
                loss_ddp = SoftDiceLoss(batch_dice=True, ddp=True)(xa, y)
                loss_ddp.backward()
            finally:
                dist.destroy_process_group()
        xb = x.clone().requires_grad_(True)
        loss = SoftDiceLoss(batch_dice=True)(xb, y)
        loss.backward()
        self.assertAlmostEqual(loss_ddp.item(), loss.item(), places=6)
        np.testing.assert_allclose(xa.grad.numpy(), xb.grad.numpy(), rtol=1e-5, atol=1e-8)

    @pytest.mark.slow
    def test_two_ranks_pool_the_batch(self):
        """Each rank holds half the batch; the all-gathered batch Dice equals the whole-batch Dice.

        Gradients follow nnU-Net's AllGatherGrad: summed over ranks, i.e. world_size times the
        single-process gradient of that rank's slice (DDP then averages over ranks).
        """
        x, y = _xy("3d")
        world = 2
        with tempfile.TemporaryDirectory() as tmp:
            torch.multiprocessing.spawn(
                _ddp_worker, args=(world, f"{tmp}/init", x, y, tmp), nprocs=world, join=True
            )
            results = [torch.load(os.path.join(tmp, f"rank{r}.pt")) for r in range(world)]
        xr = x.clone().requires_grad_(True)
        ref = SoftDiceLoss(batch_dice=True)(xr, y)
        ref.backward()
        n = x.shape[0] // world
        for r, res in enumerate(results):
            self.assertAlmostEqual(res["loss"].item(), ref.item(), places=6)
            np.testing.assert_allclose(
                res["grad"].numpy(), world * xr.grad[r * n : (r + 1) * n].numpy(), rtol=1e-5, atol=1e-8
            )


@unittest.skipUnless(torch.cuda.is_available(), "needs CUDA")
class TestSoftDiceCUDA(unittest.TestCase):
    def test_cuda_matches_cpu(self):
        x, y = _xy("3d")
        for bd in (False, True):
            cpu = SoftDiceLoss(batch_dice=bd)(x, y)
            with torch.autocast("cuda", dtype=torch.float16):
                gpu = SoftDiceLoss(batch_dice=bd)(x.cuda(), y.cuda())
            self.assertAlmostEqual(gpu.item(), cpu.item(), places=2)


if __name__ == "__main__":
    unittest.main()
