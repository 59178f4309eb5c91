"""The pseudo-label path after NMS for the whole batch at once (filters, tiers, the strong view's boxes, the batch's
assembly): the same pseudo-labels and the same extended batch as the per-image path it replaced."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from semiyolo.pseudo import (
    BatchedDetections,
    CapFilter,
    Detections,
    DSATFilter,
    FilterChain,
    build_filters,
    split_tiers,
)
from semiyolo.pseudo.augment import StrongAugment
from semiyolo.teacher import MeanTeacher, TeacherPseudoLabeler

# per teacher: each filter drops some of what reaches it; DSAT's thresholds differ by class
THRESHOLDS = {
    "scripted": {"score": 0.8, "dsat": [0.8, 0.9, 0.85], "dfl_entropy": 0.6, "nms_unc": 0.03, "cap": 6},
    "yolo": {"score": 0.503, "dsat": [0.503, 0.51, 0.505], "dfl_entropy": 0.993, "nms_unc": 0.066, "cap": 4},
}
THRESHOLDS["teacher_flip"] = {**THRESHOLDS["yolo"], "dfl_entropy": 0.9945}  # the ensemble's bins are flatter
BATCH_KEYS = ("img", "batch_idx", "cls", "bboxes", "regress", "target_weight", "ignore_idx", "ignore_bboxes")


class _Scripted(nn.Module):
    """A teacher whose head outputs are fixed: ``decoded: Tensor[B, 7, A]`` (cxcywh pixels, 3 class
    probabilities rounded to 0.05, so that many tie) and 16-bin DFL logits. Image 0 scores under every floor (no
    detection); images 1 and 2 are the same crowd of 600 candidates around a few objects (the cap keeps ties)."""

    def __init__(self, size: int = 96) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        n, images = 600, 4
        centre = torch.rand(6, 2, generator=gen) * size
        xy = centre[torch.randint(0, 6, (images, n), generator=gen)] + torch.randn(images, n, 2, generator=gen) * 3
        wh = (torch.rand(images, n, 2, generator=gen) * 0.3 + 0.15) * size
        probs = (torch.rand(images, n, 3, generator=gen) * 20).floor() / 20
        probs[0] *= 0.001
        xy[2], wh[2], probs[2] = xy[1], wh[1], probs[1]
        self.register_buffer("decoded", torch.cat([xy, wh, probs], 2).transpose(1, 2))
        self.register_buffer("bins", torch.randn(images, 4 * 16, n, generator=gen) * 2)
        self.unused = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor):
        return self.decoded[: x.shape[0]], {"boxes": self.bins[: x.shape[0]]}


class _DarkIsEmpty(nn.Module):
    """A YOLO teacher that scores nothing on dark images (mean under 0.1, mirrored or resized alike)."""

    def __init__(self, yolo: nn.Module) -> None:
        super().__init__()
        self.yolo = yolo

    def forward(self, x: torch.Tensor):
        decoded, raw = self.yolo(x)
        dark = x.mean((1, 2, 3)) < 0.1
        return torch.cat([decoded[:, :4], decoded[:, 4:] * ~dark[:, None, None]], 1), raw


def _filters(teacher: str) -> FilterChain:
    limits = THRESHOLDS[teacher]
    chain = build_filters(
        [
            {"name": "score", "params": {"threshold": limits["score"]}},
            {"name": "dsat", "params": {"num_classes": 3, "min_threshold": 0.0}},
            {"name": "dfl_entropy", "params": {"threshold": limits["dfl_entropy"]}},
            {"name": "nms_unc", "params": {"threshold": limits["nms_unc"]}},
            {"name": "cap", "params": {"max_per_image": limits["cap"]}},
        ],
        num_classes=3,
        has_dfl=True,
    )
    chain.find(DSATFilter).thresholds = torch.tensor(limits["dsat"])
    return chain


def _teacher(model: nn.Module, view: str, **options) -> MeanTeacher:
    labeler = TeacherPseudoLabeler(
        _filters(view if view in THRESHOLDS else "yolo"),
        min_score=0.01,
        max_candidates=400,
        fold=False,
        mirror=view == "teacher_flip",
        scale=1.25 if view == "teacher_scale" else 1.0,
    )
    return MeanTeacher(model, labeler, StrongAugment(), seed=3, **options)


def _weak(size: int) -> torch.Tensor:
    weak = torch.rand(5, 3, size, size, generator=torch.Generator().manual_seed(4))
    weak[0] *= 0.05  # dark: no detection from the YOLO teacher
    return weak


def _labeled(size: int) -> dict:
    return {
        "img": torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(5)),
        "batch_idx": torch.tensor([0.0, 1.0, 1.0]),
        "cls": torch.tensor([[0.0], [2.0], [1.0]]),
        "bboxes": torch.tensor([[0.5, 0.5, 0.2, 0.2], [0.3, 0.3, 0.1, 0.2], [0.6, 0.6, 0.3, 0.3]]),
    }


def _assert_same_detections(got: list[Detections], expected: list[Detections]) -> None:
    assert len(got) == len(expected)
    for i, (g, e) in enumerate(zip(got, expected, strict=True)):
        assert torch.equal(g.boxes, e.boxes) and torch.equal(g.classes, e.classes), f"image {i}"
        assert torch.equal(g.scores, e.scores), f"image {i}"


def _assert_same_batch(got: dict, expected: dict) -> None:
    assert set(got) == set(expected)
    for key in BATCH_KEYS:
        assert (key in got) == (key in expected), key
        if key in expected:
            assert got[key].dtype == expected[key].dtype, key
            torch.testing.assert_close(got[key], expected[key], atol=1e-5, rtol=1e-5, msg=key)
    assert got["num_labeled"] == expected["num_labeled"]


CHOICES = [
    {"pseudo_targets": "hard", "cut_objects": "drop"},
    {"pseudo_targets": "hard", "cut_objects": "ignore", "empty_unlabeled": "skip"},
    {"pseudo_targets": "tiered", "cut_objects": "drop", "empty_unlabeled": "skip"},
    {"pseudo_targets": "tiered", "cut_objects": "ignore"},
    {"pseudo_targets": "tiered", "uncertain_targets": "soft", "cut_objects": "drop"},
    {"pseudo_targets": "tiered", "uncertain_targets": "soft", "cut_objects": "ignore", "empty_unlabeled": "skip"},
]


@pytest.mark.parametrize("choice", CHOICES, ids=lambda c: "-".join(c.values()))
@pytest.mark.parametrize("view", ["scripted", "letterbox", "teacher_flip", "teacher_scale"])
def test_batched_extend_gives_the_per_image_batch(opinionated_yolo, view, choice):
    model, size = (_Scripted(), 96) if view == "scripted" else (_DarkIsEmpty(opinionated_yolo), 128)
    batched, per_image = _teacher(model, view, **choice), _teacher(model, view, **choice)
    weak = _weak(size)[:4] if view == "scripted" else _weak(size)

    got, got_reliable = batched.extend(_labeled(size), weak)
    expected, expected_reliable = per_image.extend(_labeled(size), weak, batched=False)

    _assert_same_batch(got, expected)
    _assert_same_detections(got_reliable, expected_reliable)
    assert len(expected_reliable[0]) == 0  # an image without a detection
    cap = THRESHOLDS[view if view in THRESHOLDS else "yolo"]["cap"]
    assert max(len(d) for d in expected_reliable) == cap  # crowded: the cap keeps its best
    assert expected["img"].shape[0] > 2 and expected["cls"].shape[0] > 3
    assert batched.filters.stats() == per_image.filters.stats()
    assert per_image.filters.stats()["0_score/dropped"] > 0 and per_image.filters.stats()["4_cap/dropped"] > 0
    assert torch.equal(batched.generator.get_state(), per_image.generator.get_state())


@pytest.mark.parametrize("tiered", [True, False])
def test_batched_tiers_are_the_per_image_tiers_and_the_cap_keeps_ties_in_order(tiered):
    teacher = _teacher(_Scripted(), "scripted", pseudo_targets="tiered" if tiered else "hard")
    images = torch.zeros(4, 3, 96, 96)
    dets, tiers = teacher.label_batched(images)
    candidates = teacher.labeler.detect(teacher.model, images)
    each = [split_tiers(teacher.filters, d, tiered) for d in candidates]
    _assert_same_detections(dets.split(), candidates)
    for name in ("reliable", "regressed", "uncertain"):
        assert torch.equal(getattr(tiers, name), torch.cat([getattr(t, name) for t in each])), name
    stats = teacher.filters.stats()
    assert all(stats[k] % 2 == 0 for k in stats)  # the batched counts, then the per-image ones: the same twice
    assert all(stats[k] > 0 for k in stats if k.endswith("/dropped"))  # every filter drops some
    crowd = candidates[1].select(each[1].reliable)
    assert len(crowd) == 6 and torch.equal(crowd.scores, candidates[2].select(each[2].reliable).scores)


def test_the_cap_keeps_each_image_s_best_ties_in_the_detections_order():
    labeler = TeacherPseudoLabeler(FilterChain([]), min_score=0.01, fold=False)
    crowd = labeler.detect(_Scripted(), torch.zeros(2, 3, 9, 9))
    crowd = crowd[1].select(torch.arange(len(crowd[1])).flip(0))  # worst first: the ties' order is not the rows'
    assert (crowd.scores[-7] == crowd.scores[-6:]).any()  # the cap cuts through tied scores
    cap = CapFilter(max_per_image=6)
    batch = BatchedDetections.from_list([crowd, Detections.empty(16), crowd.select(torch.arange(3))])
    keep = cap.counted_mask(batch)
    expected = [cap.counted_mask(crowd), torch.zeros(0, dtype=torch.bool), torch.ones(3, dtype=torch.bool)]
    assert torch.equal(keep, torch.cat(expected))
    best = crowd.scores.argsort(descending=True, stable=True)[:6]
    assert torch.equal(keep[: len(crowd)].nonzero().squeeze(1), best.sort().values)
    assert cap.kept == 6 + 0 + 3 + 6 and cap.dropped == 2 * (len(crowd) - 6)


def test_batched_detections_round_trip():
    one = Detections(torch.ones(2, 4), torch.tensor([0.9, 0.8]), torch.tensor([1, 2]), None, torch.zeros(2))
    batch = BatchedDetections.from_list([Detections.empty(), one, Detections.empty()])
    assert batch.image.tolist() == [1, 1] and batch.num_images == 3
    parts = batch.split()
    assert [len(p) for p in parts] == [0, 2, 0] and torch.equal(parts[1].scores, one.scores)
    assert [len(p) for p in BatchedDetections.empty(2, 16).split()] == [0, 0]
