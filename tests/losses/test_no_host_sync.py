"""With value checks off (the training bundle's setting) the training loss never reads a value back from the device:
no ``.item()``, ``.tolist()``, ``bool()``, ``float()`` or ``int()`` of a tensor in forward or backward."""

from __future__ import annotations

import pytest
import torch

from monai_nnunet.losses import DC_and_CE_loss, DeepSupervisionWrapper, set_value_checks


class HostSync(AssertionError):
    pass


@pytest.mark.parametrize("ignore_label", [None, 3])
@pytest.mark.parametrize("batch_dice", [False, True])
def test_deep_supervision_loss_without_host_synchronisation(ignore_label, batch_dice):
    torch.manual_seed(0)
    outputs = [torch.randn(2, 3, 16 // s, 16 // s, 16 // s, requires_grad=True) for s in (1, 2, 4)]
    target = torch.randint(0, 4 if ignore_label else 3, (2, 1, 16, 16, 16))
    loss = DeepSupervisionWrapper(DC_and_CE_loss({"batch_dice": batch_dice, "smooth": 1e-5, "do_bg": False}, {},
                                                 ignore_label=ignore_label))
    assert set_value_checks(loss, False) == 2  # DC_and_CE_loss and its SoftDiceLoss: this loss only, no global state
    expected = loss(outputs, target)  # reference value, computed with syncs allowed
    with pytest.MonkeyPatch.context() as mp:
        for name in ("item", "tolist", "__bool__", "__float__", "__int__"):
            mp.setattr(torch.Tensor, name, lambda *a, **k: (_ for _ in ()).throw(HostSync(name)))
        value = loss(outputs, target)
        value.backward()
    torch.testing.assert_close(value.detach(), expected.detach())
    assert all(torch.isfinite(o.grad).all() for o in outputs[:2])  # the lowest output has weight 0


def test_value_checks_are_on_by_default_and_per_loss():
    bad = torch.full((1, 1, 4, 4), 5)
    loss = DC_and_CE_loss({"batch_dice": False, "smooth": 1e-5, "do_bg": False}, {})
    other = DC_and_CE_loss({"batch_dice": False, "smooth": 1e-5, "do_bg": False}, {})
    set_value_checks(other, False)  # switching one loss off leaves every other loss checking
    with pytest.raises(ValueError, match=r"label values must be in \[0, 3\)"):
        loss(torch.randn(1, 3, 4, 4), bad)
