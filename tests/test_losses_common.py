"""Contracts every loss keeps: reductions, empty input, half precision, argument errors."""

import pytest
import torch

from semiyolo.losses import (
    background_penalty,
    distribution_focal_loss,
    focal_loss,
    iou_loss,
    quality_focal_loss,
    sigmoid_focal_loss,
    varifocal_loss,
)


def _targets(shape):
    return (torch.rand(shape, generator=torch.Generator().manual_seed(0)) > 0.5).float()


def _boxes(n):
    xy = torch.rand(n, 2, generator=torch.Generator().manual_seed(0)) * 10
    return torch.cat((xy, xy + 1 + torch.rand(n, 2)), dim=1)


# name -> builder(n, dtype) giving (fn, differentiable input, other args)
LOSSES = {
    "sigmoid_focal_loss": lambda n, dt: (
        sigmoid_focal_loss,
        torch.randn(n, 3).to(dt),
        (_targets((n, 3)).to(dt),),
    ),
    "focal_loss": lambda n, dt: (
        focal_loss,
        (torch.rand(n, 3) * 0.98 + 0.01).to(dt),
        (_targets((n, 3)).to(dt),),
    ),
    "quality_focal_loss": lambda n, dt: (
        quality_focal_loss,
        torch.randn(n, 3).to(dt),
        (torch.rand(n, 3).to(dt),),
    ),
    "varifocal_loss": lambda n, dt: (varifocal_loss, torch.randn(n, 3).to(dt), (torch.rand(n, 3).to(dt),)),
    "distribution_focal_loss": lambda n, dt: (
        distribution_focal_loss,
        torch.randn(n, 8).to(dt),
        (torch.rand(n).to(dt) * 7,),
    ),
    "iou_loss": lambda n, dt: (iou_loss, _boxes(n).to(dt), (_boxes(n).flip(0).to(dt),)),
    "background_penalty": lambda n, dt: (
        background_penalty,
        torch.randn(1, n, 3).to(dt),
        (torch.arange(n).remainder(2).bool().view(1, n),),
    ),
}


@pytest.mark.parametrize("name", LOSSES)
def test_unknown_reduction_raises(name):
    fn, x, args = LOSSES[name](4, torch.float32)
    with pytest.raises(ValueError, match=r"reduction must be one of .* got 'avg'"):
        fn(x, *args, reduction="avg")


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("name", LOSSES)
def test_empty_input_gives_attached_zero(name, reduction):
    fn, x, args = LOSSES[name](0, torch.float32)
    x.requires_grad_(True)
    loss = fn(x, *args, reduction=reduction)
    assert loss.shape == () and loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert x.grad is not None and x.grad.shape == x.shape


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", LOSSES)
def test_half_input_is_computed_in_float32(name, dtype):
    fn, x, args = LOSSES[name](16, dtype)
    if name != "focal_loss":  # the probability form gets probabilities, which cannot be scaled past 1
        x = x * 8
    x.requires_grad_(True)
    loss = fn(x, *args, reduction="sum")
    ref = LOSSES[name](16, torch.float32)[0](
        x.detach().float(), *(a.float() if a.is_floating_point() else a for a in args), reduction="sum"
    )
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    torch.testing.assert_close(loss, ref)
    loss.backward()
    assert x.grad.dtype == dtype and torch.isfinite(x.grad.float()).all()


@pytest.mark.parametrize("name", [n for n in LOSSES if n not in ("distribution_focal_loss", "background_penalty")])
def test_shape_mismatch_names_the_arguments(name):
    fn, x, args = LOSSES[name](4, torch.float32)
    with pytest.raises(ValueError, match="shape"):
        fn(x, args[0][:3])
