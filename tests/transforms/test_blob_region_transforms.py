from __future__ import annotations

import unittest

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import Compose
from parameterized import parameterized

from monai_nnunet.losses import BlobDiceLoss, RegionDiceLoss
from monai_nnunet.transforms import LabelToBlobsd, LabelToRegionsd


def _label_2d() -> np.ndarray:
    lab = np.zeros((1, 8, 8), np.uint8)
    lab[0, 1:3, 1:3] = 1
    lab[0, 5:7, 5:7] = 1
    lab[0, 1:3, 4:7] = 2
    return lab


class TestLabelToBlobsd(unittest.TestCase):
    def test_instances_numpy(self):
        out = LabelToBlobsd("label")({"label": _label_2d()})
        inst = out["label_instances"]
        self.assertIsInstance(inst, np.ndarray)
        self.assertEqual(inst.dtype, np.int32)
        self.assertEqual(inst.shape, (1, 8, 8))
        self.assertEqual(inst.max(), 3)
        self.assertEqual(len(np.unique(inst[0, 1:3, 1:3])), 1)
        self.assertNotEqual(inst[0, 1, 1], inst[0, 5, 5])  # two blobs of class 1
        self.assertNotEqual(inst[0, 1, 2], inst[0, 1, 4])  # adjacent blobs of different classes
        self.assertTrue((inst[_label_2d() == 0] == 0).all())

    def test_metatensor_keeps_type_and_meta(self):
        label = MetaTensor(torch.as_tensor(_label_2d()), affine=torch.diag(torch.tensor([2.0, 2.0, 1.0, 1.0])))
        out = LabelToBlobsd("label", instance_keys="inst")({"label": label})
        self.assertIsInstance(out["inst"], MetaTensor)
        self.assertEqual(out["inst"].dtype, torch.int32)
        np.testing.assert_allclose(out["inst"].affine, label.affine)

    @parameterized.expand([(None, 1), (1, 2)])
    def test_connectivity_3d(self, connectivity, n_blobs):
        lab = np.zeros((1, 4, 4, 4), np.uint8)
        lab[0, 0, 0, 0] = lab[0, 1, 1, 1] = 1
        out = LabelToBlobsd("label", connectivity=connectivity)({"label": lab})
        self.assertEqual(out["label_instances"].max(), n_blobs)

    def test_background_and_ignore(self):
        lab = _label_2d()
        lab[0, 7, :] = 9
        out = LabelToBlobsd("label", include_background=True, ignore_label=9)({"label": lab})
        inst = out["label_instances"][0]
        self.assertTrue((inst[7] == 0).all())
        self.assertGreater(inst[0, 0], 0)  # background is a blob now

    def test_feeds_the_loss(self):
        sample = LabelToBlobsd("label")({"label": _label_2d()})
        x = torch.randn(1, 3, 8, 8)
        y = torch.as_tensor(sample["label"])[None]
        inst = torch.as_tensor(sample["label_instances"])[None]
        self.assertAlmostEqual(BlobDiceLoss()(x, y, inst).item(), BlobDiceLoss()(x, y).item(), places=6)

    def test_missing_keys_and_bad_input(self):
        t = LabelToBlobsd(["label", "other"], allow_missing_keys=True)
        self.assertIn("label_instances", t({"label": _label_2d()}))
        with self.assertRaises(KeyError):
            LabelToBlobsd("other")({"label": _label_2d()})
        with self.assertRaisesRegex(ValueError, "channel-first"):
            LabelToBlobsd("label")({"label": np.zeros((2, 4, 4))})
        with self.assertRaisesRegex(ValueError, "connectivity"):
            LabelToBlobsd("label", connectivity=0)
        with self.assertRaisesRegex(ValueError, r"connectivity must be in \[1, 2\]"):
            LabelToBlobsd("label", connectivity=3)({"label": _label_2d()})


class TestLabelToRegionsd(unittest.TestCase):
    def test_regions(self):
        lab = np.zeros((1, 1, 10), np.uint8)
        lab[0, 0, 3:7] = 1
        out = LabelToRegionsd("label", num_classes=2)({"label": lab})
        regions = out["label_regions"]
        self.assertEqual(regions.shape, (2, 1, 10))
        self.assertEqual(regions.dtype, np.uint8)
        np.testing.assert_array_equal(regions[1, 0], [2, 2, 1, 1, 2, 2, 1, 1, 2, 2])
        out = LabelToRegionsd("label", num_classes=3, boundary_width=2, region_keys="r")({"label": lab})
        np.testing.assert_array_equal(out["r"][1, 0], [2, 1, 1, 1, 1, 1, 1, 1, 1, 2])
        np.testing.assert_array_equal(out["r"][2], 2)  # absent class: all interior

    def test_ignore_and_metatensor(self):
        lab = MetaTensor(torch.as_tensor(_label_2d()))
        lab[0, 0, :] = 4
        regions = LabelToRegionsd("label", num_classes=3, ignore_label=4)({"label": lab})["label_regions"]
        self.assertIsInstance(regions, MetaTensor)
        self.assertEqual(tuple(regions.shape), (3, 8, 8))
        self.assertTrue((regions[:, 0, :] == 0).all())

    def test_in_compose_feeds_the_loss(self):
        pipeline = Compose([LabelToBlobsd("label"), LabelToRegionsd("label", num_classes=3)])
        sample = pipeline({"label": _label_2d()})
        self.assertIn("label_instances", sample)
        x = torch.randn(1, 3, 8, 8)
        y = torch.as_tensor(sample["label"])[None]
        regions = torch.as_tensor(sample["label_regions"])[None]
        self.assertAlmostEqual(RegionDiceLoss()(x, y, regions).item(), RegionDiceLoss()(x, y).item(), places=6)

    def test_bad_input(self):
        with self.assertRaisesRegex(ValueError, "num_classes"):
            LabelToRegionsd("label", num_classes=0)
        with self.assertRaisesRegex(ValueError, "boundary_width"):
            LabelToRegionsd("label", num_classes=2, boundary_width=0)
        with self.assertRaisesRegex(ValueError, r"\[0, 2\)"):
            LabelToRegionsd("label", num_classes=2)({"label": _label_2d()})
        with self.assertRaisesRegex(ValueError, "channel-first"):
            LabelToRegionsd("label", num_classes=3)({"label": np.zeros((8, 8))})


if __name__ == "__main__":
    unittest.main()
