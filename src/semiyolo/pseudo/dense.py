"""Dense pseudo-targets (torch only): the teacher's per-anchor scores and boxes, without NMS or a score threshold.

After Dense Teacher (Zhou et al., "Dense Teacher: Dense Pseudo-Labels for Semi-supervised Object Detection",
ECCV 2022, section 3.3): on each unlabeled image, the anchors where the teacher is most confident (the top
``fraction`` of them by their best class score) take the teacher's class scores as soft classification
targets and its boxes as regression targets, and every other anchor is a classification negative, as in Dense
Teacher. The background penalty acts only where the teacher is itself confident there is nothing (best class
score below ``floor``); the unselected anchors above it are ``uncertain``: negatives, never penalised.

Left as neither positive nor negative (an earlier version), the uncertain anchors taught nothing against a
teacher that rose everywhere: from a weak teacher, two epochs on a GPU left 81 pseudo-labels and 123 background
false positives per image (docs/BENCHMARKS.md, "On a GPU").

The teacher and the student must see the same geometry (anchor ``a`` of the teacher's view is anchor ``a`` of
the student's): the student's view is photometric only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class DenseTargets:
    """Per-anchor targets of ``U`` unlabeled images over the head's ``A`` anchors (all levels, the head's order).

    Attributes:
        scores: ``Tensor[U, A, C]`` the teacher's class probabilities on selected anchors, 0 elsewhere.
        boxes: ``Tensor[U, A, 4]`` the teacher's boxes, xyxy pixels (meaningful on selected anchors).
        selected: ``Tensor[U, A]`` bool, the anchors with targets.
        uncertain: ``Tensor[U, A]`` bool, unselected anchors whose best teacher score is at least ``floor``: no
            background penalty there.
    """

    scores: Tensor
    boxes: Tensor
    selected: Tensor
    uncertain: Tensor

    @property
    def background(self) -> Tensor:
        """``Tensor[U, A]`` bool: the anchors the teacher is confident are background (the penalty's)."""
        return ~self.selected & ~self.uncertain


def dense_targets(probs: Tensor, boxes: Tensor, fraction: float, floor: float) -> DenseTargets:
    """The dense targets of the teacher's outputs on ``U`` images.

    Args:
        probs: ``Tensor[U, A, C]`` the teacher's class probabilities (sigmoid of its logits).
        boxes: ``Tensor[U, A, 4]`` its decoded boxes, xyxy pixels.
        fraction: in (0, 1]: each image's top ``ceil(fraction * A)`` anchors by best class score are selected.
        floor: in [0, 1): an unselected anchor whose best class score is at least this is uncertain.
    """
    if probs.ndim != 3 or boxes.shape != (*probs.shape[:2], 4):
        raise ValueError(
            f"expected probs (U, A, C) and boxes (U, A, 4), got {tuple(probs.shape)}, {tuple(boxes.shape)}"
        )
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
    if not 0 <= floor < 1:
        raise ValueError(f"floor must be in [0, 1), got {floor!r}")
    best = probs.max(-1).values if probs.shape[-1] else probs.new_zeros(probs.shape[:2])
    k = min(math.ceil(fraction * probs.shape[1]), probs.shape[1])
    selected = torch.zeros_like(best, dtype=torch.bool)
    if k and probs.shape[1]:
        selected.scatter_(1, best.topk(k, dim=1).indices, True)
    scores = probs * selected.unsqueeze(-1)
    return DenseTargets(scores, boxes, selected, ~selected & (best >= floor))
