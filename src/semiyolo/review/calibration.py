"""The review order's scores read as rates measured on labelled images: a calibrated expected number of wrong boxes.

A teacher's score is not the chance that its box is right, and how far it is from it depends on the set
(docs/review.md, "Calibrated on labelled images"). Where a run has labelled validation images (images it was not
fitted on), the page measures per score bin:

- of the kept boxes, by :data:`KEPT_EDGES`: the share that match a label (class-aware, IoU >= 0.5, greedy by score,
  :func:`~semiyolo.metrics.match_pairs`);
- of the possible misses (candidates the filters dropped that no kept box overlaps, :func:`~.doubt.missed_candidates`),
  by :data:`CANDIDATE_EDGES`: the share that match a label no kept box matched;

each ``(hits + 2 m) / (n + 2)``, ``m`` the bin's middle score: a bin with few boxes leans on its scores, an empty one
reads its middle score. An image's calibrated worth is the expected number of its spurious and missed boxes,
``sum(1 - kept rate) + sum(possible miss rate)``, with a run's student disagreeing as in the uncalibrated rule
(:mod:`.doubt`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torchvision.ops import box_convert

from ..metrics import match_pairs
from .doubt import DISAGREEMENT_DOUBT, ScoredBox, missed_candidates

KEPT_EDGES = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)  # score bins of kept boxes (the default chain keeps >= 0.5)
CANDIDATE_EDGES = (0.0, 0.2, 0.3, 0.4, 0.5)  # score bins of possible misses (scores outside fall in the end bins)


def box_rows(boxes: Sequence[ScoredBox]) -> Tensor:
    """``Tensor[N, 6]``: ``cx, cy, w, h, score, class`` of ``boxes`` (a box without a score scores 0)."""
    rows = [[b.cx, b.cy, b.w, b.h, b.score or 0.0, b.cls] for b in boxes]
    return torch.tensor(rows, dtype=torch.float32).reshape(-1, 6)


def possible_misses(kept: Sequence[ScoredBox], dropped: Sequence[ScoredBox]) -> list[ScoredBox]:
    """The ``dropped`` candidates that no ``kept`` box overlaps (:func:`~.doubt.missed_candidates`)."""
    flags = missed_candidates(kept, dropped)
    return [box for box, flagged in zip(dropped, flags, strict=True) if flagged]


def match_rows(rows: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """``(Tensor[N] long, Tensor[N])``: the label each row matched (-1: none) and their IoU (0: none), as
    :func:`~semiyolo.metrics.match_pairs` matches (class-aware, IoU >= 0.5, greedy by score).

    ``rows``: ``Tensor[N, 6]`` of :func:`box_rows`; ``labels``: ``Tensor[M, 5]`` YOLO rows ``class, cx, cy, w, h``
    (normalised: IoU does not change when the axes are scaled apart).
    """
    boxes, gt_boxes = box_convert(rows[:, :4], "cxcywh", "xyxy"), box_convert(labels[:, 1:5], "cxcywh", "xyxy")
    return match_pairs(boxes, rows[:, 4], rows[:, 5], gt_boxes, labels[:, 0])


def proposal_hits(kept: Tensor, candidates: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """``(Tensor[N] bool, Tensor[C] bool)``: which ``kept`` rows match a label, and which ``candidates`` rows match a
    label no kept row matched (:func:`match_rows`; rows ``Tensor[N, 6]``, ``Tensor[C, 6]``, labels ``Tensor[M, 5]``)."""
    matched = match_rows(kept, labels)[0]
    free = torch.ones(labels.shape[0], dtype=torch.bool)
    free[matched[matched >= 0]] = False
    return matched >= 0, match_rows(candidates, labels[free])[0] >= 0


def score_bins(scores: Tensor, edges: Sequence[float]) -> Tensor:
    """``Tensor[N]`` long: the bin of each score, ``edges[i] <= score < edges[i + 1]``, clamped to the end bins."""
    inner = torch.tensor(edges[1:-1], dtype=scores.dtype)
    return torch.bucketize(scores.contiguous(), inner, right=True)


def binned_rates(scores: Tensor, hits: Tensor, edges: Sequence[float]) -> Tensor:
    """``Tensor[len(edges) - 1]``: per score bin, the share of ``hits`` (``scores: Tensor[N]``, ``hits: Tensor[N]``
    bool), ``(hits + 2 m) / (n + 2)`` with ``m`` the bin's middle score (an empty bin reads ``m``)."""
    bins = score_bins(scores, edges)
    n = torch.bincount(bins, minlength=len(edges) - 1).float()
    hit = torch.bincount(bins, weights=hits.float(), minlength=len(edges) - 1).float()
    middle = (torch.tensor(edges[:-1]) + torch.tensor(edges[1:])) / 2
    return (hit + 2 * middle) / (n + 2)


@dataclass(frozen=True, eq=False)
class ScoreRates:
    """The rates of the module docstring and what they rest on: ``kept`` (``Tensor[6]``, by :data:`KEPT_EDGES`),
    ``candidates`` (``Tensor[4]``, by :data:`CANDIDATE_EDGES`), and the numbers of images, kept boxes and possible
    misses measured."""

    kept: Tensor
    candidates: Tensor
    images: int
    kept_boxes: int
    candidate_boxes: int

    @classmethod
    def measure(cls, images: Iterable[tuple[Sequence[ScoredBox], Sequence[ScoredBox], Tensor]]) -> ScoreRates:
        """The rates of ``images``, each ``(kept boxes, dropped candidates, its labels Tensor[M, 5])``."""
        kept, candidates, count = [], [], 0
        for boxes, dropped, labels in images:
            rows, misses = box_rows(boxes), box_rows(possible_misses(boxes, dropped))
            kept_hits, candidate_hits = proposal_hits(rows, misses, labels)
            kept.append(torch.stack([rows[:, 4], kept_hits.float()], 1))
            candidates.append(torch.stack([misses[:, 4], candidate_hits.float()], 1))
            count += 1
        kept_all = torch.cat(kept) if kept else torch.zeros((0, 2))
        candidates_all = torch.cat(candidates) if candidates else torch.zeros((0, 2))
        return cls(
            kept=binned_rates(kept_all[:, 0], kept_all[:, 1] > 0, KEPT_EDGES),
            candidates=binned_rates(candidates_all[:, 0], candidates_all[:, 1] > 0, CANDIDATE_EDGES),
            images=count,
            kept_boxes=len(kept_all),
            candidate_boxes=len(candidates_all),
        )

    def worth(self, boxes: Sequence[ScoredBox], dropped: Sequence[ScoredBox] = (), student_only: int = 0) -> float:
        """An image's calibrated worth: each kept box's ``1 - rate`` (at least ``DISAGREEMENT_DOUBT`` where the run's
        student does not confirm it), each possible miss's rate, and ``DISAGREEMENT_DOUBT`` for each box the student
        finds where the teacher has none."""
        wrong = 1 - self.kept[score_bins(box_rows(boxes)[:, 4], KEPT_EDGES)]
        unconfirmed = torch.tensor([b.student_agrees is False for b in boxes], dtype=torch.bool)
        wrong = torch.where(unconfirmed, wrong.clamp(min=DISAGREEMENT_DOUBT), wrong)
        real = self.candidates[score_bins(box_rows(possible_misses(boxes, dropped))[:, 4], CANDIDATE_EDGES)]
        return float(wrong.sum() + real.sum()) + DISAGREEMENT_DOUBT * student_only

    def describe(self) -> str:
        """The rates and what they rest on, in one line."""
        kept = ", ".join(f"{r:.2f}" for r in self.kept.tolist())
        candidates = ", ".join(f"{r:.2f}" for r in self.candidates.tolist())
        return (
            f"calibrated on {self.images} labelled validation images: {self.kept_boxes} kept boxes match a label at "
            f"[{kept}] by score bin {list(KEPT_EDGES)}, {self.candidate_boxes} possible misses at [{candidates}] by "
            f"{list(CANDIDATE_EDGES)}"
        )
