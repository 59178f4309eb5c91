"""What a review order finds before training (issue 32): errors of a proposal against hidden labels on hand-built
boxes, an order's yield, the random orders' distribution and the calibrated worth, each worked
by hand."""

import pytest
import torch

from semiyolo.experiments.review_yield import (
    ImageErrors,
    best_order,
    image_errors,
    order_yields,
    random_yields,
)
from semiyolo.review.calibration import ScoreRates, binned_rates, proposal_hits, score_bins
from semiyolo.review.doubt import ScoredBox


def test_spurious_missed_and_loose_boxes_of_one_image():
    # labels (class, cx, cy, w, h): A = class 0 at [0.1, 0.1, 0.3, 0.3], B = class 1 at [0.6, 0.6, 0.8, 0.8],
    # C = class 0 at [0.5, 0.1, 0.7, 0.3]
    labels = torch.tensor([[0, 0.2, 0.2, 0.2, 0.2], [1, 0.7, 0.7, 0.2, 0.2], [0, 0.6, 0.2, 0.2, 0.2]])
    boxes = torch.tensor(
        [
            [0.2, 0.2, 0.2, 0.2],  # exactly A: a match, IoU 1
            [0.72, 0.7, 0.2, 0.2],  # B shifted 0.02 right, but class 0: no label of its class there -> spurious
            [0.62, 0.2, 0.2, 0.2],  # C shifted 0.02: overlap 0.18 x 0.2 = 0.036, union 0.044, IoU 9/11 -> tight
            [0.21, 0.2, 0.2, 0.2],  # a second box on A, lower score: A is taken -> spurious
        ]
    )
    scores, classes = torch.tensor([[0.9], [0.8], [0.7], [0.6]]), torch.zeros((4, 1))
    found = image_errors(torch.cat([boxes, scores, classes], 1), labels)
    # B is matched by no box of class 1 -> missed; nothing matched under IoU 0.75 (9/11 = 0.82) -> none loose
    assert found == ImageErrors(spurious=2, missed=1, loose=0)
    assert found.wrong == 3


def test_a_matched_box_under_the_loose_iou_is_loose_not_wrong():
    labels = torch.tensor([[0, 0.2, 0.2, 0.2, 0.2]])
    # shifted 0.05 in x: overlap 0.15 x 0.2 = 0.03, union 0.08 - 0.03 = 0.05, IoU 0.6: matched (>= 0.5), loose (< 0.75)
    found = image_errors(torch.tensor([[0.25, 0.2, 0.2, 0.2, 0.9, 0]]), labels)
    assert found == ImageErrors(spurious=0, missed=0, loose=1)


def test_an_image_without_boxes_or_labels_has_its_errors_from_the_other_side():
    labels = torch.tensor([[0, 0.5, 0.5, 0.2, 0.2], [0, 0.2, 0.2, 0.1, 0.1]])
    assert image_errors(torch.zeros((0, 6)), labels) == ImageErrors(0, 2, 0)
    one = torch.tensor([[0.5, 0.5, 0.2, 0.2, 0.9, 0]])
    assert image_errors(one, torch.zeros((0, 5))) == ImageErrors(1, 0, 0)


ERRORS = {  # wrong = spurious + missed: a 3, b 0, c 1, d 2
    "a": ImageErrors(2, 1, 0),
    "b": ImageErrors(0, 0, 4),
    "c": ImageErrors(0, 1, 0),
    "d": ImageErrors(1, 1, 1),
}


def test_an_orders_yield_sums_its_first_k_images():
    assert order_yields(ERRORS, ["b", "c", "a", "d"], [1, 2, 3, 4], "wrong") == [0, 1, 4, 6]
    assert order_yields(ERRORS, ["b", "c", "a", "d"], [1, 4], "loose") == [4, 5]
    assert best_order(ERRORS, "wrong") == ["a", "d", "c", "b"]
    assert order_yields(ERRORS, best_order(ERRORS, "wrong"), [1, 2], "wrong") == [3, 5]


def test_random_orders_average_k_times_the_mean_and_bracket_it():
    # 6 wrong boxes over 4 images: a random first k holds 1.5 k on average; all 4 always hold 6
    draws = random_yields(ERRORS, [1, 2, 4], "wrong", draws=4000, seed=1)
    assert draws[0].mean == pytest.approx(1.5, abs=0.1)
    assert draws[1].mean == pytest.approx(3.0, abs=0.1)
    assert (draws[2].mean, draws[2].low, draws[2].high) == (6.0, 6.0, 6.0)
    # one image holds 0 to 3: the central 90 % of its draws spans the lowest and the highest
    assert (draws[0].low, draws[0].high) == (0.0, 3.0)
    assert random_yields(ERRORS, [2], "wrong", draws=50, seed=3) == random_yields(ERRORS, [2], "wrong", 50, 3)
    with pytest.raises(ValueError, match="draws must be at least 1"):
        random_yields(ERRORS, [1], "wrong", draws=0)


def test_kept_boxes_and_possible_misses_are_matched_against_the_labels_left_to_each():
    # labels: A class 0 at (0.2, 0.2), B class 0 at (0.7, 0.7), both 0.2 wide
    labels = torch.tensor([[0, 0.2, 0.2, 0.2, 0.2], [0, 0.7, 0.7, 0.2, 0.2]])
    kept = torch.tensor([[0.2, 0.2, 0.2, 0.2, 0.9, 0], [0.5, 0.2, 0.2, 0.2, 0.6, 0]])  # A; a box on nothing
    # a candidate on A (already matched by a kept box: not a miss found) and one on B (a real miss)
    candidates = torch.tensor([[0.2, 0.21, 0.2, 0.2, 0.3, 0], [0.7, 0.7, 0.2, 0.2, 0.2, 0]])
    kept_hits, candidate_hits = proposal_hits(kept, candidates, labels)
    assert kept_hits.tolist() == [True, False]
    assert candidate_hits.tolist() == [False, True]
    none = torch.zeros((0, 6))
    assert [h.tolist() for h in proposal_hits(none, none, labels)] == [[], []]


def test_rates_per_score_bin_lean_on_the_bins_middle_score_when_they_hold_few_boxes():
    edges = (0.5, 0.7, 0.9, 1.0)
    scores = torch.tensor([0.55, 0.6, 0.65, 0.95, 1.0, 0.2])  # 0.2 falls in the first bin, 1.0 in the last
    hits = torch.tensor([True, False, False, True, True, False])
    assert score_bins(scores, edges).tolist() == [0, 0, 0, 2, 2, 0]
    # (hits + 2 m) / (n + 2), m the bin's middle: bin 0 (m 0.6) 1 hit of 4 -> 2.2 / 6; bin 1 (m 0.8) empty -> 0.8;
    # bin 2 (m 0.95) 2 of 2 -> 3.9 / 4
    assert binned_rates(scores, hits, edges).tolist() == pytest.approx([2.2 / 6, 0.8, 3.9 / 4])


def test_the_calibrated_worth_adds_kept_boxes_chance_of_being_wrong_and_misses_chance_of_being_real():
    rates = ScoreRates(
        kept=torch.tensor([0.2, 0.4, 0.6, 0.8, 0.9, 1.0]),  # by KEPT_EDGES' bins
        candidates=torch.tensor([0.05, 0.1, 0.3, 0.5]),  # by CANDIDATE_EDGES' bins
        images=1,
        kept_boxes=2,
        candidate_boxes=2,
    )
    kept = [ScoredBox(0, 0.2, 0.2, 0.2, 0.2, score=0.55), ScoredBox(0, 0.7, 0.7, 0.2, 0.2, score=0.97)]
    dropped = [
        ScoredBox(0, 0.2, 0.5, 0.1, 0.1, score=0.45, dropped_by="score"),  # overlaps no kept box: a possible miss
        ScoredBox(0, 0.5, 0.8, 0.1, 0.1, score=0.1, dropped_by="score"),  # the same
        ScoredBox(0, 0.7, 0.71, 0.2, 0.2, score=0.3, dropped_by="score"),  # on the second kept box: not a miss
    ]
    # kept 0.55 -> bin 0 (wrong 1 - 0.2), 0.97 -> bin 5 (wrong 0); misses 0.45 -> bin 3 (0.5), 0.1 -> bin 0 (0.05)
    assert rates.worth(kept, dropped) == pytest.approx(0.8 + 0.0 + 0.5 + 0.05)
    # the student does not confirm the sure box: its doubt rises to 0.5; a box only the student has adds 0.5
    doubted = [kept[0], ScoredBox(0, 0.7, 0.7, 0.2, 0.2, score=0.97, student_agrees=False)]
    assert rates.worth(doubted, dropped, student_only=1) == pytest.approx(0.8 + 0.5 + 0.5 + 0.05 + 0.5)
    assert rates.worth([], []) == 0.0


def test_rates_are_measured_on_labelled_images():
    # image 1: a kept box on its label (hit, score 0.9) and a possible miss on nothing (score 0.25);
    # image 2: a kept box on nothing (score 0.55) and a possible miss on its label (score 0.45); image 3: nothing
    label = torch.tensor([[0, 0.5, 0.5, 0.2, 0.2]])
    images = [
        ([ScoredBox(0, 0.5, 0.5, 0.2, 0.2, score=0.9)], [ScoredBox(0, 0.1, 0.1, 0.1, 0.1, score=0.25)], label),
        ([ScoredBox(0, 0.1, 0.1, 0.1, 0.1, score=0.55)], [ScoredBox(0, 0.5, 0.5, 0.2, 0.2, score=0.45)], label),
        ([], [], torch.zeros((0, 5))),
    ]
    rates = ScoreRates.measure(images)
    assert (rates.images, rates.kept_boxes, rates.candidate_boxes) == (3, 2, 2)
    # (hits + 2 m) / (n + 2): kept bin 0 (m 0.55) 0 of 1 -> 1.1 / 3, bin 4 (m 0.925) 1 of 1 -> 2.85 / 3, the empty
    # ones their middles; candidates bin 1 (m 0.25) 0 of 1 -> 0.5 / 3, bin 3 (m 0.45) 1 of 1 -> 1.9 / 3
    assert rates.kept.tolist() == pytest.approx([1.1 / 3, 0.65, 0.75, 0.85, 2.85 / 3, 0.975])
    assert rates.candidates.tolist() == pytest.approx([0.1, 0.5 / 3, 0.35, 1.9 / 3])
    assert "3 labelled validation images" in rates.describe()
    empty = ScoreRates.measure([])
    assert (empty.images, empty.kept_boxes) == (0, 0)
    assert empty.kept.tolist() == pytest.approx([0.55, 0.65, 0.75, 0.85, 0.925, 0.975])
