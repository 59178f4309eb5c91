"""The trust estimate (semiyolo.pseudo.trust): counts against held-out labels, and the weights they justify."""

import math

import pytest
import torch

from semiyolo.pseudo import Detections, Tiers, TrustCounts, count_trust, trust_weights
from semiyolo.pseudo.trust import shrink_to_pooled, wilson_lower


def _detections():
    # d0 class 0 on object 0 (exact), d1 class 0 on nothing, d2 class 1 uncertain over object 1 (IoU 90 / 100),
    # d3 class 1 on object 2 (IoU 80 / 100)
    boxes = torch.tensor([[0, 0, 10, 10], [60, 60, 70, 70], [21, 20, 30, 30], [40, 40, 50, 48]], dtype=torch.float)
    dets = Detections(boxes, torch.tensor([0.9, 0.8, 0.3, 0.7]), torch.tensor([0, 0, 1, 1]))
    reliable = torch.tensor([True, True, False, True])
    tiers = Tiers(reliable=reliable, regressed=reliable.clone(), uncertain=~reliable)
    gt_boxes = torch.tensor([[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]], dtype=torch.float)
    return dets, tiers, gt_boxes, torch.tensor([0, 0, 1])


def test_counts_by_hand():
    counts = count_trust(*_detections(), num_classes=3)
    # class 0: two pseudo-labels, one correct; two objects, one found, the other under an uncertain box (covered)
    # class 1: one pseudo-label, correct at IoU 0.8; one object, found; class 2: nothing at all
    assert counts.pseudo_labels.tolist() == [2, 1, 0]
    assert counts.correct.tolist() == [1, 1, 0]
    assert counts.objects.tolist() == [2, 1, 0]
    assert counts.found.tolist() == [1, 1, 0]
    assert counts.covered.tolist() == [2, 1, 0]
    torch.testing.assert_close(counts.iou_sum, torch.tensor([1.0, 0.8, 0.0], dtype=torch.float64))
    rates = counts.rates()
    torch.testing.assert_close(rates["precision"], torch.tensor([0.5, 1.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(rates["recall"], torch.tensor([0.5, 1.0, 0.0], dtype=torch.float64))


def test_uncertain_detections_cover_nothing_without_tiers():
    # hard pseudo-labels: the uncertain detection is dropped, so object 1 is taught as background
    counts = count_trust(*_detections(), num_classes=3, tiered=False)
    assert counts.covered.tolist() == [1, 1, 0]


def test_counts_add_and_pool():
    one = count_trust(*_detections(), num_classes=3)
    two = one + one
    assert two.pseudo_labels.tolist() == [4, 2, 0]
    pooled = two.pooled()
    assert pooled.objects.tolist() == [6] and pooled.covered.tolist() == [6]
    assert TrustCounts.zeros(2).objects.tolist() == [0, 0]


def test_wilson_lower_by_hand():
    # 3 of 3 at z = 1: (1 + 1/6 - sqrt(1/36)) / (1 + 1/3) = 0.75
    # 8 of 10: p 0.8, centre 0.8 + 1/20 = 0.85, spread sqrt(0.16/10 + 1/400) = sqrt(0.0185), over 1.1
    expected = [0.75, (0.85 - math.sqrt(0.0185)) / 1.1, 0.0]
    lower = wilson_lower(torch.tensor([3.0, 8.0, 0.0]), torch.tensor([3.0, 10.0, 0.0]))
    torch.testing.assert_close(lower, torch.tensor(expected, dtype=torch.float64))


def test_weights_by_hand():
    # class 0: 8 of 10 pseudo-labels correct (lower bound 0.649077), 3 of 3 objects covered (0.75), mean IoU 0.8;
    # class 1: no evidence; class 2: precision 5 of 10 and coverage 1 of 2 (lower bounds under a half); each class
    # on its own counts (prior 0)
    counts = TrustCounts(
        pseudo_labels=torch.tensor([10.0, 0.0, 10.0], dtype=torch.float64),
        correct=torch.tensor([8.0, 0.0, 5.0], dtype=torch.float64),
        objects=torch.tensor([3.0, 0.0, 2.0], dtype=torch.float64),
        found=torch.tensor([3.0, 0.0, 1.0], dtype=torch.float64),
        covered=torch.tensor([3.0, 0.0, 1.0], dtype=torch.float64),
        iou_sum=torch.tensor([6.4, 0.0, 4.0], dtype=torch.float64),
    )
    weights = trust_weights(counts, prior=0)
    p0 = (0.85 - math.sqrt(0.0185)) / 1.1
    positive0 = 2 * p0 - 1  # 0.298154
    torch.testing.assert_close(weights.positive, torch.tensor([positive0, 0.0, 0.0]))
    torch.testing.assert_close(weights.negative, torch.tensor([0.5, 0.0, 0.0]))  # 2 * 0.75 - 1
    torch.testing.assert_close(weights.box, torch.tensor([positive0 * 0.6, 0.0, 0.0]))  # (0.8 - 0.5) / 0.5
    assert weights.positive.dtype == torch.float32


@pytest.mark.parametrize("n", [1, 10, 1000])
def test_a_perfect_teacher_earns_more_weight_with_more_evidence(n):
    full = torch.tensor([float(n)], dtype=torch.float64)
    counts = TrustCounts(full, full, full, full, full, full)  # every match at IoU 1
    weights = trust_weights(counts)
    # one class: the pooled rate is its own (1), so the prior adds 10 of 10; Wilson's lower end of m of m at z = 1
    # is m / (m + 1), here m = n + 10
    expected = 2 * (n + 10) / (n + 11) - 1
    torch.testing.assert_close(weights.positive, torch.tensor([expected], dtype=torch.float32))
    torch.testing.assert_close(weights.box, weights.positive)


def test_each_class_is_shrunk_towards_the_pooled_rate():
    # class 0: 6 of 6 right, class 1: 2 of 6, class 2: never seen; pooled 8 of 12 = 2/3, so 10 pseudo-observations
    # add 20/3 successes to each class: 6 + 20/3 and 2 + 20/3 of 16, and class 2 takes 20/3 of 10
    successes, trials = shrink_to_pooled(torch.tensor([6.0, 2.0, 0.0]), torch.tensor([6.0, 6.0, 0.0]), prior=10)
    torch.testing.assert_close(successes, torch.tensor([6 + 20 / 3, 2 + 20 / 3, 20 / 3]))
    torch.testing.assert_close(trials, torch.tensor([16.0, 16.0, 10.0]))
    nothing = torch.zeros(3)
    assert shrink_to_pooled(nothing, nothing, prior=10)[1].tolist() == [0, 0, 0]  # no evidence stays none
    counts = TrustCounts(
        pseudo_labels=torch.tensor([6.0, 6.0, 0.0], dtype=torch.float64),
        correct=torch.tensor([6.0, 2.0, 0.0], dtype=torch.float64),
        objects=torch.tensor([6.0, 6.0, 0.0], dtype=torch.float64),
        found=torch.tensor([6.0, 2.0, 0.0], dtype=torch.float64),
        covered=torch.tensor([6.0, 2.0, 0.0], dtype=torch.float64),
        iou_sum=torch.tensor([6.0, 2.0, 0.0], dtype=torch.float64),
    )
    weights = trust_weights(counts)
    lower = wilson_lower(successes.double(), trials.double())
    torch.testing.assert_close(weights.positive, (2 * lower - 1).clamp(min=0).float())
    assert weights.positive[0] > weights.positive[2] > weights.positive[1] == 0  # 2 of 6 stays untrusted


def test_each_objects_best_teacher_score_of_any_class():
    from semiyolo.pseudo import object_best_scores

    # object 0 (0..10): detections at IoU 1.0 (0.3) and 0.81 (0.6, another class: still counts); object 1 (20..30):
    # one at IoU 0.25 only (too far: 0); object 2: nothing
    boxes = torch.tensor([[0, 0, 10, 10], [0, 0, 9, 9], [20, 20, 25, 25]], dtype=torch.float)
    scores = torch.tensor([0.3, 0.6, 0.9])
    gt = torch.tensor([[0, 0, 10, 10], [20, 20, 30, 30], [50, 50, 60, 60]], dtype=torch.float)
    torch.testing.assert_close(object_best_scores(boxes, scores, gt), torch.tensor([0.6, 0.0, 0.0]))
    assert object_best_scores(boxes[:0], scores[:0], gt).tolist() == [0, 0, 0]


def test_the_coverage_floor_by_hand():
    from semiyolo.pseudo import coverage_floor

    best = torch.tensor([0.9, 0.05, 0.4, 0.2])  # sorted: 0.9, 0.4, 0.2, 0.05
    # 75 %: the 3rd highest (0.2) must stay a candidate, so the floor sits just below 0.2
    floor = coverage_floor(best, 0.75, lowest=0.01, highest=0.5)
    assert floor < 0.2 and floor == pytest.approx(0.2)
    assert coverage_floor(best, 0.5, 0.01, 0.3) == 0.3  # just below 0.4, capped at the configured floor 0.3
    assert coverage_floor(best, 1.0 - 1e-9, 0.01, 0.5) == pytest.approx(0.05)  # every object: just below 0.05
    assert coverage_floor(torch.tensor([0.9, 0.0]), 0.9, 0.01, 0.5) == 0.01  # a missed object: the lowest floor
    assert coverage_floor(torch.zeros(0), 0.9, 0.01, 0.5) == 0.5  # no objects: the configured floor
