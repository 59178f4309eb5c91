"""The teacher's flip ensemble: outputs on an image averaged with those on its mirror, mapped back anchor by anchor."""

from __future__ import annotations

import pytest
import torch

from semiyolo.pseudo import FilterChain
from semiyolo.teacher import TeacherPseudoLabeler
from semiyolo.teacher.mirror import mirror_average, mirrored_anchor_order


def test_mirrored_anchor_order_reverses_each_levels_rows():
    # level 0: 2 x 3 grid, anchors 0..5 row by row; level 1: 1 x 2 grid, anchors 6, 7
    # mirrored rows: [2, 1, 0], [5, 4, 3]; then [7, 6]
    assert mirrored_anchor_order([(2, 3), (1, 2)]).tolist() == [2, 1, 0, 5, 4, 3, 7, 6]
    order = mirrored_anchor_order([(4, 5), (2, 3)])
    assert torch.equal(order[order], torch.arange(26))  # an involution


def _outputs(decoded: torch.Tensor, boxes: torch.Tensor, feats: list[tuple[int, int]]) -> tuple[torch.Tensor, dict]:
    raw = {"boxes": boxes, "scores": torch.logit(decoded[:, 4:]), "feats": [torch.zeros(2, 1, h, w) for h, w in feats]}
    return decoded, raw


def test_mirror_average_by_hand():
    # levels (1, 2) and (1, 1): anchors a0, a1 on level 0, a2 on level 1; mirrored order [1, 0, 2]; width 4 px
    image = torch.tensor([[1.0, 3.0, 2.0], [2, 2, 2], [1, 1, 1], [1, 1, 1], [0.2, 0.4, 0.6]])  # cx, cy, w, h, p
    mirror = torch.tensor([[0.5, 2.5, 1.0], [2, 2, 2], [1, 2, 3], [1, 1, 1], [0.8, 0.1, 0.2]])
    # the mirror mapped back: cx = 4 - [2.5, 0.5, 1.0] = [1.5, 3.5, 3.0], w [2, 1, 3], p [0.1, 0.8, 0.2]
    # means: cx [1.25, 3.25, 2.5], w [1.5, 1, 2], p [0.15, 0.6, 0.4]
    ltrb_image = torch.zeros(4, 3)
    ltrb_mirror = torch.tensor([[0.0, 1, 0], [0, 2, 0], [0, 3, 0], [0, 4, 0]])  # a1: l 1, t 2, r 3, b 4
    # a1 of the mirror is a0 of the image, left and right swapped: l 3, t 2, r 1, b 4, halved by the mean
    decoded, raw = mirror_average(
        *_outputs(torch.stack([image, mirror]), torch.stack([ltrb_image, ltrb_mirror]), [(1, 2), (1, 1)]), width=4
    )
    assert decoded.shape == (1, 5, 3)
    assert torch.allclose(decoded[0, 0], torch.tensor([1.25, 3.25, 2.5]))
    assert torch.allclose(decoded[0, 2], torch.tensor([1.5, 1.0, 2.0]))
    assert torch.allclose(decoded[0, 4], torch.tensor([0.15, 0.6, 0.4]))
    assert torch.allclose(raw["boxes"][0, :, 0], torch.tensor([1.5, 1.0, 0.5, 2.0]))
    assert torch.allclose(raw["boxes"][0, :, 1:], torch.zeros(4, 2))
    expected_logits = (torch.logit(torch.tensor([0.2, 0.4, 0.6])) + torch.logit(torch.tensor([0.1, 0.8, 0.2]))) / 2
    assert torch.allclose(raw["scores"][0, 0], expected_logits)
    assert [f.shape[0] for f in raw["feats"]] == [1, 1]


def test_mirror_average_refuses_an_odd_batch_and_a_wrong_grid():
    decoded, raw = _outputs(torch.full((2, 5, 3), 0.5), torch.zeros(2, 4, 3), [(1, 2), (1, 1)])
    with pytest.raises(ValueError, match="even batch"):
        mirror_average(decoded[:1], raw, 4)
    with pytest.raises(ValueError, match="2 anchors"):
        mirror_average(decoded, {**raw, "feats": raw["feats"][:1]}, 4)


@pytest.fixture(scope="module")
def yolo():
    from ultralytics.nn.tasks import DetectionModel

    torch.manual_seed(0)
    return DetectionModel("yolov8n.yaml", nc=3, verbose=False).eval()


def test_the_mirrors_dfl_logits_decode_to_its_boxes_mapped_back(yolo):
    """Agreement with Ultralytics' own decoding: the mirror's DFL logits, mapped back by ``mirror_average``,
    decode (its ``make_anchors`` and ``dist2bbox``) to the mirror's decoded boxes mapped back."""
    from ultralytics.utils.tal import dist2bbox, make_anchors

    image = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        decoded, raw = yolo(torch.cat([image, image.flip(-1)]))
    head = yolo.model[-1]
    # mirror_average of (mirror, mirror) is the mirror mapped back alone
    mirror_only = (
        decoded[1:].repeat(2, 1, 1),
        {k: (v[1:].repeat(2, 1, 1) if k != "feats" else [f[1:].repeat(2, 1, 1, 1) for f in v]) for k, v in raw.items()},
    )
    back, back_raw = mirror_average(*mirror_only, width=96)
    anchors, strides = make_anchors(back_raw["feats"], head.stride, 0.5)
    distances = head.dfl(back_raw["boxes"])
    boxes = dist2bbox(distances, anchors.T[None], xywh=True, dim=1) * strides.T
    assert torch.allclose(boxes, back[:, :4], atol=1e-4)
    # and the anchors the mirror's centres land on are the image's anchors mirrored
    mirrored = anchors[mirrored_anchor_order([tuple(f.shape[-2:]) for f in raw["feats"]])]
    assert torch.allclose(mirrored[:, 0] * strides[:, 0], 96 - anchors[:, 0] * strides[:, 0])


def test_labeler_with_mirror_equals_the_mean_of_the_two_forwards(yolo):
    image = torch.rand(2, 3, 64, 64)
    plain = TeacherPseudoLabeler(FilterChain([]), fold=False)
    flip = TeacherPseudoLabeler(FilterChain([]), fold=False, mirror=True)
    decoded, raw = flip.forward(yolo, image)
    own, _ = plain.forward(yolo, image)
    other, _ = plain.forward(yolo, image.flip(-1))
    order = mirrored_anchor_order([tuple(f.shape[-2:]) for f in raw["feats"]])
    other = other[..., order]
    other[:, 0] = 64 - other[:, 0]
    assert decoded.shape == own.shape
    assert torch.allclose(decoded, (own + other) / 2, atol=1e-4)
    # a picture equal to its own mirror: the ensemble's boxes are symmetric, cx(a) = 64 - cx(mirrored a)
    symmetric = torch.cat([image[:, :, :, :32], image[:, :, :, :32].flip(-1)], -1)
    decoded, _ = flip.forward(yolo, symmetric)
    assert torch.allclose(decoded[:, 0, order], 64 - decoded[:, 0], atol=1e-3)
    assert torch.allclose(decoded[:, 4:, order], decoded[:, 4:], atol=1e-5)


@pytest.mark.parametrize("mirror", [True, False], ids=["flip-ensemble", "teacher-alone"])
def test_the_flip_ensemble_is_mirror_equivariant(opinionated_yolo, mirror):
    """The ensemble averages the outputs on an image and on its mirror, so its outputs on the mirrored image are its
    outputs on the image mirrored (anchors in mirrored order, cx -> 64 - cx). The teacher alone is not, which the
    second case checks, so that the first would see the ensemble missing."""
    labeler = TeacherPseudoLabeler(FilterChain([]), mirror=mirror)
    image = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    (own, raw), (other, _) = labeler.forward(opinionated_yolo, image), labeler.forward(opinionated_yolo, image.flip(-1))
    back = other[..., mirrored_anchor_order([tuple(f.shape[-2:]) for f in raw["feats"]])]
    back[:, 0] = 64 - back[:, 0]
    assert torch.allclose(own, back, atol=1e-3) == mirror
