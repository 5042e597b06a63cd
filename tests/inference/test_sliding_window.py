"""Sliding-window stitching, mirroring TTA and fold averaging on small hand-checkable networks."""

import numpy as np
import pytest
import torch
import torch.nn as nn

from monai_nnunet.inference import MirrorAveragingNetwork, mirror_axes_combinations, predict_sliding_window_logits


class PointwiseNet(nn.Module):
    """1x1 convolution: a voxel's output depends on that voxel only, so any correct stitching reproduces it."""

    def __init__(self, dim: int, in_ch: int = 2, out_ch: int = 3, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.conv = (nn.Conv3d if dim == 3 else nn.Conv2d)(in_ch, out_ch, 1)

    def forward(self, x):
        return self.conv(x)


class PositionNet(nn.Module):
    """Adds a ramp along the last axis: not flip-equivariant, so mirroring changes the output."""

    def forward(self, x):
        ramp = torch.arange(x.shape[-1], dtype=x.dtype).expand_as(x[:, :1])
        return torch.cat([x[:, :1] + ramp, x[:, :1] - ramp], dim=1)


def test_mirror_combinations_follow_nnunet_order():
    assert mirror_axes_combinations((0, 1, 2)) == [(0,), (1,), (2,), (0, 1), (0, 2), (1, 2), (0, 1, 2)]
    assert mirror_axes_combinations(()) == []
    assert len(mirror_axes_combinations((0, 1))) == 3


@pytest.mark.parametrize("mirror_batch_size", [1, 3, None])
def test_mirror_averaging_is_the_mean_over_flips(mirror_batch_size):
    x = torch.randn(2, 1, 4, 5, 6)
    net = PositionNet()
    wrapped = MirrorAveragingNetwork(net, (0, 2), mirror_batch_size)
    expected = (net(x) + torch.flip(net(torch.flip(x, (2,))), (2,)) + torch.flip(net(torch.flip(x, (4,))), (4,))
                + torch.flip(net(torch.flip(x, (2, 4))), (2, 4))) / 4
    assert torch.allclose(wrapped(x), expected, atol=1e-6)
    # the ramp along the mirrored last axis averages out to a constant
    out = wrapped(x)
    assert not torch.allclose(out, net(x))
    assert torch.allclose(out[:, 0] - x[:, 0], torch.full_like(out[:, 0], 2.5), atol=1e-5)


def test_mirror_axes_must_fit_the_input():
    with pytest.raises(ValueError, match="do not fit"):
        MirrorAveragingNetwork(PositionNet(), (2,))(torch.randn(1, 1, 4, 4))
    with pytest.raises(ValueError, match="mirror_batch_size"):
        MirrorAveragingNetwork(PositionNet(), (0,), 0)


class CountingNet(PositionNet):
    def __init__(self):
        super().__init__()
        self.batches = []

    def forward(self, x):
        self.batches.append(x.shape[0])
        return super().forward(x)


@pytest.mark.parametrize("mirror_batch_size, batches", [(1, [2] * 8), (3, [6, 6, 4]), (None, [16])])
def test_mirror_batches(mirror_batch_size, batches):
    net = CountingNet()
    MirrorAveragingNetwork(net, (0, 1, 2), mirror_batch_size)(torch.randn(2, 1, 3, 3, 3))
    assert net.batches == batches


def test_result_is_an_ordinary_tensor():
    logits = predict_sliding_window_logits(PointwiseNet(3), torch.zeros(2, 8, 8, 8), (8, 8, 8))
    assert not logits.is_inference()
    logits += 1  # callers may modify it in place


@pytest.mark.parametrize("shape", [(2, 13, 17, 11), (2, 5, 6, 7), (2, 8, 12, 8)])
def test_3d_stitching_reproduces_a_pointwise_network(shape):
    """Larger than, smaller than (padding) and equal to the patch."""
    net = PointwiseNet(3).eval()
    data = torch.randn(shape)
    logits = predict_sliding_window_logits(net, data, (8, 12, 8), step_size=0.5, mirror_axes=(0, 1, 2))
    assert logits.shape == (3, *shape[1:]) and logits.dtype == torch.float32
    with torch.no_grad():
        expected = net(data[None])[0]
    assert torch.allclose(logits, expected, atol=1e-5)


def test_2d_configuration_predicts_slice_by_slice():
    net = PointwiseNet(2).eval()
    data = torch.randn(2, 4, 19, 9)
    logits = predict_sliding_window_logits(net, data, (8, 8), step_size=0.5, mirror_axes=(0, 1))
    with torch.no_grad():
        expected = net(data.permute(1, 0, 2, 3)).permute(1, 0, 2, 3)
    assert logits.shape == (3, 4, 19, 9)
    assert torch.allclose(logits, expected, atol=1e-5)


def test_folds_are_averaged():
    nets = [PointwiseNet(3, seed=s).eval() for s in (0, 1)]
    data = np.random.default_rng(0).normal(size=(2, 9, 10, 11)).astype(np.float32)
    logits = predict_sliding_window_logits(nets, data, (8, 8, 8), mirror_axes=None)
    with torch.no_grad():
        x = torch.from_numpy(data)[None]
        expected = (nets[0](x) + nets[1](x))[0] / 2
    assert torch.allclose(logits, expected, atol=1e-5)


def test_gaussian_weighting_differs_from_constant_for_a_context_network():
    """A network whose output depends on the window position: overlap blending is visible, and the Gaussian
    weights the window centres more than the constant mode does."""
    net = nn.Conv3d(1, 1, 5, padding=2)
    data = torch.randn(1, 12, 12, 12)
    gaussian = predict_sliding_window_logits(net, data, (8, 8, 8), use_gaussian=True)
    constant = predict_sliding_window_logits(net, data, (8, 8, 8), use_gaussian=False)
    assert gaussian.shape == constant.shape == (1, 12, 12, 12)
    assert not torch.allclose(gaussian, constant)


@pytest.mark.parametrize("step", [0.0, 1.5, -0.1])
def test_step_size_is_checked(step):
    with pytest.raises(ValueError, match="step_size"):
        predict_sliding_window_logits(PointwiseNet(3), torch.zeros(2, 8, 8, 8), (8, 8, 8), step_size=step)


def test_data_shape_is_checked():
    with pytest.raises(ValueError, match=r"\(C, Z, Y, X\)"):
        predict_sliding_window_logits(PointwiseNet(3), torch.zeros(8, 8, 8), (8, 8, 8))
