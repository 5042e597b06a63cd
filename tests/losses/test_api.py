"""Public names: exported, no clash with MONAI's components, usable as bundle ``_target_``."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
import unittest

import torch
from monai.bundle import ConfigParser
from parameterized import parameterized
from torch.nn.modules.loss import _Loss

import monai_nnunet.losses as losses
import monai_nnunet.transforms as transforms

PUBLIC_LOSSES = [
    "SoftDiceLoss",
    "DC_and_CE_loss",
    "DC_and_BCE_loss",
    "DeepSupervisionWrapper",
    "BlobDiceLoss",
    "DC_and_Blob_CE_loss",
    "RegionDiceLoss",
    "DC_and_Region_CE_loss",
    "RobustCrossEntropyLoss",
]


def _our_components() -> set[str]:
    """Names of every class / function defined in the losses and transforms modules of ours."""
    names = set()
    for pkg in (losses, transforms):
        for info in pkgutil.iter_modules(pkg.__path__, pkg.__name__ + "."):
            mod = importlib.import_module(info.name)
            for name, obj in inspect.getmembers(mod):
                if (inspect.isclass(obj) or inspect.isfunction(obj)) and obj.__module__ == info.name:
                    names.add(name)
    return names


class TestExports(unittest.TestCase):
    @parameterized.expand([(n,) for n in PUBLIC_LOSSES])
    def test_exported_loss(self, name):
        cls = getattr(losses, name)
        self.assertIn(name, losses.__all__)
        self.assertTrue(issubclass(cls, _Loss))
        forward_doc = cls.forward.__doc__ or ""
        for section in ("Args:", "Returns:", "Raises:"):
            self.assertIn(section, forward_doc, f"{name}.forward docstring lacks {section}")
        self.assertIn("(B, ", (cls.__doc__ or "") + forward_doc, f"{name} docstrings state no shapes")

    def test_transforms_exported(self):
        self.assertIn("LabelToBlobsd", transforms.__all__)
        self.assertIn("LabelToRegionsd", transforms.__all__)

    def test_no_name_clash_with_monai(self):
        """MONAI resolves short ``_target_`` names over every loaded module named ``monai*``."""
        import monai
        import monai.apps  # noqa: F401
        import monai.bundle  # noqa: F401
        import monai.data  # noqa: F401
        import monai.engines  # noqa: F401
        import monai.handlers  # noqa: F401
        import monai.inferers  # noqa: F401
        import monai.losses  # noqa: F401
        import monai.metrics  # noqa: F401
        import monai.networks  # noqa: F401
        import monai.transforms  # noqa: F401
        import monai.utils  # noqa: F401
        import monai.visualize  # noqa: F401

        theirs = set()
        for modname, mod in list(sys.modules.items()):
            if modname.startswith("monai.") or modname == "monai":
                for name, obj in inspect.getmembers(mod):
                    if inspect.isclass(obj) or inspect.isfunction(obj):
                        theirs.add(name)
        ours = _our_components()
        self.assertGreater(len(theirs), 1000)
        self.assertEqual(sorted(ours & theirs), [])


class TestBundleConfig(unittest.TestCase):
    def test_full_and_short_targets(self):
        config = {
            "blob": {"_target_": "monai_nnunet.losses.DC_and_Blob_CE_loss", "soft_dice_kwargs": {"batch_dice": True},
                     "ce_kwargs": {}},
            "region": {"_target_": "DC_and_Region_CE_loss", "region_kwargs": {"boundary_width": 2}},
            "ds": {"_target_": "monai_nnunet.losses.DeepSupervisionWrapper",
                   "loss": {"_target_": "monai_nnunet.losses.DC_and_CE_loss"}},
            "dice": {"_target_": "SoftDiceLoss", "apply_nonlin": "softmax", "batch_dice": True},
            "blobs": {"_target_": "LabelToBlobsd", "keys": "label"},
            "regions": {"_target_": "LabelToRegionsd", "keys": "label", "num_classes": 3},
        }
        parser = ConfigParser(config)
        blob = parser.get_parsed_content("blob")
        self.assertIsInstance(blob, losses.DC_and_Blob_CE_loss)
        self.assertTrue(blob.blob.batch_dice)
        self.assertIsInstance(parser.get_parsed_content("region"), losses.DC_and_Region_CE_loss)
        self.assertEqual(parser.get_parsed_content("region").region.boundary_width, 2)
        self.assertIsInstance(parser.get_parsed_content("ds").loss, losses.DC_and_CE_loss)
        self.assertIsInstance(parser.get_parsed_content("dice"), losses.SoftDiceLoss)
        self.assertIsInstance(parser.get_parsed_content("blobs"), transforms.LabelToBlobsd)
        self.assertIsInstance(parser.get_parsed_content("regions"), transforms.LabelToRegionsd)
        x = torch.randn(1, 3, 6, 6)
        y = torch.randint(0, 3, (1, 1, 6, 6))
        self.assertTrue(torch.isfinite(blob(x, y)))


if __name__ == "__main__":
    unittest.main()
