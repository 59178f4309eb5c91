"""The teacher's views fused at the detection level (issue 31, item 3): hand-built detections, values worked out
in the comments."""

import math

import pytest
import torch

from semiyolo.pseudo import Detections
from semiyolo.pseudo.fusion import fuse_views


def _dets(boxes, scores, classes, bins=False):
    n = len(scores)
    logits = torch.arange(n * 4 * 3, dtype=torch.float32).view(n, 4, 3) if bins else None
    return Detections(
        torch.tensor(boxes, dtype=torch.float32).view(-1, 4),
        torch.tensor(scores),
        torch.tensor(classes, dtype=torch.long),
        logits,
        torch.zeros(n),
    )


def test_two_views_of_one_object_become_their_score_weighted_box_at_their_mean_score():
    # view A: [0, 0, 10, 10] at 0.8 (class 0), and [50, 50, 60, 60] at 0.9 (class 1), which B misses;
    # view B: [1, 1, 11, 11] at 0.4 (class 0; IoU with A's 81 / 119 = 0.68: one object), and [50, 50, 60, 60] at 0.3
    # but of class 0: another object than A's class-1 box
    a = _dets([[0, 0, 10, 10], [50, 50, 60, 60]], [0.8, 0.9], [0, 1])
    b = _dets([[1, 1, 11, 11], [50, 50, 60, 60]], [0.4, 0.3], [0, 0])
    fused, found_by = fuse_views([a, b])
    # scores: (0.8 + 0.4) / 2 = 0.6; (0.9 + 0) / 2 = 0.45; (0 + 0.3) / 2 = 0.15, best first
    assert fused.scores.tolist() == pytest.approx([0.6, 0.45, 0.15])
    assert fused.classes.tolist() == [0, 1, 0] and found_by.tolist() == [2, 1, 1]
    # box: (0.8 x [0, 0, 10, 10] + 0.4 x [1, 1, 11, 11]) / 1.2 = [1/3, 1/3, 31/3, 31/3]
    assert fused.boxes[0].tolist() == pytest.approx([1 / 3, 1 / 3, 31 / 3, 31 / 3])
    assert fused.boxes[1].tolist() == pytest.approx([50, 50, 60, 60])
    # spread: each coordinate of A lies 1/3 from the fused box, of B 2/3; weighted variance (2/3)(1/9) + (1/3)(4/9)
    # = 2/9, its root 0.4714 over the fused width 10 (= 31/3 - 1/3): 0.04714 for every coordinate
    assert fused.cluster_spread.tolist() == pytest.approx([math.sqrt(2 / 9) / 10, 0.0, 0.0], abs=1e-6)


def test_one_view_alone_is_itself_and_the_kept_box_gives_the_distributions():
    a = _dets([[0, 0, 10, 10], [0, 0, 10, 11]], [0.5, 0.7], [2, 2], bins=True)  # one object: IoU 100 / 110
    fused, found_by = fuse_views([a])
    assert fused.scores.tolist() == pytest.approx([0.7]) and found_by.tolist() == [1]
    # box: (0.5 x [0, 0, 10, 10] + 0.7 x [0, 0, 10, 11]) / 1.2; y2 = (5 + 7.7) / 1.2 = 10.5833
    assert fused.boxes[0].tolist() == pytest.approx([0, 0, 10, 12.7 / 1.2])
    assert torch.equal(fused.bin_logits[0], a.bin_logits[1])  # NMS kept the 0.7 box


def test_a_view_s_own_nms_spread_survives_the_fusion():
    # one view alone: the across-view spread of a one-member cluster is 0; the member's NMS spread (0.2) is kept
    a = Detections(
        torch.tensor([[0.0, 0.0, 10.0, 10.0]]), torch.tensor([0.9]), torch.tensor([0]), None, torch.tensor([0.2])
    )
    fused, _ = fuse_views([a])
    assert fused.cluster_spread.tolist() == pytest.approx([0.2])


def test_no_detection_in_any_view_fuses_to_none_and_bad_input_is_refused():
    empty = Detections.empty(None)
    fused, found_by = fuse_views([empty, empty])
    assert len(fused) == 0 and found_by.numel() == 0
    with pytest.raises(ValueError, match="at least one view"):
        fuse_views([])
    with pytest.raises(ValueError, match="bin_logits"):
        fuse_views([_dets([[0, 0, 1, 1]], [0.5], [0], bins=True), _dets([[0, 0, 1, 1]], [0.5], [0])])
