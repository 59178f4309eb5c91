"""Dense pseudo-targets (torch only): the teacher's per-anchor scores and boxes, without NMS or a score threshold.

After Dense Teacher (Zhou et al., "Dense Teacher: Dense Pseudo-Labels for Semi-supervised Object Detection",
ECCV 2022, section 3.3): on each unlabeled image, the ``k`` anchors where the teacher is most confident (by their
best class score) take the teacher's class scores as soft classification targets and its boxes as regression
targets, and every other anchor is a classification negative. The background penalty acts only where the
teacher is itself confident there is nothing (best class score below ``floor``).

``k`` is, by default, the number of foreground anchors a labeled image of the same batch gets from the
task-aligned assigner (its mean over the labeled images): as many positives as a labeled image has, whatever
the image size and object density. Dense Teacher selects a fixed share of the anchors (1 % of FCOS's on COCO);
``fraction`` gives that choice. A fixed 2 % (11 of 525 anchors at 160 px) was too few on our generated sets: the
objects' other anchors became negatives and pseudo-label recall fell within five epochs (docs/BENCHMARKS.md).

The teacher and the student must see the same geometry (anchor ``a`` of the teacher's view is anchor ``a`` of
the student's): the student's view is photometric only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import torch
from torch import Tensor


@dataclass(frozen=True)
class DenseTargets:
    """The teacher's outputs on ``U`` unlabeled images over the head's ``A`` anchors (all levels, the head's order).

    Attributes:
        probs: ``Tensor[U, A, C]`` the teacher's class probabilities.
        boxes: ``Tensor[U, A, 4]`` its boxes, xyxy pixels.
        floor: in [0, 1): the penalty acts on anchors whose best class score is below it.
        fraction: in (0, 1], the share of each image's anchors that get targets; ``None``: the caller gives ``k``.
    """

    probs: Tensor
    boxes: Tensor
    floor: float
    fraction: float | None = None

    def __post_init__(self) -> None:
        if self.probs.ndim != 3 or self.boxes.shape != (*self.probs.shape[:2], 4):
            shapes = f"{tuple(self.probs.shape)} and {tuple(self.boxes.shape)}"
            raise ValueError(f"expected probs (U, A, C) and boxes (U, A, 4), got {shapes}")
        if self.fraction is not None and not 0 < self.fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1] or None, got {self.fraction!r}")
        if not 0 <= self.floor < 1:
            raise ValueError(f"floor must be in [0, 1), got {self.floor!r}")

    @cached_property
    def best(self) -> Tensor:
        """``Tensor[U, A]``: each anchor's best class score (computed once: the selection and the penalty's
        region both read it)."""
        return self.probs.max(-1).values if self.probs.shape[-1] else self.probs.new_zeros(self.probs.shape[:2])

    def anchors_per_image(self, k: int | None = None) -> int:
        """``ceil(fraction * A)`` with a ``fraction``, else ``k``; within ``[1, A]``."""
        if self.fraction is not None:
            k = math.ceil(self.fraction * self.probs.shape[1])
        if k is None:
            raise ValueError("dense targets without a fraction need k, the positives per image")
        return min(max(int(k), 1), self.probs.shape[1])

    def selected(self, k: int | None = None) -> Tensor:
        """``Tensor[U, A]`` bool: each image's top :meth:`anchors_per_image` anchors by best class score."""
        best = self.best
        chosen = torch.zeros_like(best, dtype=torch.bool)
        if best.numel():
            chosen.scatter_(1, best.topk(self.anchors_per_image(k), dim=1).indices, True)
        return chosen

    def penalized(self, selected: Tensor) -> Tensor:
        """``Tensor[U, A]`` bool: the unselected anchors the teacher is confident are background."""
        return ~selected & (self.best < self.floor)
