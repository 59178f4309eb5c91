"""Objects the student's strong view cuts (semi.cut_objects) and the teacher's half-life floor
(semi.teacher_min_half_life), on hand-built tensors."""

import pytest
import torch
from pydantic import ValidationError
from torch import nn

from semiyolo.config import SemiConfig
from semiyolo.integrations.ultralytics.online_teacher import teacher_decay, teacher_half_life_steps
from semiyolo.pseudo import FilterChain, ScoreFilter
from semiyolo.pseudo.augment import StrongAugment
from semiyolo.teacher import MeanTeacher, TeacherPseudoLabeler

# A strong view of a 32 px image zoomed 2x about its centre, no shift, flip or colour: it is resized to 64 px and
# pasted at (-16, -16), so a coordinate moves by v -> 2 v - 16 and the image's [8, 24] fills the view's [0, 32].
ZOOM = StrongAugment(flip=0.0, scale=(2.0, 2.0), translate=0.0, brightness=0, contrast=0, saturation=0)
# the teacher's four candidates, xyxy pixels of the weak image (class, score):
# A (0, 12, 10, 20) class 0, 0.9 -> (-16, 8, 4, 24), clipped (0, 8, 4, 24): 4 x 16 = 64 of 20 x 16 = 320 px = 20 %
#   of its area, under 30 %: cut, its visible part (0, 8, 4, 24), cxcywh / 32 (0.0625, 0.5, 0.125, 0.5)
# B (24, 0, 32, 6) class 0, 0.9 -> (32, -16, 48, -4), clipped (32, 0, 32, 0): nothing visible, dropped
# C (10, 10, 20, 20) class 0, 0.9 -> (4, 4, 24, 24): kept whole, cxcywh / 32 (0.4375, 0.4375, 0.625, 0.625)
# D (22, 12, 32, 20) class 1, 0.3 (uncertain) -> (28, 8, 48, 24), clipped (28, 8, 32, 24): 4 x 16 of 20 x 16 = 20 %,
#   cut, visible (28, 8, 32, 24), cxcywh / 32 (0.9375, 0.5, 0.125, 0.5)
CANDIDATES = torch.tensor([[0.0, 12, 10, 20], [24.0, 0, 32, 6], [10.0, 10, 20, 20], [22.0, 12, 32, 20]])
VISIBLE_A, VISIBLE_D = [0.0625, 0.5, 0.125, 0.5], [0.9375, 0.5, 0.125, 0.5]
KEPT_C = [0.4375, 0.4375, 0.625, 0.625]


class _FourCandidates(nn.Module):
    """Ultralytics' inference output, 4 anchors and 2 classes, one per candidate of :data:`CANDIDATES` (cxcywh
    pixels), A, B and C class 0 at 0.9, D class 1 at 0.3; other scores 0.05."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(()))

    def forward(self, images):
        decoded = torch.full((images.shape[0], 6, 4), 0.05)
        xy, wh = (CANDIDATES[:, :2] + CANDIDATES[:, 2:]) / 2, CANDIDATES[:, 2:] - CANDIDATES[:, :2]
        decoded[:, :4] = torch.cat((xy, wh), 1).T
        decoded[:, 4, :3], decoded[:, 5, 3] = 0.9, 0.3
        return decoded, {}


def _extend(**settings) -> dict:
    """One labeled 32 px image, then the :data:`ZOOM` view of one unlabeled image the teacher labeled (score
    threshold 0.5: A, B and C reliable, D uncertain)."""
    labeler = TeacherPseudoLabeler(FilterChain([ScoreFilter(0.5)]), min_score=0.1)
    teacher = MeanTeacher(_FourCandidates(), labeler, ZOOM, **settings)
    labeled = {
        "img": torch.zeros(1, 3, 32, 32),
        "batch_idx": torch.tensor([0.0]),
        "cls": torch.tensor([[0.0]]),
        "bboxes": torch.tensor([[0.5, 0.5, 0.5, 0.5]]),
    }
    batch, _ = teacher.extend(labeled, torch.rand(1, 3, 32, 32))
    return batch


def test_the_strong_view_keeps_aside_the_visible_part_of_the_boxes_it_cuts():
    view = ZOOM.view(torch.rand(2, 3, 32, 32), [CANDIDATES, torch.zeros(0, 4)])
    assert view.images.shape == (2, 3, 32, 32)
    assert view.kept[0].tolist() == [2] and view.boxes[0].tolist() == [[4.0, 4.0, 24.0, 24.0]]
    # A and D cut to 20 % of their area, B (nothing visible) in neither list
    assert view.cut[0].tolist() == [0, 3]
    assert view.cut_boxes[0].tolist() == [[0.0, 8.0, 4.0, 24.0], [28.0, 8.0, 32.0, 24.0]]
    assert view.kept[1].tolist() == view.cut[1].tolist() == [] and view.cut_boxes[1].shape == (0, 4)


def test_the_strong_views_call_is_its_view_without_the_cut_boxes():
    images, boxes = torch.rand(2, 3, 32, 32), [CANDIDATES, CANDIDATES[:2]]
    called = StrongAugment()(images, boxes, torch.Generator().manual_seed(3))
    view = StrongAugment().view(images, boxes, torch.Generator().manual_seed(3))
    assert torch.equal(called[0], view.images)
    assert all(torch.equal(a, b) for a, b in zip(called[1] + called[2], view.boxes + view.kept, strict=True))


@pytest.mark.parametrize("targets", ["hard", "tiered"])
def test_a_cut_object_is_dropped_by_default_and_an_ignore_region_with_ignore(targets):
    dropped = _extend(pseudo_targets=targets)
    # the targets: the labeled box, then C alone (A and D cut, B out of view)
    assert dropped["batch_idx"].tolist() == [0.0, 1.0] and dropped["cls"][:, 0].tolist() == [0.0, 0.0]
    assert torch.allclose(dropped["bboxes"][1], torch.tensor(KEPT_C))
    if targets == "hard":
        assert "ignore_bboxes" not in dropped  # today's batch: A's visible part is background
    else:
        assert dropped["ignore_bboxes"].shape == (0, 4)  # no uncertain box is left in view
    ignored = _extend(pseudo_targets=targets, cut_objects="ignore")
    for key in ("batch_idx", "cls", "bboxes"):
        assert torch.equal(ignored[key], dropped[key])  # the same targets
    # A's visible part; D's too with tiered targets (an uncertain box: an ignore region had it been kept), not with
    # hard ones (a filtered-out box is background there); B has nothing visible, in neither
    expected = [VISIBLE_A] if targets == "hard" else [VISIBLE_A, VISIBLE_D]
    assert ignored["ignore_idx"].tolist() == [1.0] * len(expected)
    assert torch.allclose(ignored["ignore_bboxes"], torch.tensor(expected))


def test_cut_objects_refuses_an_unknown_choice():
    labeler = TeacherPseudoLabeler(FilterChain([]))
    with pytest.raises(ValueError, match="cut_objects must be one of"):
        MeanTeacher(_FourCandidates(), labeler, cut_objects="keep")
    with pytest.raises(ValidationError, match="cut_objects"):
        SemiConfig(cut_objects="keep")
    assert SemiConfig().cut_objects == "drop"  # today's behaviour by default


def test_the_half_life_floor_in_optimizer_steps():
    share = SemiConfig(teacher_half_life=0.1)
    floored = SemiConfig(teacher_half_life=0.1, teacher_min_half_life=50)
    # 25 steps at a share of 0.1: a half-life of 2.5 steps, decay 0.5 ** (1 / 2.5) = 0.75786 (today's, no floor)
    assert teacher_half_life_steps(share, 25) == pytest.approx(2.5)
    assert teacher_decay(share, lambda: 25) == pytest.approx(0.75786, abs=1e-5)
    # with a floor of 50 steps: max(2.5, 50) = 50, decay 0.5 ** (1 / 50) = 0.98623
    assert teacher_half_life_steps(floored, 25) == 50
    assert teacher_decay(floored, lambda: 25) == pytest.approx(0.98623, abs=1e-5)
    # 1000 steps: 0.1 x 1000 = 100 is above the floor, which leaves it: 0.5 ** (1 / 100) = 0.99309
    assert teacher_decay(floored, lambda: 1000) == teacher_decay(share, lambda: 1000) == pytest.approx(0.99309, 1e-5)
    # a decay given alone is the pace as it is: no half-life, no floor
    assert teacher_decay(SemiConfig(teacher_decay=0.9, teacher_min_half_life=50), lambda: 25) == 0.9
    assert SemiConfig().teacher_min_half_life is None
    with pytest.raises(ValidationError, match="teacher_min_half_life"):
        SemiConfig(teacher_min_half_life=0.5)


def test_the_start_banner_gives_the_floored_half_life():
    from semiyolo.config import SemiConfig
    from semiyolo.integrations.ultralytics.banner import _teacher_line

    # 25 steps x 0.1 = 2.5, raised to the floor of 50
    line = _teacher_line(SemiConfig(teacher_half_life=0.1, teacher_min_half_life=50), 0.98623, 25)
    assert (
        "half-life 50 optimizer steps (semi.teacher_half_life 0.1 of 25 steps, at least semi.teacher_min_half_life 50)"
        in line
    )
    assert "half-life 2.5 optimizer steps (semi.teacher_half_life 0.1 of 25 steps)" in _teacher_line(
        SemiConfig(teacher_half_life=0.1), 0.7579, 25
    )
