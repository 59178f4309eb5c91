"""Pseudo-mixup (semiyolo.teacher.mixup): which rows are blended, with what, and which targets they carry."""

import pytest
import torch

from semiyolo.batch import append_pseudo_labeled
from semiyolo.teacher import draw_partners, mix_pseudo_labeled


def _batch():
    """Two labeled 2x2 images (values 0 and 1) with one box each, then two pseudo-labeled images (values 2 and 3):
    image 2 with a regressed box and an uncertain region, image 3 with an unregressed soft target (weight 0.4)."""
    labeled = {
        "img": torch.stack([torch.full((3, 2, 2), float(v)) for v in (0, 1)]),
        "batch_idx": torch.tensor([0.0, 1.0]),
        "cls": torch.tensor([[5.0], [6.0]]),
        "bboxes": torch.tensor([[0.5, 0.5, 0.2, 0.2], [0.25, 0.25, 0.5, 0.5]]),
    }
    pseudo = torch.stack([torch.full((3, 2, 2), float(v)) for v in (2, 3)])
    boxes = [torch.tensor([[0.0, 0.0, 1.0, 1.0]]), torch.tensor([[1.0, 1.0, 2.0, 2.0]])]
    return append_pseudo_labeled(
        labeled,
        pseudo,
        boxes,
        [torch.tensor([7]), torch.tensor([8])],
        regressed=[torch.tensor([True]), torch.tensor([False])],
        ignored=[torch.tensor([[0.0, 0.0, 2.0, 1.0]]), torch.zeros(0, 4)],
        weights=[torch.tensor([1.0]), torch.tensor([0.4])],
    )


def test_a_pseudo_labeled_image_blended_with_a_labeled_one_takes_its_labels():
    batch = _batch()
    before = batch["img"].clone()
    mixed = mix_pseudo_labeled(batch, torch.tensor([1, -1]))  # row 2 with labeled row 1; row 3 alone
    # row 2: 0.5 * 2 + 0.5 * 1 = 1.5 everywhere; the other rows unchanged
    assert torch.equal(mixed["img"][2], torch.full((3, 2, 2), 1.5))
    assert torch.equal(mixed["img"][[0, 1, 3]], before[[0, 1, 3]])
    # row 2 gets a copy of row 1's target (class 6, its box, regressed as every labeled one) after its own; the
    # targets stay sorted by image, as Ultralytics' preprocess reads them
    assert mixed["batch_idx"].tolist() == [0, 1, 2, 2, 3]
    assert mixed["cls"].view(-1).tolist() == [5, 6, 7, 6, 8]
    assert torch.equal(mixed["bboxes"][3], batch["bboxes"][1]) and torch.equal(mixed["bboxes"][4], batch["bboxes"][3])
    assert mixed["regress"].tolist() == [True, True, True, True, False]
    assert mixed["target_weight"].tolist() == [1.0, 1.0, 1.0, 1.0, pytest.approx(0.4)]
    # the labeled row had no uncertain region to pass on; row 2 keeps its own
    assert torch.equal(mixed["ignore_idx"], batch["ignore_idx"]) and mixed["num_labeled"] == 2
    assert mixed["img"] is batch["img"] and batch["cls"].shape[0] == 4  # images blended in place, targets new


def test_two_pseudo_labeled_images_blended_with_each_other_swap_targets_and_ignore_regions():
    batch = _batch()
    mixed = mix_pseudo_labeled(batch, torch.tensor([3, 2]), ratio=0.75)
    # blended from the images before blending: row 2 = 0.75 * 2 + 0.25 * 3 = 2.25; row 3 = 0.75 * 3 + 0.25 * 2 = 2.75
    assert torch.allclose(mixed["img"][2:, 0, 0, 0], torch.tensor([2.25, 2.75]))
    # row 2's box (class 7, regressed) goes to row 3 and row 3's (class 8, not regressed) to row 2, each after the
    # row's own
    assert mixed["batch_idx"].tolist() == [0, 1, 2, 2, 3, 3]
    assert mixed["cls"].view(-1).tolist() == [5, 6, 7, 8, 8, 7]
    assert mixed["regress"].tolist() == [True, True, True, False, False, True]
    assert mixed["target_weight"].tolist() == [1.0, 1.0, 1.0, pytest.approx(0.4), pytest.approx(0.4), 1.0]
    # row 2's uncertain region is now row 3's too: cx 0.5, cy 0.25, w 1, h 0.5 of the 2x2 frame
    assert mixed["ignore_idx"].tolist() == [2, 3]
    assert torch.allclose(mixed["ignore_bboxes"], torch.tensor([[0.5, 0.25, 1.0, 0.5]] * 2))


def test_no_partner_leaves_the_batch_as_it_is():
    batch = _batch()
    assert mix_pseudo_labeled(batch, torch.tensor([-1, -1])) is batch
    with pytest.raises(ValueError, match=r"one partner per pseudo-labeled image \(2\)"):
        mix_pseudo_labeled(batch, torch.tensor([1]))


def test_partners_are_other_pseudo_labeled_images_or_labeled_ones():
    generator = torch.Generator().manual_seed(0)
    for _ in range(20):
        pseudo = draw_partners(3, 5, 1.0, "pseudo", generator)
        # every image of rows 3..7 blended with another of them: a permutation of those rows without fixed points
        assert sorted(pseudo.tolist()) == [3, 4, 5, 6, 7] and all(p != 3 + i for i, p in enumerate(pseudo.tolist()))
        labeled = draw_partners(3, 5, 1.0, "labeled", generator)
        assert labeled.min() >= 0 and labeled.max() <= 2
    assert draw_partners(3, 5, 0.0, "pseudo", generator).tolist() == [-1] * 5
    assert draw_partners(3, 1, 1.0, "pseudo", generator).tolist() == [-1]  # no other pseudo-labeled image
    assert draw_partners(0, 2, 1.0, "labeled", generator).tolist() == [-1, -1]
    share = (draw_partners(0, 10000, 0.3, "pseudo", generator) >= 0).float().mean()
    assert abs(share - 0.3) < 0.02  # binomial: sd = sqrt(0.3 * 0.7 / 10000) = 0.0046
    with pytest.raises(ValueError, match="partners must be one of"):
        draw_partners(1, 1, 0.5, "both")


def test_the_same_generator_state_draws_the_same_partners():
    a, b = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
    assert torch.equal(draw_partners(2, 8, 0.5, "pseudo", a), draw_partners(2, 8, 0.5, "pseudo", b))


def test_the_augmentation_control_blends_labeled_images_with_each_other():
    from semiyolo.teacher import mix_labeled

    batch = {
        "img": torch.stack([torch.full((3, 2, 2), float(v)) for v in (0, 2, 4)]),
        "batch_idx": torch.tensor([0.0, 1.0, 2.0]),
        "cls": torch.tensor([[5.0], [6.0], [7.0]]),
        "bboxes": torch.tensor([[0.5, 0.5, 0.2, 0.2], [0.25, 0.25, 0.5, 0.5], [0.7, 0.7, 0.1, 0.1]]),
    }
    partners = draw_partners(0, 3, 1.0, "pseudo", torch.Generator().manual_seed(0))  # the draws mix_labeled makes
    mixed = mix_labeled(batch, 1.0, torch.Generator().manual_seed(0))
    assert "num_labeled" not in mixed
    for row in range(3):  # every image blended half and half with its partner: (v_row + v_partner) / 2
        partner = int(partners[row])
        assert partner != row
        assert torch.equal(mixed["img"][row], torch.full((3, 2, 2), (2.0 * row + 2.0 * partner) / 2))
        # each image carries its own label, then its partner's
        own = mixed["cls"][mixed["batch_idx"] == row].flatten().tolist()
        assert own == [5.0 + row, 5.0 + partner]
    untouched = {k: v.clone() for k, v in batch.items()}
    assert torch.equal(mix_labeled(untouched, 0.0)["img"], untouched["img"])  # probability 0: nothing blended
