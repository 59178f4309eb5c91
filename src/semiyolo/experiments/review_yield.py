"""What a review order finds before any training: the wrong boxes in the images it puts first.

The review page orders images by their expected number of wrong boxes (:func:`~semiyolo.review.doubt.image_worth`).
On a benchmark set the unlabeled images carry hidden labels, so the claim can be checked directly: a reviewer who
corrects an image fixes all of its proposal's errors, and an order is worth what its first ``k`` images hold.

Per image, the proposal (the boxes accepting the image as it is would write) is matched to the hidden labels as
:func:`~semiyolo.metrics.match_pairs` matches them (class-aware, greedy by score, IoU >= 0.5):

- ``spurious``: a proposed box that matches no label (a false positive, or a box of the wrong class);
- ``missed``: a label that no proposed box matches;
- ``loose``: a matched box whose IoU with its label is under :data:`LOOSE_IOU` (right object, extent off).

``wrong = spurious + missed`` is what the page's worth estimates. :func:`order_yields` sums an order's first ``k``
images; :func:`random_yields` gives the same sum's distribution over random orders (mean and a central interval), the
baseline a review order must beat; the ``best`` order (images by their actual errors) is the ceiling of any order.

A **calibrated** worth (measured beside the page's, not shipped) reads scores as rates measured on labelled images the
model was not fitted on (the validation split): per score bin, the share of kept boxes that match a label
(:data:`KEPT_EDGES`) and the share of possibly missed candidates (dropped, overlapping no kept box) that match a label
the kept boxes left (:data:`CANDIDATE_EDGES`), each ``(hits + 1) / (n + 2)``; an image's calibrated worth is the sum of
its kept boxes' ``1 - rate`` and its candidates' ``rate``: the expected number of spurious and missed boxes.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torchvision.ops import box_convert

from ..metrics import match_pairs

KEPT_EDGES = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)  # score bins of kept boxes (the default chain keeps >= 0.5)
CANDIDATE_EDGES = (0.0, 0.2, 0.3, 0.4, 0.5)  # score bins of dropped candidates (below the kept boxes' floor)
LOOSE_IOU = 0.75  # a matched box under this IoU is counted loose: mAP50-95 averages IoU thresholds 0.5 to 0.95
ERROR_KINDS = ("wrong", "spurious", "missed", "loose")


@dataclass(frozen=True)
class ImageErrors:
    """The errors of one image's proposal against its hidden labels (see the module docstring)."""

    spurious: int
    missed: int
    loose: int

    @property
    def wrong(self) -> int:
        return self.spurious + self.missed

    def count(self, kind: str) -> int:
        return getattr(self, kind)


def image_errors(boxes: Tensor, scores: Tensor, classes: Tensor, labels: Tensor) -> ImageErrors:
    """The errors of a proposal against an image's labels.

    Args:
        boxes: ``Tensor[N, 4]`` proposed boxes, ``cx, cy, w, h`` normalised to the image (YOLO rows).
        scores: ``Tensor[N]`` their scores (the matching order); ``classes``: ``Tensor[N]`` their class ids.
        labels: ``Tensor[M, 5]`` hidden label rows ``class, cx, cy, w, h`` (normalised; IoU does not change when the
            axes are scaled apart, so normalised boxes give the pixels' IoU).
    """
    gt_boxes, gt_classes = box_convert(labels[:, 1:5], "cxcywh", "xyxy"), labels[:, 0]
    matched, iou = match_pairs(box_convert(boxes, "cxcywh", "xyxy"), scores, classes, gt_boxes, gt_classes)
    hit = matched >= 0
    return ImageErrors(
        spurious=int((~hit).sum()),
        missed=int(labels.shape[0] - hit.sum()),
        loose=int((hit & (iou < LOOSE_IOU)).sum()),
    )


def order_yields(errors: Mapping[str, ImageErrors], order: Sequence[str], ks: Sequence[int], kind: str) -> list[int]:
    """The ``kind`` errors (:data:`ERROR_KINDS`) in the first ``k`` images of ``order``, for each ``k``."""
    counts = [errors[name].count(kind) for name in order]
    return [sum(counts[:k]) for k in ks]


def best_order(errors: Mapping[str, ImageErrors], kind: str) -> list[str]:
    """The images by their actual ``kind`` errors, most first (ties by name): no order can find more in ``k``."""
    return sorted(errors, key=lambda name: (-errors[name].count(kind), name))


@dataclass(frozen=True)
class RandomYield:
    """A random order's yield at one ``k`` over ``draws`` shuffles: mean, and the central ``coverage`` interval."""

    mean: float
    low: float
    high: float


def random_yields(
    errors: Mapping[str, ImageErrors],
    ks: Sequence[int],
    kind: str,
    draws: int = 2000,
    seed: int = 0,
    coverage: float = 0.9,
) -> list[RandomYield]:
    """:func:`order_yields` of ``draws`` random orders (shuffled with ``seed``), summarised per ``k``."""
    if draws < 1:
        raise ValueError(f"draws must be at least 1, got {draws}")
    names, rng = sorted(errors), random.Random(seed)
    samples = torch.zeros((draws, len(ks)))
    for draw in range(draws):
        rng.shuffle(names)
        samples[draw] = torch.tensor(order_yields(errors, names, ks, kind), dtype=torch.float32)
    tail = (1 - coverage) / 2
    low, high = torch.quantile(samples, torch.tensor([tail, 1 - tail]), dim=0)
    return [RandomYield(float(m), float(lo), float(hi)) for m, lo, hi in zip(samples.mean(0), low, high, strict=True)]


def rank_correlation(first: Sequence[float], second: Sequence[float]) -> float:
    """Spearman's rank correlation of two equally long sequences (ties take their mean rank); NaN when either is
    constant."""
    if len(first) != len(second) or len(first) < 2:
        raise ValueError(f"expected two sequences of one length >= 2, got {len(first)} and {len(second)}")
    a, b = _ranks(first), _ranks(second)
    a, b = a - a.mean(), b - b.mean()
    scale = (a.square().sum() * b.square().sum()).sqrt()
    return float((a * b).sum() / scale) if scale > 0 else float("nan")


def _ranks(values: Sequence[float]) -> Tensor:
    """Ranks from 0, ties sharing their mean rank."""
    x = torch.tensor(values, dtype=torch.float64)
    order = x.argsort()
    ranks = torch.empty_like(x)
    ranks[order] = torch.arange(len(x), dtype=torch.float64)
    for value in x.unique():
        tied = x == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def proposal_hits(
    kept: Tensor, candidates: Tensor, labels: Tensor, iou_threshold: float = 0.5
) -> tuple[Tensor, Tensor]:
    """Which kept boxes match a label, and which candidates match a label no kept box matched.

    ``kept, candidates``: ``Tensor[N, 6]`` rows ``cx, cy, w, h, score, class`` (normalised); ``labels``:
    ``Tensor[M, 5]`` as :func:`image_errors`. Returns ``(Tensor[N] bool, Tensor[C] bool)``; matching as
    :func:`~semiyolo.metrics.match_pairs` (class-aware, greedy by score).
    """
    gt_boxes, gt_classes = box_convert(labels[:, 1:5], "cxcywh", "xyxy"), labels[:, 0]
    matched, _ = match_pairs(box_convert(kept[:, :4], "cxcywh", "xyxy"), kept[:, 4], kept[:, 5], gt_boxes, gt_classes)
    free = torch.ones(labels.shape[0], dtype=torch.bool)
    free[matched[matched >= 0]] = False
    found, _ = match_pairs(
        box_convert(candidates[:, :4], "cxcywh", "xyxy"),
        candidates[:, 4],
        candidates[:, 5],
        gt_boxes[free],
        gt_classes[free],
    )
    return matched >= 0, found >= 0


def binned_rates(scores: Tensor, hits: Tensor, edges: Sequence[float]) -> Tensor:
    """``Tensor[B]``: per score bin of ``edges`` (``B = len(edges) - 1``; scores outside fall in the end bins), the
    share of ``hits``, ``(hits + 1) / (n + 2)`` (0.5 for an empty bin)."""
    bins = score_bins(scores, edges)
    n = torch.bincount(bins, minlength=len(edges) - 1).float()
    hit = torch.bincount(bins, weights=hits.float(), minlength=len(edges) - 1)
    return (hit + 1) / (n + 2)


def score_bins(scores: Tensor, edges: Sequence[float]) -> Tensor:
    """``Tensor[N]`` long: the bin of each score, ``edges[i] <= score < edges[i + 1]``, clamped to the end bins."""
    inner = torch.tensor(edges[1:-1], dtype=scores.dtype)
    return torch.bucketize(scores.contiguous(), inner, right=True)


def calibrated_worth(
    kept_scores: Tensor, candidate_scores: Tensor, kept_rates: Tensor, candidate_rates: Tensor
) -> float:
    """The expected number of spurious and missed boxes on an image: ``sum(1 - kept rate) + sum(candidate rate)``,
    the rates of :func:`binned_rates` looked up by each score's bin (:data:`KEPT_EDGES`, :data:`CANDIDATE_EDGES`)."""
    wrong_kept = 1 - kept_rates[score_bins(kept_scores, KEPT_EDGES)]
    real_missed = candidate_rates[score_bins(candidate_scores, CANDIDATE_EDGES)]
    return float(wrong_kept.sum() + real_missed.sum())
