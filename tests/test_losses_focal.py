import math

import pytest
import torch
import torch.nn.functional as F
import torchvision.ops

from semiyolo.losses import focal_loss, inverse_frequency_alpha, sigmoid_focal_loss, varifocal_loss

LOG2 = math.log(2.0)


def test_focal_hand_values():
    # x = 0 -> p = 0.5, CE = log 2, (1 - p_t)^2 = 0.25 for y = 0 and y = 1.
    # y = 1: alpha_t = 0.25 -> 0.25 * 0.25 * log 2 = 0.0433217
    # y = 0: alpha_t = 0.75 -> 0.75 * 0.25 * log 2 = 0.1299651
    loss = sigmoid_focal_loss(torch.zeros(2), torch.tensor([1.0, 0.0]))
    torch.testing.assert_close(loss, torch.tensor([0.0625 * LOG2, 0.1875 * LOG2]))
    # (pos, neg) pair (2, 1): y = 1 -> 2 * 0.25 * log 2; y = 0 -> 1 * 0.25 * log 2
    loss = sigmoid_focal_loss(torch.zeros(2), torch.tensor([1.0, 0.0]), alpha=(2.0, 1.0))
    torch.testing.assert_close(loss, torch.tensor([0.5 * LOG2, 0.25 * LOG2]))


def test_gamma0_no_alpha_is_bce_gradients_too():
    gen = torch.Generator().manual_seed(0)
    x1 = (torch.randn(64, 5, generator=gen) * 4).requires_grad_()
    x2 = x1.detach().clone().requires_grad_()
    y = torch.rand(64, 5, generator=gen)
    ours = sigmoid_focal_loss(x1, y, alpha=None, gamma=0.0, reduction="sum")
    ref = F.binary_cross_entropy_with_logits(x2, y, reduction="sum")
    ours.backward()
    ref.backward()
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(x1.grad, x2.grad)


@pytest.mark.parametrize("gamma", [0.5, 1.0, 2.0, 5.0])
def test_focal_over_bce_is_alpha_t_times_modulator(gamma):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(200, generator=gen, dtype=torch.float64) * 3
    y = (torch.rand(200, generator=gen) > 0.5).double()
    p = torch.sigmoid(x)
    p_t = torch.where(y == 1, p, 1 - p)
    alpha_t = torch.where(y == 1, 0.25, 0.75)
    ratio = sigmoid_focal_loss(x, y, alpha=0.25, gamma=gamma) / F.binary_cross_entropy_with_logits(
        x, y, reduction="none"
    )
    torch.testing.assert_close(ratio, alpha_t * (1 - p_t) ** gamma, rtol=1e-9, atol=1e-12)
    # float32 keeps the relative precision of easy examples (1 - p_t is computed as sigmoid(-x), not 1 - p)
    ratio32 = sigmoid_focal_loss(x.float(), y.float(), gamma=gamma) / F.binary_cross_entropy_with_logits(
        x.float(), y.float(), reduction="none"
    )
    torch.testing.assert_close(ratio32, ratio.float(), rtol=1e-5, atol=0)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_matches_torchvision_loss_and_gradients(reduction):
    gen = torch.Generator().manual_seed(2)
    x1 = (torch.randn(4, 50, 7, generator=gen) * 5).requires_grad_()
    x2 = x1.detach().clone().requires_grad_()
    y = torch.rand(4, 50, 7, generator=gen)  # soft targets: both use p_t = p y + (1 - p)(1 - y)
    ours = sigmoid_focal_loss(x1, y, alpha=0.25, gamma=2.0, reduction=reduction)
    ref = torchvision.ops.sigmoid_focal_loss(x2, y, alpha=0.25, gamma=2.0, reduction=reduction)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)
    ours.sum().backward()
    ref.sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0, 2.0, 3.0])
@pytest.mark.parametrize("alpha", [None, 0.25, (2.0, 0.5)])
def test_gradcheck_float64(gamma, alpha):
    gen = torch.Generator().manual_seed(3)
    x = (torch.randn(6, 3, generator=gen, dtype=torch.float64) * 2).requires_grad_()
    y = torch.rand(6, 3, generator=gen, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda t: sigmoid_focal_loss(t, y, alpha=alpha, gamma=gamma), (x,))


def test_per_class_alpha_tensor_and_gradcheck():
    w = torch.tensor([1.0, 3.0], dtype=torch.float64)
    x = torch.zeros(1, 2, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    # each column is weighted whole by its class weight: [1, 3] * 0.25 log 2
    torch.testing.assert_close(
        sigmoid_focal_loss(x, y, alpha=w), torch.tensor([[0.25, 0.75]], dtype=torch.float64) * LOG2
    )
    assert torch.autograd.gradcheck(
        lambda t: sigmoid_focal_loss(t, y, alpha=w), (x.detach().normal_().requires_grad_(),)
    )


def test_saturated_logits_have_finite_gradients_for_small_gamma():
    x = torch.tensor([40.0, -40.0, 40.0, -40.0], requires_grad=True)
    y = torch.tensor([1.0, 0.0, 0.0, 1.0])
    loss = sigmoid_focal_loss(x, y, gamma=0.5, reduction="sum")
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()


def test_document_004_easy_negatives_dominate_ce_not_focal():
    # 10^6 negatives at p_t = 0.99: CE each -log 0.99 = 0.0100503, total 10050.34.
    # 10 positives at p_t = 0.01: CE each -log 0.01 = 4.60517, total 46.05.
    # Shares: negatives 10050.34 / 10096.39 = 99.54 %, positives 0.456 %.
    x = torch.cat((torch.full((10**6,), math.log(0.01 / 0.99)), torch.full((10,), math.log(0.01 / 0.99))))
    y = torch.cat((torch.zeros(10**6), torch.ones(10)))
    ce = sigmoid_focal_loss(x, y, alpha=None, gamma=0.0)
    neg_share = ce[: 10**6].sum() / ce.sum()
    assert round(neg_share.item() * 100, 2) == 99.54
    assert 0.0045 < 1 - neg_share.item() < 0.0046
    # With gamma = 2 each negative is scaled by 0.01^2 and each positive by 0.99^2:
    # negatives 1.005, positives 45.14 -> positives carry 97.8 % of the focal loss.
    fl = sigmoid_focal_loss(x, y, alpha=None, gamma=2.0)
    assert fl[10**6 :].sum() / fl.sum() == pytest.approx(45.135 / (45.135 + 1.00503), rel=1e-3)


def test_document_004_hard_example_weighs_5_44_times_an_easy_one():
    # (1 - 0.3)^2 / (1 - 0.7)^2 = 0.49 / 0.09 = 5.444
    p_t = torch.tensor([0.3, 0.7])
    x = torch.log(p_t / (1 - p_t))
    y = torch.ones(2)
    factor = sigmoid_focal_loss(x, y, alpha=None) / sigmoid_focal_loss(x, y, alpha=None, gamma=0.0)
    assert (factor[0] / factor[1]).item() == pytest.approx(49 / 9, rel=1e-5)


def test_focal_on_probabilities_matches_logit_form():
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(30, 4, generator=gen)
    y = (torch.rand(30, 4, generator=gen) > 0.7).float()
    torch.testing.assert_close(focal_loss(torch.sigmoid(x), y), sigmoid_focal_loss(x, y, reduction="mean"))


def test_focal_on_probabilities_rejects_out_of_range():
    with pytest.raises(ValueError, match=r"probs must lie in \[0, 1\]"):
        focal_loss(torch.tensor([0.5, 1.2]), torch.tensor([1.0, 0.0]))
    with pytest.raises(ValueError, match="probs"):
        focal_loss(torch.tensor([float("nan")]), torch.tensor([1.0]))
    with pytest.raises(ValueError, match="targets"):
        sigmoid_focal_loss(torch.zeros(2), torch.tensor([1.0, -0.5]))


@pytest.mark.parametrize("alpha", [1.5, -0.1, (1.0,), (1.0, -1.0), "a"])
def test_bad_alpha_raises(alpha):
    with pytest.raises(ValueError, match="alpha"):
        sigmoid_focal_loss(torch.zeros(2), torch.zeros(2), alpha=alpha)


def test_inverse_frequency_alpha():
    # counts 30 / 10 / 0 -> frequencies 0.75 / 0.25 / 0 -> 1/(f + 1e-6) = 1.333, 4.0, 1e6
    alpha = inverse_frequency_alpha([30, 10, 0])
    torch.testing.assert_close(alpha, torch.tensor([1 / 0.750001, 1 / 0.250001, 1e6]))
    with pytest.raises(ValueError, match="class_counts"):
        inverse_frequency_alpha([0, 0])


def test_varifocal_matches_ultralytics_and_hand_value():
    from ultralytics.utils.loss import VarifocalLoss

    gen = torch.Generator().manual_seed(5)
    x = torch.randn(3, 20, 4, generator=gen)
    label = (torch.rand(3, 20, 4, generator=gen) > 0.8).float()
    q = label * torch.rand(3, 20, 4, generator=gen)
    ref = VarifocalLoss()(x, q, label)
    torch.testing.assert_close(varifocal_loss(x, q).mean(1).sum(), ref)
    # negative at x = 0: 0.75 * 0.5^2 * log 2; positive q = 0.5 at x = 0: 0.5 * BCE(0, 0.5) = 0.5 log 2
    torch.testing.assert_close(
        varifocal_loss(torch.zeros(2), torch.tensor([0.0, 0.5])), torch.tensor([0.1875 * LOG2, 0.5 * LOG2])
    )
