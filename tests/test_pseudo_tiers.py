"""Pseudo-labels in tiers: which detection teaches what, the anchors an uncertain box covers, and the batch a
tiered mean teacher builds."""

import pytest
import torch
from pydantic import ValidationError
from torch import nn

from semiyolo.boxes import anchors_in_boxes
from semiyolo.config import SemiConfig
from semiyolo.pseudo import (
    CapFilter,
    Detections,
    FilterChain,
    NMSUncertaintyFilter,
    ScoreFilter,
    soft_targets,
    split_tiers,
)
from semiyolo.pseudo.augment import StrongAugment
from semiyolo.teacher import MeanTeacher, TeacherPseudoLabeler


def _dets(scores, spread):
    n = len(scores)
    return Detections(
        torch.tensor([[0.0, 0.0, 4.0, 4.0]] * n),
        torch.tensor(scores),
        torch.zeros(n, dtype=torch.long),
        cluster_spread=torch.tensor(spread),
    )


def test_tiers_by_hand():
    # the localisation filter is listed first but judges only the reliable detections, after the label filters
    chain = FilterChain([NMSUncertaintyFilter(0.15), ScoreFilter(0.5), CapFilter(2)])
    tiers = split_tiers(chain, _dets([0.9, 0.7, 0.3, 0.6], [0.05, 0.5, 0.0, 0.1]))
    # score >= 0.5: 0, 1, 3; the cap keeps the best two of those: 0 (0.9), 1 (0.7); spread <= 0.15: 0 only
    assert tiers.reliable.tolist() == [True, True, False, False]
    assert tiers.regressed.tolist() == [True, False, False, False]
    assert tiers.uncertain.tolist() == [False, False, True, True]
    assert chain.stats() == {
        "0_nms_unc/kept": 1,
        "0_nms_unc/dropped": 1,
        "1_score/kept": 3,
        "1_score/dropped": 1,
        "2_cap/kept": 2,
        "2_cap/dropped": 1,
    }


def test_tiers_of_no_detection():
    tiers = split_tiers(FilterChain([ScoreFilter(0.5)]), Detections.empty())
    assert tiers.reliable.shape == tiers.regressed.shape == tiers.uncertain.shape == (0,)


def test_anchors_in_boxes_by_hand():
    points = torch.tensor([[1.0, 1.0], [5.0, 5.0], [4.0, 2.0], [9.0, 9.0]])
    boxes = torch.tensor([[0.0, 0.0, 4.0, 4.0], [8.0, 8.0, 10.0, 10.0]])
    inside = anchors_in_boxes(points, boxes, torch.tensor([0, 1]), num_images=3)
    # image 0's box holds (1, 1) and, on its border, (4, 2); image 1's holds (9, 9); image 2 has no box
    assert inside.tolist() == [[True, False, True, False], [False, False, False, True], [False] * 4]
    assert not anchors_in_boxes(points, torch.zeros(0, 4), torch.zeros(0), 2).any()


class _TwoCandidates(nn.Module):
    """Ultralytics' inference output for 2 anchors, 2 classes: anchor 0 a class-1 box of score 0.9 at cxcywh
    (4, 4, 4, 4); anchor 1 a class-0 box of score 0.3 at (12, 12, 4, 4); other scores 0.05."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(()))

    def forward(self, images):
        decoded = torch.full((images.shape[0], 6, 2), 0.05)
        decoded[:, :4, 0] = torch.tensor([4.0, 4.0, 4.0, 4.0])
        decoded[:, :4, 1] = torch.tensor([12.0, 12.0, 4.0, 4.0])
        decoded[:, 5, 0], decoded[:, 4, 1] = 0.9, 0.3
        return decoded, {}


def _extend_one_labeled_image(**targets):
    """A mean teacher over :class:`_TwoCandidates` (score threshold 0.5, an identity strong view) extends a batch
    of one labeled 16 x 16 image with one pseudo-labeled image."""
    labeler = TeacherPseudoLabeler(FilterChain([ScoreFilter(0.5)]), min_score=0.1)
    identity = StrongAugment(flip=0.0, scale=(1.0, 1.0), translate=0.0, brightness=0, contrast=0, saturation=0)
    teacher = MeanTeacher(_TwoCandidates(), labeler, identity, **targets)
    labeled = {
        "img": torch.zeros(1, 3, 16, 16),
        "batch_idx": torch.tensor([0.0]),
        "cls": torch.tensor([[0.0]]),
        "bboxes": torch.tensor([[0.5, 0.5, 0.5, 0.5]]),
    }
    return teacher.extend(labeled, torch.rand(1, 3, 16, 16))


@pytest.mark.parametrize("targets", ["hard", "tiered"])
def test_a_tiered_teacher_sends_reliable_boxes_as_targets_and_the_rest_as_ignored(targets):
    batch, reliable = _extend_one_labeled_image(pseudo_targets=targets)
    assert [len(d) for d in reliable] == [1] and reliable[0].scores.tolist() == [pytest.approx(0.9)]
    # the reliable box: xyxy (2, 2, 6, 6) of 16 x 16, cxcywh (0.25, 0.25, 0.25, 0.25), class 1, image 1
    assert torch.allclose(batch["bboxes"][1], torch.tensor([0.25, 0.25, 0.25, 0.25]))
    assert batch["cls"][:, 0].tolist() == [0.0, 1.0] and batch["batch_idx"].tolist() == [0.0, 1.0]
    if targets == "hard":
        assert "regress" not in batch and "ignore_bboxes" not in batch
        return
    assert batch["regress"].tolist() == [True, True]  # no localisation filter: every reliable box is regressed
    # the uncertain box: xyxy (10, 10, 14, 14), cxcywh (0.75, 0.75, 0.25, 0.25), image 1
    assert batch["ignore_idx"].tolist() == [1.0]
    assert torch.allclose(batch["ignore_bboxes"], torch.tensor([[0.75, 0.75, 0.25, 0.25]]))


def test_soft_uncertain_targets_join_the_targets_at_the_teachers_score_unregressed():
    batch, reliable = _extend_one_labeled_image(pseudo_targets="tiered", uncertain_targets="soft")
    assert [len(d) for d in reliable] == [1]  # the audit still counts the reliable pseudo-labels only
    # targets: the labeled one, the reliable class-1 box (score 0.9) at full weight and regressed, then the uncertain
    # class-0 box (score 0.3) at weight 0.3, not regressed; its box, cxcywh (0.75, 0.75, 0.25, 0.25), is also an
    # ignore region, so the anchors the assigner leaves out of it stay neutral
    assert batch["cls"][:, 0].tolist() == [0.0, 1.0, 0.0] and batch["batch_idx"].tolist() == [0.0, 1.0, 1.0]
    assert torch.allclose(batch["bboxes"][2], torch.tensor([0.75, 0.75, 0.25, 0.25]))
    assert batch["regress"].tolist() == [True, True, False]
    assert torch.allclose(batch["target_weight"], torch.tensor([1.0, 1.0, 0.3]))
    assert batch["ignore_idx"].tolist() == [1.0]
    assert torch.allclose(batch["ignore_bboxes"], torch.tensor([[0.75, 0.75, 0.25, 0.25]]))


def test_soft_targets_leave_out_an_uncertain_reading_of_a_reliable_object():
    reliable = torch.tensor([True, False, False])
    # the reliable box (0, 0, 10, 10); an uncertain one on it, (0, 0, 10, 9): IoU 90 / 100 = 0.9 >= 0.5, left out;
    # one elsewhere, (20, 20, 30, 30): IoU 0, kept
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 9.0], [20.0, 20.0, 30.0, 30.0]])
    assert soft_targets(reliable, boxes).tolist() == [True, False, True]
    # (0, 0, 10, 4) against the reliable box: IoU 40 / 100 = 0.4 < 0.5, kept
    assert soft_targets(reliable[:2], torch.tensor([[0.0, 0, 10, 10], [0.0, 0, 10, 4]])).tolist() == [True, True]
    assert soft_targets(torch.tensor([False, False]), boxes[:2]).tolist() == [True, True]  # nothing reliable
    assert soft_targets(torch.zeros(0, dtype=torch.bool), torch.zeros(0, 4)).tolist() == []


def test_soft_uncertain_targets_need_tiers():
    labeler = TeacherPseudoLabeler(FilterChain([]))
    with pytest.raises(ValueError, match="soft uncertain targets need tiered"):
        MeanTeacher(_TwoCandidates(), labeler, pseudo_targets="hard", uncertain_targets="soft")
    with pytest.raises(ValueError, match="uncertain_targets must be one of"):
        MeanTeacher(_TwoCandidates(), labeler, pseudo_targets="tiered", uncertain_targets="half")
    with pytest.raises(ValidationError, match="uncertain_targets: soft with pseudo_targets: hard"):
        SemiConfig(pseudo_targets="hard", uncertain_targets="soft")


def test_mean_teacher_rejects_an_unknown_target_choice():
    labeler = TeacherPseudoLabeler(FilterChain([]))
    with pytest.raises(ValueError, match="pseudo_targets must be one of"):
        MeanTeacher(_TwoCandidates(), labeler, pseudo_targets="soft")


def test_f_beta_optimal_threshold_weighs_misses_by_hand():
    from semiyolo.pseudo import f1_optimal_threshold

    scores, tp = torch.tensor([0.9, 0.5, 0.4, 0.3]), torch.tensor([True, False, False, True])
    # F1 = 2 tp / (k + n_gt) over the top k: 2/3, 2/4, 2/5, 4/6: the tie goes to the higher threshold, 0.9
    assert f1_optimal_threshold(scores, tp, n_gt=2) == pytest.approx(0.9)
    # F2 = 5 tp / (k + 4 n_gt): 5/9, 5/10, 5/11, 10/12: keeping the second object wins, threshold 0.3
    assert f1_optimal_threshold(scores, tp, n_gt=2, beta=2.0) == pytest.approx(0.3)
    with pytest.raises(ValueError, match="beta"):
        f1_optimal_threshold(scores, tp, n_gt=2, beta=0.0)


def test_pseudo_label_picture_is_written(tmp_path):
    import cv2

    from semiyolo.integrations.ultralytics.pictures import plot_pseudo_labels

    batch = {
        "img": torch.rand(3, 3, 64, 64),
        "num_labeled": 1,
        "batch_idx": torch.tensor([0.0, 1.0, 2.0]),
        "cls": torch.tensor([[0.0], [1.0], [0.0]]),
        "bboxes": torch.tensor([[0.5, 0.5, 0.2, 0.2], [0.3, 0.3, 0.2, 0.2], [0.6, 0.6, 0.3, 0.3]]),
        "regress": torch.tensor([True, False, True]),
        "ignore_idx": torch.tensor([2.0]),
        "ignore_bboxes": torch.tensor([[0.2, 0.7, 0.1, 0.1]]),
    }
    fname = tmp_path / "pseudo_labels_epoch1.jpg"
    plot_pseudo_labels(batch, {0: "circle", 1: "square"}, fname)
    picture = cv2.imread(str(fname))
    assert picture is not None and picture.shape[2] == 3 and min(picture.shape[:2]) >= 64  # two 64 px tiles
