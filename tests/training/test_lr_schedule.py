"""nnU-Net's poly schedule: closed form, and resumed with the resumed run's own length."""

import pytest
import torch

from monai_nnunet.training import PolyLRScheduler


def _optimizer() -> torch.optim.SGD:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.01)


def test_closed_form():
    optimizer = _optimizer()
    schedule = PolyLRScheduler(optimizer, 0.01, 10)
    rates = []
    for _ in range(10):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert rates == pytest.approx([0.01 * (1 - i / 10) ** 0.9 for i in range(10)])
    assert optimizer.param_groups[0]["lr"] == 0


def test_a_resumed_run_with_more_steps_decays_over_its_own_length():
    optimizer = _optimizer()
    first = PolyLRScheduler(optimizer, 0.01, 6)
    for _ in range(6):
        optimizer.step()
        first.step()
    resumed_optimizer = _optimizer()
    resumed = PolyLRScheduler(resumed_optimizer, 0.01, 12)
    resumed_optimizer.load_state_dict(optimizer.state_dict())  # the old run's rate (0) comes with it
    resumed.load_state_dict(first.state_dict())
    assert resumed.max_steps == 12 and resumed.last_epoch == 6
    assert resumed_optimizer.param_groups[0]["lr"] == pytest.approx(0.01 * (1 - 6 / 12) ** 0.9)
