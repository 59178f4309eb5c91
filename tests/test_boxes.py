import math

import pytest
import torch

from semiyolo.boxes import (
    IGNORE,
    NEGATIVE,
    RETINANET_MATCHER,
    SCALED_YOLOV4_CODER,
    YOLOV3_CODER,
    YOLOV3_MATCHER,
    YOLOV4_CODER,
    IoUMatcher,
    YoloBoxCoder,
    decode_deltas,
    encode_deltas,
    nms,
)


@pytest.mark.parametrize("coder", [YOLOV3_CODER, YOLOV4_CODER, SCALED_YOLOV4_CODER])
def test_decode_of_zero_is_cell_centre_and_anchor_size(coder):
    # sigmoid(0) = 0.5: v3 0.5; v4 1.1 * 0.5 - 0.05 = 0.5; Scaled 2 * 0.5 - 0.5 = 0.5.
    # exp(0) = 1 and (2 * 0.5)^2 = 1: the size is the anchor's.
    box = coder.decode(torch.zeros(4), torch.tensor([3.0, 7.0]), torch.tensor([2.0, 5.0]))
    torch.testing.assert_close(box, torch.tensor([3.5, 7.5, 2.0, 5.0]))


@pytest.mark.parametrize("coder", [YOLOV3_CODER, YOLOV4_CODER, SCALED_YOLOV4_CODER])
def test_round_trip(coder):
    gen = torch.Generator().manual_seed(0)
    cells = torch.randint(0, 13, (100, 2), generator=gen).double()
    anchors = torch.rand(100, 2, generator=gen, dtype=torch.float64) * 4 + 0.5
    t = torch.randn(100, 4, generator=gen, dtype=torch.float64) * 2
    boxes = coder.decode(t, cells, anchors)
    torch.testing.assert_close(coder.encode(boxes, cells, anchors), t)
    torch.testing.assert_close(coder.decode(coder.encode(boxes, cells, anchors), cells, anchors), boxes)


def test_grid_sensitivity_reaches_the_cell_edges():
    cell, anchor = torch.zeros(2), torch.ones(2)
    low, high = torch.full((4,), -40.0), torch.full((4,), 40.0)
    # v3: sigmoid never reaches 0 or 1, so the centre stays strictly inside (0, 1)
    assert 0 < YOLOV3_CODER.decode(low, cell, anchor)[0] < 1e-15
    # v4: 1.1 * sigmoid - 0.05 spans (-0.05, 1.05), Scaled-YOLOv4: (-0.5, 1.5); size at most 4 anchors
    torch.testing.assert_close(YOLOV4_CODER.decode(low, cell, anchor)[0], torch.tensor(-0.05))
    torch.testing.assert_close(YOLOV4_CODER.decode(high, cell, anchor)[0], torch.tensor(1.05))
    torch.testing.assert_close(SCALED_YOLOV4_CODER.decode(high, cell, anchor), torch.tensor([1.5, 1.5, 4.0, 4.0]))


def test_encode_clamps_unreachable_boxes_to_finite_values():
    t = YOLOV3_CODER.encode(torch.tensor([2.0, 0.0, 1.0, 0.0]), torch.zeros(2), torch.ones(2))
    assert torch.isfinite(t).all()


def test_coder_rejects_bad_settings():
    with pytest.raises(ValueError, match="wh_mode"):
        YoloBoxCoder(1.0, "linear")
    with pytest.raises(ValueError, match="xy_scale"):
        YoloBoxCoder(0.5)


def test_deltas_round_trip_and_match_torchvision():
    from torchvision.models.detection._utils import BoxCoder

    gen = torch.Generator().manual_seed(1)
    xy = torch.rand(20, 2, generator=gen) * 50
    anchors = torch.cat((xy, xy + 5 + torch.rand(20, 2, generator=gen) * 30), 1)
    boxes = anchors + torch.randn(20, 4, generator=gen)
    weights = (10.0, 10.0, 5.0, 5.0)
    deltas = encode_deltas(anchors, boxes, weights)
    torch.testing.assert_close(deltas, BoxCoder(weights).encode_single(boxes, anchors))
    torch.testing.assert_close(decode_deltas(anchors, deltas, weights), boxes, atol=1e-4, rtol=1e-5)


def test_matcher_yolov3_thresholds_by_hand():
    # 2 objects x 5 anchors; each anchor takes its best object.
    # Anchor 0: 0.8 > 0.7 -> object 0. Anchor 1: 0.5 in [0.3, 0.7] -> ignore. Anchor 2: 0.2 < 0.3 -> negative.
    # Anchor 3: 0.7 is not > 0.7 -> ignore. Anchor 4: 0.25 < 0.3 -> negative.
    iou = torch.tensor([[0.8, 0.5, 0.2, 0.0, 0.1], [0.1, 0.2, 0.0, 0.7, 0.25]])
    no_best = IoUMatcher(0.3, 0.7, positive_inclusive=False, match_best_anchor=False)
    assert no_best(iou).tolist() == [0, IGNORE, NEGATIVE, IGNORE, NEGATIVE]
    # The best-anchor rule: object 1's best anchor is 3, which becomes its positive.
    assert YOLOV3_MATCHER(iou).tolist() == [0, IGNORE, NEGATIVE, 1, NEGATIVE]


def test_matcher_agrees_with_torchvision_retinanet():
    from torchvision.models.detection._utils import Matcher

    gen = torch.Generator().manual_seed(2)
    iou = torch.rand(6, 200, generator=gen) * 0.9
    reference = Matcher(0.5, 0.4, allow_low_quality_matches=True)
    assert torch.equal(RETINANET_MATCHER(iou), reference(iou))


def test_matcher_with_no_objects_and_bad_thresholds():
    assert RETINANET_MATCHER(torch.zeros(0, 4)).tolist() == [NEGATIVE] * 4
    with pytest.raises(ValueError, match="negative_below <= positive_from"):
        IoUMatcher(0.6, 0.5)


def test_match_boxes_from_coordinates():
    anchors = torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30], [0, 0, 9, 10]])
    gt = torch.tensor([[0.0, 0, 10, 10]])
    # IoU with anchors: 1.0, 0.0, 0.9 -> positive, negative, positive
    assert RETINANET_MATCHER.match_boxes(gt, anchors).tolist() == [0, NEGATIVE, 0]


def test_nms_is_class_aware():
    boxes = torch.tensor([[0.0, 0, 10, 10], [1, 1, 10, 10], [0, 0, 10, 10], [50, 50, 60, 60]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.05])
    classes = torch.tensor([0, 0, 1, 0])
    # box 1 overlaps box 0 (IoU 0.81) in class 0 -> dropped; box 2 is class 1 -> kept; box 3 under 0.1
    assert nms(boxes, scores, classes, iou_threshold=0.5, score_threshold=0.1).tolist() == [0, 2]
    assert nms(boxes, scores, None, iou_threshold=0.5, score_threshold=0.1).tolist() == [0]
    assert nms(boxes, scores, classes, max_det=1).tolist() == [0]
    assert nms(torch.zeros(0, 4), torch.zeros(0)).numel() == 0


def test_nms_rejects_bad_shapes():
    with pytest.raises(ValueError, match="boxes must be"):
        nms(torch.zeros(3, 4), torch.zeros(2))


def test_logit_is_finite_at_bounds():
    assert math.isfinite(
        YOLOV3_CODER.encode(torch.tensor([1.0, 1.0, 1.0, 1.0]), torch.ones(2), torch.ones(2))[0].item()
    )
