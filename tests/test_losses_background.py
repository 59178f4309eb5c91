import math

import pytest
import torch

from semiyolo.losses import background_penalty


def test_max_mode_hand_value_and_gradient_goes_to_argmax():
    # anchor 0 (background): logits [0, ln 3] -> max sigmoid = 0.75; anchor 1 is foreground, ignored
    logits = torch.tensor([[[0.0, math.log(3)], [2.0, -1.0]]], requires_grad=True)
    mask = torch.tensor([[True, False]])
    loss = background_penalty(logits, mask, reduction="sum")
    torch.testing.assert_close(loss, torch.tensor(0.75))
    loss.backward()
    # d sigmoid(x)/dx at x = ln 3 is 0.75 * 0.25, only on the arg-max class of the background anchor
    torch.testing.assert_close(logits.grad, torch.tensor([[[0.0, 0.1875], [0.0, 0.0]]]))


def test_focal_mode_hand_value():
    # sigma^2 * softplus(x): x = 0 -> 0.25 log 2; x = ln 3 -> 0.5625 log 4; sum 0.953078
    logits = torch.tensor([[[0.0, math.log(3)]]])
    loss = background_penalty(logits, torch.tensor([[True]]), mode="focal")
    torch.testing.assert_close(loss, torch.tensor(0.25 * math.log(2) + 0.5625 * math.log(4)))


def test_focal_mode_punishes_confident_false_positives_more():
    logits = torch.tensor([[[-3.0], [3.0]]])
    per_anchor = background_penalty(logits, torch.ones(1, 2, dtype=torch.bool), mode="focal", reduction="none")
    assert per_anchor[0, 1] > 20 * per_anchor[0, 0]


@pytest.mark.parametrize("mode", ["max", "focal"])
def test_document_000_protocol(mode):
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 30, 5, generator=gen, requires_grad=True)
    all_bg = background_penalty(logits, torch.ones(2, 30, dtype=torch.bool), mode=mode)
    all_fg = background_penalty(logits, torch.zeros(2, 30, dtype=torch.bool), mode=mode, reduction="mean")
    assert all_bg > 0
    assert all_fg.item() == 0.0 and all_fg.requires_grad
    all_fg.backward()
    assert logits.grad.abs().sum() == 0


def test_mean_averages_over_background_anchors():
    logits = torch.zeros(1, 4, 3)  # every anchor: max sigmoid = 0.5
    mask = torch.tensor([[True, True, False, False]])
    assert background_penalty(logits, mask, reduction="mean").item() == pytest.approx(0.5)
    assert background_penalty(logits, mask, reduction="sum").item() == pytest.approx(1.0)
    assert background_penalty(logits, mask, reduction="none").tolist() == [[0.5, 0.5, 0.0, 0.0]]


def test_gradcheck():
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 6, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    mask = torch.rand(2, 6, generator=gen) > 0.4
    for mode in ("max", "focal"):
        assert torch.autograd.gradcheck(lambda t, m=mode: background_penalty(t, mask, mode=m), (logits,))


def test_bad_input():
    logits = torch.zeros(1, 3, 2)
    with pytest.raises(ValueError, match="mode must be one of"):
        background_penalty(logits, torch.ones(1, 3, dtype=torch.bool), mode="hinge")
    with pytest.raises(ValueError, match=r"background_mask must have shape \(B, A\)"):
        background_penalty(logits, torch.ones(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="bool"):
        background_penalty(logits, torch.ones(1, 3))
    with pytest.raises(ValueError, match=r"logits must have shape \(B, A, C\)"):
        background_penalty(torch.zeros(3, 2), torch.ones(3, dtype=torch.bool))


def test_fused_sums_equal_bce_and_penalty_values_and_gradients():
    import torch.nn.functional as F

    from semiyolo.losses import bce_and_background_sums

    gen = torch.Generator().manual_seed(2)
    # logits as a strided view, like Ultralytics' (B, C, A) scores seen as (B, A, C)
    x1 = (torch.randn(2, 5, 40, generator=gen, dtype=torch.float64) * 3).requires_grad_()
    x2 = x1.detach().clone().requires_grad_()
    fg = torch.rand(2, 40, generator=gen) > 0.7
    dense = torch.rand(2, 40, 5, generator=gen, dtype=torch.float64) * fg[..., None]
    bce, pen = bce_and_background_sums(x1.permute(0, 2, 1), fg, dense[fg])
    ref_bce = F.binary_cross_entropy_with_logits(x2.permute(0, 2, 1), dense, reduction="sum")
    ref_pen = background_penalty(x2.permute(0, 2, 1), ~fg, reduction="sum")
    torch.testing.assert_close(bce, ref_bce)
    torch.testing.assert_close(pen, ref_pen)
    (0.7 * bce + 1.3 * pen).backward()
    (0.7 * ref_bce + 1.3 * ref_pen).backward()
    torch.testing.assert_close(x1.grad, x2.grad)
    leaf = x1.detach().permute(0, 2, 1).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: bce_and_background_sums(t, fg, dense[fg]), (leaf,))
    bce_only, zero = bce_and_background_sums(x1.permute(0, 2, 1), fg, dense[fg], with_penalty=False)
    torch.testing.assert_close(bce_only, ref_bce)
    assert zero.item() == 0.0


def test_fused_sums_reject_mismatched_targets():
    from semiyolo.losses import bce_and_background_sums

    fg = torch.tensor([[True, False, True]])
    with pytest.raises(ValueError, match=r"foreground_targets must have shape \(N_fg, C\) = \(2, 4\)"):
        bce_and_background_sums(torch.zeros(1, 3, 4), fg, torch.zeros(3, 4))
    with pytest.raises(ValueError, match="foreground_mask must be a bool tensor"):
        bce_and_background_sums(torch.zeros(1, 3, 4), fg.float(), torch.zeros(2, 4))
