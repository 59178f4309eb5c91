"""How much a person's look at an image is worth: the expected number of wrong boxes on it.

The rule (``docs/review.md``), per box ``i`` of an image:

- a box with a teacher score ``s`` is wrong with probability about ``1 - m``, where ``m = s - c`` is its margin
  over the best competing class ``c``: the second-best class score when the source gives it (``second``), or the
  score of the strongest box of *another* class that overlaps it with IoU >= 0.5 (class-aware NMS leaves such
  pairs; they are the teacher hesitating between two classes), else 0 (so ``m = s``, the plain score);
- when the box has a normalised DFL entropy ``e`` (in [0, 1], 1 = uniform sides), its doubt is
  ``max(1 - m, e)``: a confident class on a box the head cannot place is still worth a look;
- a box without a score (a label file written by a person, or pseudo-labels whose scores are not known) is
  doubtful only when another box overlaps it with IoU >= 0.5: 0.5 (one of the two is likely wrong), else 0;
- where a run gives both a teacher and a student, a teacher box the student does not confirm (no student box of
  its class at IoU >= 0.5) has a doubt of at least 0.5, and each student box the teacher lacks adds 0.5.

An image's worth is the sum of its boxes' doubts and of the disagreements (so many boxes near the threshold add
up), and the review list shows the largest worth first; an image without boxes is worth 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torchvision.ops import box_convert, box_iou

OVERLAP_IOU = 0.5  # boxes overlapping this much compete (another class) or duplicate each other (no scores)
UNSCORED_OVERLAP_DOUBT = 0.5
DISAGREEMENT_DOUBT = 0.5  # teacher and student disagree on a box: one of the two is wrong


@dataclass(frozen=True)
class ScoredBox:
    """One box of an image, YOLO-normalised (``cx, cy, w, h`` in [0, 1] of the image), with what the source
    knows of it: ``score`` (the class score), ``second`` (the second-best class score), ``entropy`` (normalised
    DFL entropy, [0, 1]), ``spread`` (the NMS cluster spread, shown only), and for a candidate the filters dropped,
    ``dropped_by`` (the filter's name; such boxes are shown, never counted or written)."""

    cls: int
    cx: float
    cy: float
    w: float
    h: float
    score: float | None = None
    second: float | None = None
    entropy: float | None = None
    spread: float | None = None
    dropped_by: str | None = None
    student_agrees: bool | None = None  # a run's student has a box of this class here (None: no student to ask)


def pairwise_iou(boxes: np.ndarray) -> np.ndarray:
    """IoU of every pair of ``boxes: [n, 4]`` (cx, cy, w, h), ``[n, n]``, the diagonal set to 0
    (``torchvision.ops.box_iou``). IoU does not change when the axes are scaled apart, so normalised boxes give
    the pixels' IoU."""
    xyxy = box_convert(torch.as_tensor(boxes, dtype=torch.float64), "cxcywh", "xyxy")
    return box_iou(xyxy, xyxy).fill_diagonal_(0.0).numpy()


def box_doubts(boxes: Sequence[ScoredBox]) -> list[float]:
    """Each box's doubt in [0, 1], by the module's rule."""
    if not boxes:
        return []
    iou = pairwise_iou(np.array([[b.cx, b.cy, b.w, b.h] for b in boxes], np.float64))
    overlaps = iou >= OVERLAP_IOU
    doubts = []
    for i, box in enumerate(boxes):
        if box.score is None:
            doubts.append(UNSCORED_OVERLAP_DOUBT if overlaps[i].any() else 0.0)
            continue
        rivals = [b.score or 0.0 for j, b in enumerate(boxes) if overlaps[i, j] and b.cls != box.cls]
        competing = max([box.second or 0.0, *rivals])
        doubt = 1.0 - (box.score - competing)
        if box.entropy is not None:
            doubt = max(doubt, box.entropy)
        if box.student_agrees is False:
            doubt = max(doubt, DISAGREEMENT_DOUBT)
        doubts.append(min(max(doubt, 0.0), 1.0))
    return doubts


def image_worth(boxes: Sequence[ScoredBox], student_only: int = 0) -> float:
    """The expected number of wrong boxes on an image: the sum of :func:`box_doubts`, and ``DISAGREEMENT_DOUBT``
    for each of the ``student_only`` boxes a run's student finds where its teacher has none."""
    return float(sum(box_doubts(boxes))) + DISAGREEMENT_DOUBT * student_only
