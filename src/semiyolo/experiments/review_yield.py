"""What a review order finds before any training: the wrong boxes in the images it puts first.

The review page orders images by their expected number of wrong boxes (:func:`~semiyolo.review.doubt.image_worth`,
or :meth:`~semiyolo.review.calibration.ScoreRates.worth` where a run has labelled validation images).
On a benchmark set the unlabeled images carry hidden labels, so the claim can be checked directly: a reviewer who
corrects an image fixes all of its proposal's errors, and an order is worth what its first ``k`` images hold.

Per image, the proposal (the boxes accepting the image as it is would write) is matched to the hidden labels as
:func:`~semiyolo.review.calibration.match_rows` matches them (class-aware, greedy by score, IoU >= 0.5):

- ``spurious``: a proposed box that matches no label (a false positive, or a box of the wrong class);
- ``missed``: a label that no proposed box matches;
- ``loose``: a matched box whose IoU with its label is under :data:`LOOSE_IOU` (right object, extent off).

``wrong = spurious + missed`` is what the page's worth estimates. :func:`order_yields` sums an order's first ``k``
images; :func:`random_yields` gives the same sum's distribution over random orders (mean and a central interval), the
baseline a review order must beat; the ``best`` order (images by their actual errors) is the ceiling of any order.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from ..review.calibration import match_rows

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


def image_errors(rows: Tensor, labels: Tensor) -> ImageErrors:
    """The errors of a proposal against an image's labels: ``rows`` ``Tensor[N, 6]`` (``cx, cy, w, h, score, class``,
    normalised; :func:`~semiyolo.review.calibration.box_rows`), ``labels`` ``Tensor[M, 5]`` YOLO rows, matched by
    :func:`~semiyolo.review.calibration.match_rows`."""
    matched, iou = match_rows(rows, labels)
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
