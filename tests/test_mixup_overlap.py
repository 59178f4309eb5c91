"""Object-aware blending (semi.mixup_max_overlap, semiyolo.teacher.mixup): no partner whose boxes overlap an
image's own above the bound, the next candidate of the same draws instead, and today's draws without a bound."""

import pytest
import torch
from torch import nn
from torchvision.ops import box_convert, box_iou

from semiyolo.pseudo import FilterChain, ScoreFilter
from semiyolo.pseudo.augment import StrongAugment
from semiyolo.teacher import MeanTeacher, TeacherPseudoLabeler, draw_partners, mix_labeled, mix_pseudo_labeled
from semiyolo.teacher.mean_teacher import MIXUP_REFUSED
from semiyolo.teacher.mixup import draw_blend_partners, draw_candidates, first_allowed, overlapping_images

# cxcywh normalised. A is xyxy (0.1, 0.1, 0.5, 0.5) and B the same square moved 0.1 right, (0.2, 0.1, 0.6, 0.5):
# intersection 0.3 x 0.4 = 0.12, union 0.16 + 0.16 - 0.12 = 0.20, IoU 0.6. C, xyxy (0.7, 0.7, 0.9, 0.9), meets neither.
A, B, C = (0.3, 0.3, 0.4, 0.4), (0.4, 0.3, 0.4, 0.4), (0.8, 0.8, 0.2, 0.2)


def _batch(boxes_per_image, n_labeled=None):
    """Row ``r``: a 2x2 image of value ``2 r``, its boxes (class ``10 + r``); ``num_labeled`` when given."""
    image_of = [r for r, boxes in enumerate(boxes_per_image) for _ in boxes]
    batch = {
        "img": torch.stack([torch.full((3, 2, 2), 2.0 * r) for r in range(len(boxes_per_image))]),
        "batch_idx": torch.tensor(image_of, dtype=torch.float32),
        "cls": torch.tensor([[10.0 + r] for r in image_of]).view(-1, 1),
        "bboxes": torch.tensor([box for boxes in boxes_per_image for box in boxes]).view(-1, 4),
    }
    return batch if n_labeled is None else {**batch, "num_labeled": n_labeled}


def _draws_before(num_labeled, num_pseudo, probability, partners, generator):
    """draw_partners as it was before the rule, kept here to hold today's draws fixed."""
    blended = torch.rand(num_pseudo, generator=generator) < probability
    if partners == "labeled":
        rows = torch.randint(max(num_labeled, 1), (num_pseudo,), generator=generator)
        possible = num_labeled > 0
    else:
        cycle = torch.randperm(num_pseudo, generator=generator)
        rows = torch.empty(num_pseudo, dtype=torch.long)
        rows[cycle] = cycle.roll(-1) + num_labeled
        possible = num_pseudo > 1
    none = torch.full_like(rows, -1)
    return torch.where(blended, rows, none) if possible else none


def test_boxes_overlapping_at_iou_0_6_refuse_the_pair_at_0_5_and_allow_it_at_0_7():
    xyxy = box_convert(torch.tensor([A, B]), "cxcywh", "xyxy")
    assert box_iou(xyxy, xyxy)[0, 1].item() == pytest.approx(0.6)
    batch = _batch([[A], [B], [C], []])
    # at 0.5, images 0 and 1 overlap (and each itself); C overlaps only itself; image 3 has no box
    expected = torch.tensor([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]], dtype=torch.bool)
    assert torch.equal(overlapping_images(batch["batch_idx"], batch["bboxes"], 4, 0.5), expected)
    # at 0.7, each image with a box overlaps itself alone
    assert torch.equal(overlapping_images(batch["batch_idx"], batch["bboxes"], 4, 0.7), torch.diag(expected.diag()))
    # two pseudo-labeled images, always blended: each one's only candidate is the other (a cycle of two)
    pair = _batch([[A], [B]], n_labeled=0)
    refused = draw_blend_partners(pair, 1.0, "pseudo", torch.Generator().manual_seed(0), max_overlap=0.5)
    assert refused[0].tolist() == [-1, -1] and refused[1] == 2
    allowed = draw_blend_partners(pair, 1.0, "pseudo", torch.Generator().manual_seed(0), max_overlap=0.7)
    assert allowed[0].tolist() == [1, 0] and allowed[1] == 0
    with pytest.raises(ValueError, match="max_overlap must lie in"):
        overlapping_images(batch["batch_idx"], batch["bboxes"], 4, 0.0)


def test_a_refused_partner_gives_way_to_the_next_candidate():
    overlapping = overlapping_images(torch.tensor([0.0, 1.0, 2.0]), torch.tensor([A, B, C]), 3, 0.5)
    # rows 0 and 1 overlap: row 0's first candidate 1 is refused, 2 taken; row 1 takes 2, row 2 takes 0; row 0 of a
    # second draw was not blended (-1 throughout) and stays so
    candidates = torch.tensor([[1, 2], [2, 0], [0, 1]])
    assert first_allowed(candidates, overlapping, 0).tolist() == [2, 2, 0]
    assert first_allowed(torch.tensor([[-1, -1], [0, 2], [1, 0]]), overlapping, 0).tolist() == [-1, 2, 1]
    batch = _batch([[A], [B], [C]], n_labeled=0)
    for seed in range(6):
        # any cycle through three images has 0 -> 1 or 1 -> 0: that image takes 2, the next image of the cycle,
        # as the other one does already; image 2's partner is the drawn one
        drawn = draw_partners(0, 3, 1.0, "pseudo", torch.Generator().manual_seed(seed))
        partners, refused = draw_blend_partners(batch, 1.0, "pseudo", torch.Generator().manual_seed(seed), 0.5)
        assert partners.tolist() == [2, 2, int(drawn[2])] and refused == 1
    # labeled partners: labeled rows 0 (A), 1 (B), 2 (C); the pseudo-labeled row 3 (A) refuses 0 (IoU 1) and 1
    # (IoU 0.6), so whichever row is drawn, the rows after it (wrapping round) lead to 2
    labeled = _batch([[A], [B], [C], [A]], n_labeled=3)
    for seed in range(6):
        drawn = int(draw_partners(3, 1, 1.0, "labeled", torch.Generator().manual_seed(seed))[0])
        partners, refused = draw_blend_partners(labeled, 1.0, "labeled", torch.Generator().manual_seed(seed), 0.5)
        assert partners.tolist() == [2] and refused == int(drawn != 2)


def test_no_allowed_partner_leaves_the_image_unblended():
    batch = _batch([[A], [A], [B]], n_labeled=0)  # every pair overlaps (IoU 1 or 0.6)
    partners, refused = draw_blend_partners(batch, 1.0, "pseudo", torch.Generator().manual_seed(1), 0.5)
    assert partners.tolist() == [-1, -1, -1] and refused == 3
    assert mix_pseudo_labeled(batch, partners) is batch


def test_without_a_bound_the_partners_and_the_draws_are_todays():
    for seed in range(3):
        for n_labeled in range(4):
            for n_pseudo in range(6):
                for kind in ("pseudo", "labeled"):
                    for probability in (0.0, 0.5, 1.0):
                        ours, before = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
                        drawn = draw_partners(n_labeled, n_pseudo, probability, kind, ours)
                        assert torch.equal(drawn, _draws_before(n_labeled, n_pseudo, probability, kind, before))
                        assert torch.equal(torch.rand(3, generator=ours), torch.rand(3, generator=before))
    batch = _batch([[A], [B], [A], [B], [C]], n_labeled=1)
    partners, refused = draw_blend_partners(batch, 0.5, "pseudo", torch.Generator().manual_seed(7), None)
    assert torch.equal(partners, _draws_before(1, 4, 0.5, "pseudo", torch.Generator().manual_seed(7))) and not refused
    # the candidates start with the drawn partner; a pseudo-labeled image's are the rest of its cycle, each once
    candidates = draw_candidates(1, 4, 1.0, "pseudo", torch.Generator().manual_seed(7))
    assert torch.equal(candidates[:, 0], _draws_before(1, 4, 1.0, "pseudo", torch.Generator().manual_seed(7)))
    for i, row in enumerate(candidates.tolist()):
        assert sorted(row) == [r for r in range(1, 5) if r != 1 + i]


def test_the_labeled_control_applies_the_same_rule():
    # images 0 (A) and 1 (B) overlap at 0.6: at 0.5 both take image 2 (C); image 2 takes its drawn partner
    for seed in range(4):
        drawn = int(draw_partners(0, 3, 1.0, "pseudo", torch.Generator().manual_seed(seed))[2])
        mixed = mix_labeled(_batch([[A], [B], [C]]), 1.0, torch.Generator().manual_seed(seed), max_overlap=0.5)
        assert "num_labeled" not in mixed
        # values 2 r: (0 + 4) / 2 = 2, (2 + 4) / 2 = 3, (4 + 2 drawn) / 2
        assert mixed["img"][:, 0, 0, 0].tolist() == [2.0, 3.0, 2.0 + drawn]
        own = [mixed["cls"][mixed["batch_idx"] == row].flatten().tolist() for row in range(3)]
        assert own == [[10.0, 12.0], [11.0, 12.0], [12.0, 10.0 + drawn]]
    unbounded = mix_labeled(_batch([[A], [B], [C]]), 1.0, torch.Generator().manual_seed(0))
    expected = draw_partners(0, 3, 1.0, "pseudo", torch.Generator().manual_seed(0))
    assert unbounded["img"][:, 0, 0, 0].tolist() == [r + float(p) for r, p in enumerate(expected.tolist())]


def test_the_mean_teacher_applies_the_rule_and_counts_what_it_refused():
    def teacher(max_overlap):
        labeler = TeacherPseudoLabeler(FilterChain([ScoreFilter(0.5)]), min_score=0.1)
        return MeanTeacher(nn.Linear(1, 1), labeler, StrongAugment(), mixup=1.0, mixup_max_overlap=max_overlap)

    bounded = teacher(0.5)
    assert bounded.filters.stats()[MIXUP_REFUSED] == 0  # the column is there from the first epoch
    # labeled row 0 (C); pseudo-labeled rows 1 (A) and 2 (B), each the other's only candidate: both refused
    batch = _batch([[C], [A], [B]], n_labeled=1)
    before = batch["img"].clone()
    assert bounded._blend(batch) is batch and torch.equal(batch["img"], before)
    assert bounded.filters.stats()[MIXUP_REFUSED] == 2
    unbounded = teacher(None)
    mixed = unbounded._blend(_batch([[C], [A], [B]], n_labeled=1))
    assert mixed["img"][1:, 0, 0, 0].tolist() == [3.0, 3.0]  # (2 + 4) / 2 each
    assert MIXUP_REFUSED not in unbounded.filters.stats()
