import math

import pytest
import torch
import torchvision.ops as tvops

from semiyolo.losses import box_iou_paired, iou_loss

A = torch.tensor([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 2.0, 1.0]])
B = torch.tensor([[1.0, 1.0, 3.0, 3.0], [0.0, 0.0, 1.0, 2.0]])


def test_hand_values():
    # Pair 0: inter 1, union 4 + 4 - 1 = 7 -> IoU 1/7. Enclosing box [0,0,3,3], area 9:
    #   GIoU = 1/7 - (9 - 7)/9 = -0.0793651. Centres (1,1), (2,2): rho^2 = 2, c^2 = 18: DIoU = 1/7 - 1/9.
    #   Same aspect ratio, so v = 0 and CIoU = DIoU.
    # Pair 1: 2x1 vs 1x2 at the origin: inter 1, union 3 -> IoU 1/3. Enclosing [0,0,2,2], c^2 = 8,
    #   centres (1, .5), (.5, 1): rho^2 = 0.5 -> DIoU = 1/3 - 1/16 = 0.2708333.
    #   v = 4/pi^2 (atan 2 - atan 0.5)^2 = 0.1678256, alpha = v / (2/3 + v) = 0.2011132,
    #   CIoU = 0.2708333 - 0.2011132 * 0.1678256 = 0.2370816
    v = 4 / math.pi**2 * (math.atan(2) - math.atan(0.5)) ** 2
    ciou1 = 1 / 3 - 1 / 16 - v / (2 / 3 + v) * v
    expected = {
        "iou": [1 / 7, 1 / 3],
        "giou": [1 / 7 - 2 / 9, 1 / 3 - 1 / 4],
        "diou": [1 / 7 - 1 / 9, 1 / 3 - 1 / 16],
        "ciou": [1 / 7 - 1 / 9, ciou1],
    }
    assert ciou1 == pytest.approx(0.2370816, abs=1e-6)
    for kind, values in expected.items():
        torch.testing.assert_close(box_iou_paired(A, B, kind), torch.tensor(values), atol=1e-6, rtol=0)
        torch.testing.assert_close(iou_loss(A, B, kind), 1 - torch.tensor(values), atol=1e-6, rtol=0)


def _random_boxes(n: int, gen: torch.Generator, dtype=torch.float32) -> torch.Tensor:
    xy = torch.rand(n, 2, generator=gen, dtype=dtype) * 100
    return torch.cat((xy, xy + 1 + torch.rand(n, 2, generator=gen, dtype=dtype) * 60), dim=1)


@pytest.mark.parametrize(
    ("kind", "reference"),
    [
        ("iou", lambda p, t: 1 - tvops.box_iou(p, t).diagonal()),
        ("giou", tvops.generalized_box_iou_loss),
        ("diou", tvops.distance_box_iou_loss),
        ("ciou", tvops.complete_box_iou_loss),
    ],
)
def test_matches_torchvision_loss_and_gradients(kind, reference):
    gen = torch.Generator().manual_seed(0)
    p1 = _random_boxes(300, gen, torch.float64).requires_grad_()
    p2 = p1.detach().clone().requires_grad_()
    t = _random_boxes(300, gen, torch.float64)
    ours, ref = iou_loss(p1, t, kind), reference(p2, t)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)
    ours.sum().backward()
    ref.sum().backward()
    torch.testing.assert_close(p1.grad, p2.grad, atol=1e-5, rtol=1e-4)


def test_ciou_matches_ultralytics():
    from ultralytics.utils.metrics import bbox_iou

    gen = torch.Generator().manual_seed(1)
    p, t = _random_boxes(500, gen), _random_boxes(500, gen)
    torch.testing.assert_close(
        box_iou_paired(p, t, "ciou"), bbox_iou(p, t, xywh=False, CIoU=True).squeeze(-1), atol=1e-5, rtol=0
    )
    torch.testing.assert_close(
        box_iou_paired(p, t, "giou"), bbox_iou(p, t, xywh=False, GIoU=True).squeeze(-1), atol=1e-5, rtol=0
    )


@pytest.mark.parametrize("kind", ["iou", "giou", "diou"])
def test_gradcheck_float64(kind):
    gen = torch.Generator().manual_seed(2)
    p = _random_boxes(8, gen, torch.float64).requires_grad_()
    t = _random_boxes(8, gen, torch.float64)
    assert torch.autograd.gradcheck(lambda b: box_iou_paired(b, t, kind), (p,))


@pytest.mark.parametrize("kind", ["iou", "giou", "diou", "ciou"])
def test_degenerate_boxes_are_finite(kind):
    boxes = torch.tensor(
        [[1.0, 1.0, 1.0, 3.0], [2.0, 2.0, 2.0, 2.0], [0.0, 0.0, 0.0, 0.0], [5.0, 5.0, 6.0, 5.0]],
        requires_grad=True,
    )
    target = torch.tensor([[1.0, 1.0, 1.0, 3.0], [2.0, 2.0, 2.0, 2.0], [1.0, 1.0, 3.0, 3.0], [0.0, 0.0, 0.0, 0.0]])
    loss = iou_loss(boxes, target, kind, reduction="sum")
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(boxes.grad).all()


def test_identical_boxes_give_zero_loss():
    assert iou_loss(A, A, "ciou").abs().max() < 1e-6


def test_bad_input():
    with pytest.raises(ValueError, match="kind must be one of"):
        box_iou_paired(A, B, "eiou")
    with pytest.raises(ValueError, match=r"shape \(\*, 4\)"):
        box_iou_paired(A, B[:1])
