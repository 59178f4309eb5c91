"""The teacher's NMS as one batched operation: the same detections as the per-image path it replaced."""

from __future__ import annotations

import pytest
import torch

from semiyolo.pseudo import Detections, FilterChain
from semiyolo.teacher import TeacherPseudoLabeler


def _per_image_postprocess(labeler: TeacherPseudoLabeler, probs, boxes, raw) -> list[Detections]:
    """The per-image path the batched NMS replaced (kept in the labeler for this test and benchmarks/teacher_nms.py):
    the reference."""
    return labeler.postprocess(probs, boxes, raw, batched=False)


def _assert_same(got: list[Detections], expected: list[Detections]) -> None:
    assert len(got) == len(expected)
    for i, (g, e) in enumerate(zip(got, expected, strict=True)):
        assert len(g) == len(e), f"image {i}: {len(g)} detections, expected {len(e)}"
        assert torch.equal(g.boxes, e.boxes), f"image {i}: boxes"
        assert torch.equal(g.scores, e.scores), f"image {i}: scores"
        assert torch.equal(g.classes, e.classes) and g.classes.dtype == torch.long, f"image {i}: classes"
        assert (g.bin_logits is None) == (e.bin_logits is None)
        if e.bin_logits is not None:
            assert torch.equal(g.bin_logits, e.bin_logits), f"image {i}: DFL logits"
        torch.testing.assert_close(g.cluster_spread, e.cluster_spread, atol=1e-4, rtol=1e-4)


def _crowd(n: int, n_classes: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` candidates jittered around a few objects: ``(probs Tensor[n, C], boxes Tensor[n, 4] xyxy)``, scores
    rounded to 0.05 so that many tie."""
    centres = torch.tensor([[60.0, 60.0], [90.0, 70.0], [200.0, 150.0], [210.0, 160.0]])
    which = torch.randint(0, len(centres), (n,), generator=gen)
    xy = centres[which] + torch.randn(n, 2, generator=gen) * 6
    wh = torch.tensor([40.0, 30.0]) * (1 + 0.2 * torch.randn(n, 2, generator=gen)).clamp(min=0.3)
    boxes = torch.cat([xy - wh / 2, xy + wh / 2], 1)
    probs = torch.rand(n, n_classes, generator=gen) * 0.3
    best = (torch.rand(n, generator=gen) * 20).floor() / 20  # 0, 0.05, ..., 0.95: ties
    probs[torch.arange(n), torch.randint(0, n_classes, (n,), generator=gen)] = best
    return probs, boxes


def _batch(reg_max: int = 16) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """Four images of 400 anchors: an empty one (every score under 0.1), a crowded one, a copy of it (the same
    boxes in the same pixels: it must not suppress the first), and another crowd over the same pixels."""
    gen = torch.Generator().manual_seed(0)
    crowd, crowd_boxes = _crowd(400, 3, gen)
    other, other_boxes = _crowd(400, 3, gen)
    empty = torch.rand(400, 3, generator=gen) * 0.09
    probs = torch.stack([empty, crowd, crowd.clone(), other])
    boxes = torch.stack([other_boxes, crowd_boxes, crowd_boxes.clone(), other_boxes])
    return probs, boxes, {"boxes": torch.randn(4, 4 * reg_max, 400, generator=gen)}


@pytest.mark.parametrize("max_det", [300, 7])
@pytest.mark.parametrize("min_score", [0.1, 0.0])
def test_batched_nms_gives_the_per_image_detections(max_det, min_score):
    labeler = TeacherPseudoLabeler(FilterChain([]), min_score=min_score, max_det=max_det, fold=False)
    probs, boxes, raw = _batch()
    expected = _per_image_postprocess(labeler, probs, boxes, raw)
    got = labeler.postprocess(probs, boxes, raw)
    if min_score > 0:
        assert len(expected[0]) == 0
    assert len(expected[1]) == len(expected[2]) == min(max_det, len(expected[1])) >= 7  # crowded, not suppressed
    assert len(expected[1]) > 20 or max_det == 7
    assert max(len(d) for d in expected) <= max_det
    assert (expected[1].scores[:-1] >= expected[1].scores[1:]).all()  # best first
    assert len(expected[1].scores.unique()) < len(expected[1])  # ties among the kept
    _assert_same(got, expected)


def test_batched_nms_without_dfl_and_with_few_candidates():
    labeler = TeacherPseudoLabeler(FilterChain([]), max_candidates=5, fold=False)
    probs, boxes, _ = _batch()
    _assert_same(labeler.postprocess(probs, boxes, {}), _per_image_postprocess(labeler, probs, boxes, {}))
    nothing = torch.zeros(3, 400, 3)
    assert [len(d) for d in labeler.postprocess(nothing, boxes[:3], {})] == [0, 0, 0]


@pytest.mark.parametrize("view", ["plain", "mirror", "scale"])
def test_batched_nms_through_detect_on_a_yolo_teacher(opinionated_yolo, view):
    labeler = TeacherPseudoLabeler(
        FilterChain([]), min_score=0.05, mirror=view == "mirror", scale=1.4 if view == "scale" else 1.0
    )
    images = torch.rand(3, 3, 64, 96, generator=torch.Generator().manual_seed(1))
    (decoded, raw), views = labeler.forward_views(opinionated_yolo, images)
    from semiyolo.teacher.labeler import per_anchor

    expected = _per_image_postprocess(labeler, *per_anchor(decoded), raw)
    assert sum(len(d) for d in expected) > 10
    _assert_same(labeler.detect(opinionated_yolo, images), expected)
    fused, per_view = labeler.detect_views(opinionated_yolo, images)
    _assert_same(fused, expected)
    for v, (d, r) in enumerate(views):
        _assert_same([p[v] for p in per_view], _per_image_postprocess(labeler, *per_anchor(d), r))


def _rows(detections: Detections) -> list[tuple[float, ...]]:
    columns = [detections.scores[:, None], detections.boxes, detections.classes[:, None].float()]
    return sorted(map(tuple, torch.cat(columns, 1).tolist()))


def test_batched_nms_over_a_thousand_candidates_agrees_up_to_the_order_of_ties():
    # Above 1000 candidates the per-image path's NMS (torchvision's batched_nms, one NMS per class) orders its kept
    # boxes by an unstable sort: tied scores come in any order there, in candidate order here.
    gen = torch.Generator().manual_seed(2)
    crowds = [_crowd(1200, 5, gen) for _ in range(2)]
    probs, boxes = torch.stack([c[0] for c in crowds]), torch.stack([c[1] for c in crowds])
    labeler = TeacherPseudoLabeler(FilterChain([]), min_score=0.0, max_det=10_000, fold=False)
    got, expected = labeler.postprocess(probs, boxes, {}), _per_image_postprocess(labeler, probs, boxes, {})
    for g, e in zip(got, expected, strict=True):
        assert len(e) > 50 and _rows(g) == _rows(e) and torch.equal(g.scores, e.scores)
