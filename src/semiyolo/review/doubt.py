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

Each box also gets the error it most likely has (:func:`likely_error`: wrong class, spurious, badly located), and
each candidate the filters dropped that no kept box overlaps is a possibly missed object (:func:`missed_candidates`).
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


def competing_score(boxes: Sequence[ScoredBox], overlaps: np.ndarray, i: int) -> float:
    """The best competing class score of box ``i``: its ``second``, or the score of the strongest box of another
    class it overlaps (``overlaps: [n, n]`` bool, IoU >= :data:`OVERLAP_IOU`), else 0."""
    rivals = [b.score or 0.0 for j, b in enumerate(boxes) if overlaps[i, j] and b.cls != boxes[i].cls]
    return max([boxes[i].second or 0.0, *rivals])


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
        doubt = 1.0 - (box.score - competing_score(boxes, overlaps, i))
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


# ---- each box's likely error (docs/review.md, "Box-level doubts") -------------------------------------------------

WRONG_CLASS = "wrong_class"
SPURIOUS = "spurious"
BADLY_LOCATED = "badly_located"
MISSED = "missed"
LIKELY_ERRORS = (WRONG_CLASS, SPURIOUS, BADLY_LOCATED, MISSED)  # the page's filter lists them in this order

WRONG_CLASS_MARGIN = 0.25  # two best classes closer than this: the teacher hesitates between them
SPURIOUS_SCORE = 0.5  # below even odds the box is more likely a false positive than an object
BADLY_LOCATED_ENTROPY = 0.5  # normalised DFL entropy: sides spread over half the bins' uncertainty or more
MISSED_MAX_IOU = 0.3  # a dropped candidate overlapping a kept box this much is that box's object, not a new one


def likely_error(
    score: float | None,
    competing: float,
    entropy: float | None,
    student_agrees: bool | None,
    overlaps_other_class: bool = False,
    overlaps_same_class: bool = False,
) -> str | None:
    """The error a kept box most likely has, from its signals, or ``None`` when nothing points to one.

    Checked in this order, the first that holds naming it (the most specific signal first: a class swap is fixed
    by a key, a spurious box by a deletion, a bad location by a drag):

    - ``wrong_class``: a competing class (``competing > 0``, the second-best class score or an overlapping box of
      another class) within :data:`WRONG_CLASS_MARGIN` of ``score``; for a box without a score, any overlapping box
      of another class (``overlaps_other_class``);
    - ``spurious``: ``score`` below :data:`SPURIOUS_SCORE` (1 - score, its doubt alone, is then over 0.5), or a run's
      student with no box of its class there (``student_agrees`` False); for a box without a score, an overlapping
      box of its own class (a duplicate);
    - ``badly_located``: normalised DFL ``entropy`` of :data:`BADLY_LOCATED_ENTROPY` or more (the head cannot
      place the sides; the doubt of such a box is then at least 0.5 too).
    """
    if score is None:
        return WRONG_CLASS if overlaps_other_class else SPURIOUS if overlaps_same_class else None
    if competing > 0 and score - competing < WRONG_CLASS_MARGIN:
        return WRONG_CLASS
    if score < SPURIOUS_SCORE or student_agrees is False:
        return SPURIOUS
    if entropy is not None and entropy >= BADLY_LOCATED_ENTROPY:
        return BADLY_LOCATED
    return None


def box_errors(boxes: Sequence[ScoredBox]) -> list[str | None]:
    """Each kept box's :func:`likely_error`."""
    if not boxes:
        return []
    overlaps = pairwise_iou(np.array([[b.cx, b.cy, b.w, b.h] for b in boxes], np.float64)) >= OVERLAP_IOU
    classes = np.array([b.cls for b in boxes])
    errors = []
    for i, box in enumerate(boxes):
        other = bool((overlaps[i] & (classes != box.cls)).any())
        same = bool((overlaps[i] & (classes == box.cls)).any())
        competing = competing_score(boxes, overlaps, i)
        errors.append(likely_error(box.score, competing, box.entropy, box.student_agrees, other, same))
    return errors


def missed_candidates(kept: Sequence[ScoredBox], dropped: Sequence[ScoredBox]) -> list[bool]:
    """For each candidate the filters ``dropped``, whether it is a possibly missed object: no ``kept`` box, of any
    class, overlaps it with IoU >= :data:`MISSED_MAX_IOU` (all boxes YOLO-normalised ``cx, cy, w, h``)."""
    if not dropped:
        return []
    if not kept:
        return [True] * len(dropped)
    rows = np.array([[b.cx, b.cy, b.w, b.h] for b in (*dropped, *kept)], np.float64)
    iou = pairwise_iou(rows)[: len(dropped), len(dropped) :]
    return (iou < MISSED_MAX_IOU).all(axis=1).tolist()
