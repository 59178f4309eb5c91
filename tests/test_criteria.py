import math

import pytest
import torch
from torch import nn

from semiyolo.criteria import GFLLoss, RetinaNetLoss, YoloV1Loss, YoloV3Loss, YoloV4Loss
from semiyolo.criteria.yolov3 import _Grid

LOG2 = math.log(2)


def _yolov1_preds(boxes_per_cell: int) -> torch.Tensor:
    # S = 2, C = 1; every cell: each box conf 0.2, class prob 0
    preds = torch.zeros(1, 2, 2, boxes_per_cell * 5 + 1)
    preds[..., 4 : boxes_per_cell * 5 : 5] = 0.2
    return preds


def test_yolov1_hand_values():
    # One object: class 0, centre (0.25, 0.25), size 0.25 -> cell (0, 0), offset (0.5, 0.5).
    # Prediction there: (0.5, 0.5, w 0.16, h 0.25), conf 0.4, class prob 0.7.
    #   coord: 5 * (sqrt 0.16 - sqrt 0.25)^2 = 5 * 0.01 = 0.05
    #   IoU: pred 0.16 x 0.25 lies inside the 0.25 x 0.25 object -> 0.04 / 0.0625 = 0.64; obj (0.4 - 0.64)^2 = 0.0576
    #   noobj: three empty cells, conf 0.2 -> 0.5 * 3 * 0.04 = 0.06; cls (0.7 - 1)^2 = 0.09
    preds = _yolov1_preds(1)
    preds[0, 0, 0] = torch.tensor([0.5, 0.5, 0.16, 0.25, 0.4, 0.7])
    targets = torch.tensor([[0, 0, 0.25, 0.25, 0.25, 0.25]])
    loss = YoloV1Loss(grid_size=2, boxes_per_cell=1, num_classes=1)(preds, targets)
    expected = {"coord": 0.05, "obj": 0.0576, "noobj": 0.06, "cls": 0.09}
    for name, value in expected.items():
        assert loss[name].item() == pytest.approx(value, abs=1e-6), name


def test_yolov1_best_iou_box_is_responsible_the_other_is_noobj():
    # Box 0 is a poor fit (IoU 0.25), box 1 exact (IoU 1): box 1 answers, box 0's conf 0.2 joins noobj:
    # noobj = 0.5 * (3 cells * 2 boxes + 1) * 0.04 = 0.14, obj = (0.2 - 1)^2 = 0.64, coord 0
    preds = _yolov1_preds(2)
    preds[0, 0, 0, :10] = torch.tensor([0.5, 0.5, 0.125, 0.125, 0.2, 0.5, 0.5, 0.25, 0.25, 0.2])
    loss = YoloV1Loss(grid_size=2, boxes_per_cell=2, num_classes=1)(
        preds, torch.tensor([[0, 0, 0.25, 0.25, 0.25, 0.25]])
    )
    assert loss["noobj"].item() == pytest.approx(0.14, abs=1e-6)
    assert loss["obj"].item() == pytest.approx(0.64, abs=1e-5)
    assert loss["coord"].item() == pytest.approx(0.0, abs=1e-6)


def _single_scale(criterion_cls, anchor_px: float = 8.0, **kwargs):
    # one scale, stride 8, one anchor; a 16 px image -> 2 x 2 grid; C = 1
    return criterion_cls(num_classes=1, anchors=[[[anchor_px, anchor_px]]], strides=(8,), **kwargs)


def test_yolov3_hand_values():
    # Object: class 0, centre (4, 4) px, 8 x 8 px -> cell (0, 0), offset 0.5; size = anchor.
    # All-zero predictions: sigmoid(0) = 0.5 and t_wh = 0 = log(8 / 8), so box = 0.
    # obj = BCE(0, 1) = log 2; cls = log 2; the three other cells' boxes do not touch the object:
    # noobj = 0.5 * 3 * BCE(0, 0) = 1.5 log 2.
    preds = [torch.zeros(1, 6, 2, 2)]
    loss = _single_scale(YoloV3Loss)(preds, torch.tensor([[0, 0, 0.25, 0.25, 0.5, 0.5]]))
    expected = {"box": 0.0, "obj": LOG2, "noobj": 1.5 * LOG2, "cls": LOG2}
    for name, value in expected.items():
        assert loss[name].item() == pytest.approx(value, abs=1e-5), name


@pytest.mark.parametrize(("ignore_thresh", "noobj"), [(0.2, 0.0), (0.3, 1.5 * LOG2)])
def test_yolov3_ignore_mask_spares_overlapping_predictions(ignore_thresh, noobj):
    # Object [0, 0, 16, 16] px; every 8 px predicted box lies inside it: IoU 64 / 256 = 0.25.
    # Above ignore_thresh 0.2 all three negatives are spared; below 0.3 none is.
    preds = [torch.zeros(1, 6, 2, 2)]
    loss = _single_scale(YoloV3Loss, ignore_thresh=ignore_thresh)(preds, torch.tensor([[0, 0, 0.5, 0.5, 1.0, 1.0]]))
    assert loss["noobj"].item() == pytest.approx(noobj, abs=1e-6)


def test_yolov4_replaces_mse_with_ciou():
    # same exact fit as in the YOLOv3 case: the v4 coder decodes t = 0 to the cell centre too, CIoU = 1
    preds = [torch.zeros(1, 6, 2, 2)]
    loss = _single_scale(YoloV4Loss)(preds, torch.tensor([[0, 0, 0.25, 0.25, 0.5, 0.5]]))
    assert loss["box"].item() == pytest.approx(0.0, abs=1e-5)
    # a 16 px object (t_wh should be log 2): 5 * (1 - CIoU) with IoU 64 / 256 and concentric boxes, v = 0
    loss = _single_scale(YoloV4Loss)(preds, torch.tensor([[0, 0, 0.25, 0.25, 1.0, 1.0]]))
    assert loss["box"].item() == pytest.approx(5 * (1 - 0.25), abs=1e-5)


def test_yolov3_three_scales_at_416_give_10647_predictions():
    c = 3
    preds = [torch.zeros(1, 3 * (5 + c), s, s) for s in (13, 26, 52)]
    crit = YoloV3Loss(num_classes=c)
    assert _Grid(preds, crit.anchors, crit.strides, c).pred.shape == (1, 10647, 5 + c)


def test_yolov3_two_objects_on_one_anchor_keep_the_last():
    preds = [torch.zeros(1, 6, 2, 2)]
    targets = torch.tensor([[0, 0, 0.2, 0.2, 0.5, 0.5], [0, 0, 0.3, 0.3, 0.5, 0.5]])
    crit = _single_scale(YoloV3Loss)
    grid = _Grid(preds, crit.anchors, crit.strides, 1)
    img, flat, kept = crit.assign(grid, targets)
    assert img.tolist() == [0] and flat.tolist() == [0] and kept[0, 2].item() == pytest.approx(0.3)


class _ToyYoloHead(nn.Module):
    def __init__(self, num_classes: int, anchors_per_scale: int = 2):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, stride=8, padding=1), nn.SiLU())
        self.down = nn.Sequential(nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.SiLU())
        out = anchors_per_scale * (5 + num_classes)
        self.p16, self.p8 = nn.Conv2d(8, out, 1), nn.Conv2d(8, out, 1)

    def forward(self, x):
        f8 = self.stem(x)
        return [self.p16(self.down(f8)), self.p8(f8)]


@pytest.mark.parametrize("criterion_cls", [YoloV3Loss, YoloV4Loss])
def test_yolo_criteria_train_a_toy_head(criterion_cls):
    torch.manual_seed(0)
    head = _ToyYoloHead(num_classes=2)
    crit = criterion_cls(num_classes=2, anchors=[[[20, 20], [40, 30]], [[8, 8], [12, 16]]], strides=(16, 8))
    images = torch.rand(2, 3, 64, 64)
    targets = torch.tensor([[0, 1, 0.3, 0.4, 0.4, 0.3], [1, 0, 0.7, 0.6, 0.15, 0.2], [1, 1, 0.2, 0.2, 0.1, 0.1]])
    opt = torch.optim.Adam(head.parameters(), lr=0.01)
    losses = []
    for _ in range(40):
        total = sum(crit(head(images), targets).values())
        opt.zero_grad()
        total.backward()
        opt.step()
        losses.append(total.item())
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.3 * losses[0]


def test_retinanet_hand_values():
    # Anchor 0 equals the object (class 0 of 2), anchor 1 is far away. Zero logits (p = 0.5) and deltas:
    # cls = [0.25 * 0.25 (anchor 0, class 0) + 0.75 * 0.25 * 3 (three negatives)] log 2 = 0.625 log 2,
    # over 1 positive; box = 0 (deltas already exact).
    anchors = torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30]])
    targets = torch.tensor([[0, 0, 5 / 32, 5 / 32, 10 / 32, 10 / 32]])
    loss = RetinaNetLoss(num_classes=2)(torch.zeros(1, 2, 2), torch.zeros(1, 2, 4), anchors, targets, (32, 32))
    assert loss["cls"].item() == pytest.approx(0.625 * LOG2, abs=1e-6)
    assert loss["box"].item() == pytest.approx(0.0, abs=1e-6)


def test_retinanet_image_without_objects_is_all_negative():
    anchors = torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30]])
    logits = torch.zeros(2, 2, 2, requires_grad=True)
    loss = RetinaNetLoss(num_classes=2)(logits, torch.zeros(2, 2, 4), anchors, torch.zeros(0, 6), (32, 32))
    # 8 negatives * 0.75 * 0.25 * log 2, divided by max(1, 0 positives)
    assert loss["cls"].item() == pytest.approx(8 * 0.1875 * LOG2, abs=1e-6)
    sum(loss.values()).backward()
    assert torch.isfinite(logits.grad).all()


def _gfl_case(cls_logit: float):
    # One anchor point (8, 8), stride 8, 4 bins; the object [0, 0, 16, 16] is 1 bin away on every side.
    # Bin logits peaked at bin 1 decode to distance 1 * 8 px: the predicted box is exact.
    bins = torch.full((1, 1, 4, 4), -30.0)
    bins[..., 1] = 30.0
    targets = torch.tensor([[0, 0, 0.5, 0.5, 1.0, 1.0]])
    crit = GFLLoss(num_classes=2)
    return crit(
        torch.full((1, 1, 2), cls_logit), bins, torch.tensor([[8.0, 8.0]]), torch.tensor([8.0]), targets, (16, 16)
    )


def test_gfl_hand_values():
    # exact box: GIoU = 1, DFL = -log S_1 ~ 0, quality target 1 in class 0 and 0 in class 1;
    # with zero logits QFL = 0.25 log 2 + 0.25 log 2 = 0.5 log 2 over 1 positive
    loss = _gfl_case(0.0)
    assert loss["qfl"].item() == pytest.approx(0.5 * LOG2, abs=1e-5)
    assert loss["giou"].item() == pytest.approx(0.0, abs=1e-5)
    assert loss["dfl"].item() == pytest.approx(0.0, abs=1e-5)


def test_classic_criteria_reject_bad_layouts():
    with pytest.raises(ValueError, match=r"preds must have shape \(N, 2, 2, 6\)"):
        YoloV1Loss(2, 1, 1)(torch.zeros(1, 2, 2, 5), torch.zeros(0, 6))
    with pytest.raises(ValueError, match="targets must have shape"):
        YoloV1Loss(2, 1, 1)(torch.zeros(1, 2, 2, 6), torch.zeros(3, 5))
    with pytest.raises(ValueError, match="preds must hold 3 scales"):
        YoloV3Loss(num_classes=1)([torch.zeros(1, 18, 2, 2)], torch.zeros(0, 6))
    with pytest.raises(ValueError, match="anchors must have shape"):
        YoloV3Loss(num_classes=1, anchors=[[[1, 1]]])
