from __future__ import annotations

import unittest

import numpy as np
import torch
from parameterized import parameterized

from monai_nnunet.losses import BlobDiceLoss, DC_and_Blob_CE_loss, DC_and_CE_loss, label_blobs

from ._reference import blob_loss_ref, softmax_np

S = 1e-5


def _probs_1x8(p1: list[float]) -> torch.Tensor:
    """(1, 2, 1, 8) probabilities of background / class 1."""
    p1_t = torch.tensor(p1, dtype=torch.float32)
    return torch.stack([1 - p1_t, p1_t]).view(1, 2, 1, 8)


# two blobs of class 1 on a 1x8 strip: A = {0, 1}, B = {5, 6}
LABELS_1x8 = torch.tensor([1, 1, 0, 0, 0, 1, 1, 0]).view(1, 1, 1, 8)


class TestBlobDiceHandComputed(unittest.TestCase):
    def test_two_blobs_known_overlaps(self):
        probs = _probs_1x8([1.0, 0.5, 0.0, 0.2, 0.0, 1.0, 1.0, 0.0])
        # A: I = 1.5, G = 2, P = I + 0.2 (class-1 mass on background); B: I = 2, G = 2, P = 2.2
        dc_a = (3.0 + S) / (1.7 + 2 + S)
        dc_b = (4.0 + S) / (2.2 + 2 + S)
        loss = BlobDiceLoss(apply_nonlin=None)(probs, LABELS_1x8)
        self.assertAlmostEqual(loss.item(), -(dc_a + dc_b) / 2, places=6)

    def test_perfect_on_one_blob_empty_on_the_other(self):
        probs = _probs_1x8([1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
        blob = BlobDiceLoss(apply_nonlin=None)(probs, LABELS_1x8).item()
        self.assertAlmostEqual(blob, -(1.0 + S / (2 + S)) / 2, places=6)  # -0.5: one blob found, one missed
        # the global Dice sees 2 of 4 voxels found and rewards it more
        from monai_nnunet.losses import SoftDiceLoss

        self.assertAlmostEqual(SoftDiceLoss(apply_nonlin=None)(probs, LABELS_1x8).item(), -(4 + S) / (6 + S), 6)

    def test_other_blobs_are_masked_out(self):
        # predicting blob B perfectly must not count as a false positive for blob A
        probs = _probs_1x8([1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0])
        self.assertAlmostEqual(BlobDiceLoss(apply_nonlin=None)(probs, LABELS_1x8).item(), -1.0, places=6)

    def test_background_false_positives_cost(self):
        probs = _probs_1x8([1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0])  # FP at voxel 4
        expected = -(4 + S) / (3 + 2 + S)  # both blobs see the false positive
        self.assertAlmostEqual(BlobDiceLoss(apply_nonlin=None)(probs, LABELS_1x8).item(), expected, places=6)

    def test_batch_dice_modes(self):
        # sample 0: one blob (dc = 1); sample 1: three blobs, dc 1, 1 and ~0
        labels = torch.tensor([[1, 1, 0, 0, 0, 0, 0, 0], [1, 0, 1, 0, 1, 0, 0, 0]]).view(2, 1, 1, 8)
        p1 = torch.tensor([[1.0, 1, 0, 0, 0, 0, 0, 0], [1.0, 0, 1, 0, 0, 0, 0, 0]])
        probs = torch.stack([1 - p1, p1], 1).view(2, 2, 1, 8)
        miss = S / (1 + S)
        per_sample = BlobDiceLoss(apply_nonlin=None, batch_dice=False)(probs, labels).item()
        pooled = BlobDiceLoss(apply_nonlin=None, batch_dice=True)(probs, labels).item()
        self.assertAlmostEqual(per_sample, -(1.0 + (2 + miss) / 3) / 2, places=6)  # -0.8333
        self.assertAlmostEqual(pooled, -(3 + miss) / 4, places=6)  # -0.75

    def test_samples_without_blobs_are_left_out(self):
        labels = torch.tensor([[1, 1, 0, 0, 0, 0, 0, 0], [0] * 8]).view(2, 1, 1, 8)
        p1 = torch.tensor([[1.0, 1, 0, 0, 0, 0, 0, 0], [0.3] * 8])
        probs = torch.stack([1 - p1, p1], 1).view(2, 2, 1, 8)
        self.assertAlmostEqual(BlobDiceLoss(apply_nonlin=None)(probs, labels).item(), -1.0, places=6)

    def test_no_blob_gives_zero_with_gradient(self):
        x = torch.randn(2, 3, 6, 6, 6, requires_grad=True)
        loss = BlobDiceLoss()(x, torch.zeros(2, 1, 6, 6, 6))
        self.assertEqual(loss.item(), 0.0)
        loss.backward()
        self.assertIsNotNone(x.grad)
        self.assertEqual(x.grad.abs().sum().item(), 0.0)

    @parameterized.expand([(None, 1), (2, 1), (1, 2)])
    def test_connectivity_2d(self, connectivity, n_blobs):
        # two diagonal neighbours: one blob with 8-connectivity, two with 4-connectivity
        labels = torch.zeros(1, 1, 4, 4, dtype=torch.long)
        labels[0, 0, 1, 1] = labels[0, 0, 2, 2] = 1
        probs = torch.zeros(1, 2, 4, 4)
        probs[:, 0] = 1.0
        probs[0, :, 1, 1] = torch.tensor([0.0, 1.0])  # one voxel found, the other missed
        found = (2 + S) / (1 + 2 + S)  # one blob, I = 1, P = 1, G = 2
        expected = -found if n_blobs == 1 else -(1.0 + S / (1 + S)) / 2
        loss = BlobDiceLoss(apply_nonlin=None, connectivity=connectivity)(probs, labels)
        self.assertAlmostEqual(loss.item(), expected, places=6)

    @parameterized.expand([(None, 1), (3, 1), (2, 2), (1, 2)])
    def test_connectivity_3d(self, connectivity, n_blobs):
        labels = torch.zeros(1, 1, 3, 3, 3, dtype=torch.long)
        labels[0, 0, 0, 0, 0] = labels[0, 0, 1, 1, 1] = 1  # corner neighbours: 26-connected only
        inst = label_blobs(labels[0, 0].numpy(), connectivity)
        self.assertEqual(inst.max(), n_blobs)


class TestBlobDiceAgainstReference(unittest.TestCase):
    """Random 2D/3D volumes against a per-blob loop in float64 (scipy.ndimage.label)."""

    @parameterized.expand(
        [
            (shape, bd, bg, conn)
            for shape in ((2, 3, 12, 12), (2, 3, 7, 8, 9))
            for bd in (False, True)
            for bg, conn in ((False, None), (True, 1))
        ]
    )
    def test_random(self, shape, batch_dice, include_background, connectivity):
        g = torch.Generator().manual_seed(sum(shape))
        x = torch.randn(shape, generator=g) * 2
        y = (torch.rand((shape[0], 1) + shape[2:], generator=g) * 4).long().clamp_max(shape[1] - 1)
        loss = BlobDiceLoss(batch_dice, include_background, connectivity)(x, y)
        ref = blob_loss_ref(softmax_np(x), y[:, 0].numpy(), batch_dice, include_background, connectivity)
        self.assertAlmostEqual(loss.item(), ref, places=5)

    @parameterized.expand([((2, 3, 10, 10),), ((2, 3, 6, 6, 6),)])
    def test_ignore_label(self, shape):
        g = torch.Generator().manual_seed(7)
        x = torch.randn(shape, generator=g)
        y = torch.randint(0, 3, (shape[0], 1) + shape[2:], generator=g)
        y[torch.rand(y.shape, generator=g) < 0.2] = 9
        loss = BlobDiceLoss(ignore_label=9)(x, y)
        ref = blob_loss_ref(softmax_np(x), y[:, 0].numpy(), ignore_label=9)
        self.assertAlmostEqual(loss.item(), ref, places=5)

    def test_precomputed_instances_match(self):
        g = torch.Generator().manual_seed(9)
        x = torch.randn(2, 3, 9, 9, 9, generator=g)
        y = torch.randint(0, 3, (2, 1, 9, 9, 9), generator=g)
        inst = torch.from_numpy(np.stack([label_blobs(y[b, 0].numpy()) for b in range(2)]))[:, None]
        loss = BlobDiceLoss()
        self.assertAlmostEqual(loss(x, y, instances=inst).item(), loss(x, y).item(), places=6)
        self.assertAlmostEqual(loss(x, y, instances=inst[:, 0].long()).item(), loss(x, y).item(), places=6)

    def test_instances_need_not_be_unique_or_dense(self):
        # the same id in two classes / samples, and a huge id, still name different blobs
        g = torch.Generator().manual_seed(10)
        x = torch.randn(2, 3, 8, 8, generator=g)
        y = torch.zeros(2, 1, 8, 8, dtype=torch.long)
        y[:, 0, 1:3, 1:3] = 1
        y[:, 0, 5:7, 5:7] = 2
        inst = (y > 0).long() * 7
        inst[1] *= 1_000_003
        loss = BlobDiceLoss()(x, y, instances=inst)
        ref = blob_loss_ref(softmax_np(x), y[:, 0].numpy(), instances=inst[:, 0].numpy())
        self.assertAlmostEqual(loss.item(), ref, places=5)

    def test_gradient(self):
        x = torch.randn(2, 3, 8, 8, 8, requires_grad=True)
        y = torch.randint(0, 3, (2, 1, 8, 8, 8))
        BlobDiceLoss()(x, y).backward()
        self.assertTrue(torch.isfinite(x.grad).all())
        self.assertGreater(x.grad.abs().sum().item(), 0.0)

    def test_perfect_prediction_is_minimum(self):
        y = torch.randint(0, 3, (2, 1, 6, 6, 6))
        perfect = torch.zeros(2, 3, 6, 6, 6).scatter_(1, y, 100.0)
        best = BlobDiceLoss()(perfect, y).item()
        self.assertAlmostEqual(best, -1.0, places=5)
        self.assertGreater(BlobDiceLoss()(perfect + torch.randn(2, 3, 6, 6, 6) * 50, y).item(), best)

    @parameterized.expand([(torch.float16,), (torch.bfloat16,)])
    def test_autocast(self, dtype):
        y = torch.zeros(1, 1, 300, 300, dtype=torch.long)
        y[0, 0, 10:290, 10:140] = 1  # one blob of 36400 voxels, background of 53600
        y[0, 0, 10:290, 160:290] = 1
        x = (torch.randn(1, 2, 300, 300) * 4).to(dtype)
        with torch.autocast("cpu", dtype=dtype):
            value = BlobDiceLoss()(x, y)
        self.assertTrue(torch.isfinite(value))
        self.assertAlmostEqual(value.item(), BlobDiceLoss()(x.float(), y).item(), places=5)


class TestBlobDiceBadInput(unittest.TestCase):
    def test_shapes_and_values(self):
        x = torch.randn(2, 3, 6, 6)
        y = torch.zeros(2, 1, 6, 6)
        loss = BlobDiceLoss()
        with self.assertRaisesRegex(ValueError, "batch size"):
            loss(x, torch.zeros(1, 1, 6, 6))
        with self.assertRaisesRegex(ValueError, "spatial shape"):
            loss(x, torch.zeros(2, 1, 6, 5))
        with self.assertRaisesRegex(ValueError, "channels"):
            loss(x, torch.zeros(2, 3, 6, 6))
        with self.assertRaisesRegex(ValueError, r"\[0, 3\)"):
            loss(x, torch.full((2, 1, 6, 6), 3))
        with self.assertRaisesRegex(ValueError, "instances.*spatial shape|spatial shape.*instances"):
            loss(x, y, instances=torch.zeros(2, 1, 5, 6))
        with self.assertRaisesRegex(ValueError, "instances.*batch size|batch size.*instances"):
            loss(x, y, instances=torch.zeros(3, 1, 6, 6))
        with self.assertRaisesRegex(ValueError, "non-negative"):
            loss(x, y, instances=torch.full((2, 1, 6, 6), -1))
        with self.assertRaisesRegex(ValueError, "integer ids"):
            loss(x, y, instances=torch.full((2, 1, 6, 6), 0.5))
        with self.assertRaisesRegex(ValueError, r"connectivity must be in \[1, 2\]"):
            BlobDiceLoss(connectivity=3)(x, y)
        with self.assertRaisesRegex(ValueError, "connectivity"):
            BlobDiceLoss(connectivity=0)
        with self.assertRaisesRegex(ValueError, "smooth"):
            BlobDiceLoss(smooth=-1.0)


class TestDCandBlobCE(unittest.TestCase):
    def test_documented_example_and_sum(self):
        g = torch.Generator().manual_seed(11)
        x = torch.randn(2, 3, 8, 8, 8, generator=g, requires_grad=True)
        y = torch.randint(0, 3, (2, 1, 8, 8, 8), generator=g)
        loss = DC_and_Blob_CE_loss({"batch_dice": True}, {})
        self.assertTrue(loss.blob.batch_dice and loss.dc.batch_dice)
        value = loss(x, y)
        expected = DC_and_CE_loss({"batch_dice": True}, {})(x, y) + BlobDiceLoss(batch_dice=True)(x, y)
        self.assertAlmostEqual(value.item(), expected.item(), places=5)
        value.backward()
        self.assertTrue(torch.isfinite(x.grad).all())

    def test_weights_kwargs_and_instances(self):
        g = torch.Generator().manual_seed(12)
        x = torch.randn(2, 3, 10, 10, generator=g)
        y = torch.randint(0, 3, (2, 1, 10, 10), generator=g)
        loss = DC_and_Blob_CE_loss({}, {}, weight_ce=0.5, weight_dice=2.0, weight_blob=3.0,
                                   blob_kwargs={"connectivity": 1, "batch_dice": True})
        expected = (
            DC_and_CE_loss({}, {}, weight_ce=0.5, weight_dice=2.0)(x, y)
            + 3.0 * BlobDiceLoss(batch_dice=True, connectivity=1)(x, y)
        )
        self.assertAlmostEqual(loss(x, y).item(), expected.item(), places=5)
        inst = torch.from_numpy(np.stack([label_blobs(y[b, 0].numpy(), 1) for b in range(2)]))[:, None]
        self.assertAlmostEqual(loss(x, y, instances=inst).item(), expected.item(), places=5)
        self.assertAlmostEqual(
            DC_and_Blob_CE_loss(weight_blob=0)(x, y).item(), DC_and_CE_loss()(x, y).item(), places=6
        )

    def test_ignore_label_reaches_all_terms(self):
        g = torch.Generator().manual_seed(13)
        x = torch.randn(2, 3, 8, 8, generator=g, requires_grad=True)
        y = torch.randint(0, 3, (2, 1, 8, 8), generator=g)
        y[:, :, :2] = 4
        loss = DC_and_Blob_CE_loss({}, {}, ignore_label=4)
        self.assertEqual(loss.blob.ignore_label, 4)
        loss(x, y).backward()
        self.assertEqual(x.grad[:, :, :2].abs().sum().item(), 0.0)
        all_ignored = loss(x, torch.full_like(y, 4))
        self.assertTrue(torch.isfinite(all_ignored))
        with self.assertRaisesRegex(ValueError, "ignore_label"):
            DC_and_Blob_CE_loss({}, {}, blob_kwargs={"ignore_label": 2}, ignore_label=4)
        with self.assertRaisesRegex(ValueError, "apply_nonlin"):
            DC_and_Blob_CE_loss({}, {}, blob_kwargs={"apply_nonlin": None})

    def test_bad_instances(self):
        with self.assertRaisesRegex(ValueError, "instances"):
            DC_and_Blob_CE_loss()(torch.randn(1, 3, 4, 4), torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 3))


if __name__ == "__main__":
    unittest.main()
