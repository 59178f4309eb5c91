import math

import pytest
import torch

from semiyolo.losses import distribution_focal_loss, integral_decode, quality_focal_loss, sigmoid_focal_loss


def test_qfl_hand_values():
    # x = 0 (sigma = 0.5): y = 0.5 -> |0|^2 = 0 (zero at the optimum); y = 1 -> 0.25 log 2; y = 0 -> 0.25 log 2
    loss = quality_focal_loss(torch.zeros(3), torch.tensor([0.5, 1.0, 0.0]))
    torch.testing.assert_close(loss, torch.tensor([0.0, 0.25 * math.log(2), 0.25 * math.log(2)]))


def test_qfl_on_hard_targets_is_focal_without_alpha():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(40, 3, generator=gen) * 3
    y = (torch.rand(40, 3, generator=gen) > 0.6).float()
    torch.testing.assert_close(quality_focal_loss(x, y, beta=2.0), sigmoid_focal_loss(x, y, alpha=None, gamma=2.0))


def test_qfl_odd_beta_uses_absolute_value():
    # beta = 1, y = 0, sigma = 0.75 (x = ln 3): |0 - 0.75| * -log(0.25) = 0.75 * ln 4, positive
    loss = quality_focal_loss(torch.tensor([math.log(3)]), torch.tensor([0.0]), beta=1.0)
    torch.testing.assert_close(loss, torch.tensor([0.75 * math.log(4)]))


def test_qfl_gradcheck():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(5, 3, generator=gen, dtype=torch.float64).requires_grad_()
    y = torch.rand(5, 3, generator=gen, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda t: quality_focal_loss(t, y), (x,))


def test_dfl_hand_values():
    # uniform over 4 bins: log S_i = -log 4 for all i, so DFL = (0.7 + 0.3) log 4 = 1.386294
    torch.testing.assert_close(
        distribution_focal_loss(torch.zeros(1, 4), torch.tensor([1.3])), torch.tensor([math.log(4)])
    )
    # logits [0, ln 3, 0] -> S = [0.2, 0.6, 0.2]; y = 0.5 -> -(0.5 log 0.2 + 0.5 log 0.6) = 1.060132
    logits = torch.tensor([[0.0, math.log(3), 0.0]])
    torch.testing.assert_close(distribution_focal_loss(logits, torch.tensor([0.5])), torch.tensor([1.060132]))


def test_dfl_target_on_last_bin_is_allowed():
    # y = n_bins - 1 = 2: all weight on bin 2 -> -log S_2 = -log 0.2
    logits = torch.tensor([[0.0, math.log(3), 0.0]])
    torch.testing.assert_close(distribution_focal_loss(logits, torch.tensor([2.0])), torch.tensor([math.log(5)]))


def test_dfl_matches_ultralytics():
    from ultralytics.utils.loss import DFLoss

    gen = torch.Generator().manual_seed(2)
    bins = 16
    logits = torch.randn(25 * 4, bins, generator=gen)
    target = torch.rand(25, 4, generator=gen) * (bins - 1.02)  # below Ultralytics' clamp at bins - 1.01
    # Ultralytics returns the mean over a box's 4 sides, shape (N, 1)
    ours = distribution_focal_loss(logits, target.view(-1)).view(25, 4).mean(-1, keepdim=True)
    torch.testing.assert_close(ours, DFLoss(bins)(logits, target), atol=1e-5, rtol=1e-5)


def test_dfl_gradcheck_and_shapes():
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(2, 4, 8, generator=gen, dtype=torch.float64).requires_grad_()
    target = torch.rand(2, 4, generator=gen, dtype=torch.float64) * 7
    assert distribution_focal_loss(logits, target).shape == (2, 4)
    assert torch.autograd.gradcheck(lambda t: distribution_focal_loss(t, target), (logits,))


def test_dfl_bad_input():
    with pytest.raises(ValueError, match=r"target must lie in \[0, n_bins - 1\] = \[0, 3\]"):
        distribution_focal_loss(torch.zeros(2, 4), torch.tensor([1.0, 3.5]))
    with pytest.raises(ValueError, match="target must have shape"):
        distribution_focal_loss(torch.zeros(2, 4), torch.zeros(3))
    with pytest.raises(ValueError, match="n_bins >= 2"):
        distribution_focal_loss(torch.zeros(2, 1), torch.zeros(2))


def test_integral_decode():
    # uniform over 4 bins -> (0 + 1 + 2 + 3) / 4 = 1.5; a peaked distribution -> its bin
    torch.testing.assert_close(integral_decode(torch.zeros(4)), torch.tensor(1.5))
    peaked = torch.full((3, 5), -50.0)
    peaked[torch.arange(3), torch.tensor([0, 2, 4])] = 50.0
    torch.testing.assert_close(integral_decode(peaked), torch.tensor([0.0, 2.0, 4.0]))
