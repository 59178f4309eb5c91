"""How far the teacher's pseudo-labels can be trusted, measured where labels exist, and the weights it sets for the
pseudo-labeled part of the loss (torch only; docs/spec.md §6.7).

The teacher labels held-out labeled images (images the student is not fitted on) exactly as it labels unlabeled
ones: NMS, the filter chain, the tiers. Against their labels, per class:

- **precision**: the share of reliable pseudo-labels that match an object of their class (IoU >= 0.5, greedy by
  score, as mAP50 matches);
- **recall**: the share of objects such a pseudo-label finds;
- **coverage**: the share of objects the pseudo-labeled part does *not* teach as background: found, or overlapped
  (IoU >= 0.5) by an uncertain detection of any class, whose region is ignored;
- **localisation**: the mean IoU of the matched pairs.

The weights (:func:`trust_weights`) follow from symmetric label noise. A positive target is right with probability
``p`` and wrong with ``1 - p``, so its expected signal is ``(2 p - 1)`` times a clean target's; at an object, the
pseudo-labeled part teaches "object" with probability ``c`` (coverage) and "background" with ``1 - c``, so its
negatives carry ``(2 c - 1)`` of a clean signal where it matters. Each weight is that net signal, floored at 0
(a teacher no better than chance teaches nothing), with ``p`` and ``c`` taken at the lower end of their Wilson
interval (``z`` standard errors) so that a few lucky matches on a small hold-out do not buy full weight. A hold-out
of a few images has a few objects of each class, so each class's counts start from ``PRIOR_STRENGTH``
pseudo-observations at the rate of every class together (shrinkage towards the pooled rate, an empirical-Bayes
estimate): a class seen a few times takes mostly the pooled rate, one seen often its own, one not seen the pooled
rate; with no evidence at all every weight is 0. Boxes are weighted by the positives' weight times the
localisation's margin over the match threshold, ``(IoU - 0.5) / 0.5``. With every weight at 0 the run is the
labeled-only continuation: a teacher that cannot be trusted cannot pull the student below it.

After the separate classification and regression pseudo-labels of Unbiased Teacher v2 (Liu et al., CVPR 2022) and
the estimated pseudo-label quality of Consistent Teacher (Wang et al., CVPR 2023); the cross-check on held-out
labels and the weights are ours.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import torch
from torch import Tensor
from torchvision.ops import box_iou

from ..metrics import match_pairs
from .predictions import Detections
from .tiers import Tiers

MATCH_IOU = 0.5  # a pseudo-label matches an object at this IoU or more (mAP50's rule)
WILSON_Z = 1.0  # the rates' lower bound, in standard errors
PRIOR_STRENGTH = 10.0  # pseudo-observations at the every-class rate that each class's rate starts from


@dataclass(frozen=True)
class TrustCounts:
    """Per-class counts (``Tensor[C]`` float64 each) of the teacher's pseudo-labels against held-out labels.

    Attributes:
        pseudo_labels: reliable pseudo-labels of the class.
        correct: of those, the ones matching an object of the class.
        objects: the class's objects.
        found: objects matched by a reliable pseudo-label of their class.
        covered: objects found, or overlapped by an uncertain detection of any class.
        iou_sum: summed IoU of the ``correct`` matches.
    """

    pseudo_labels: Tensor
    correct: Tensor
    objects: Tensor
    found: Tensor
    covered: Tensor
    iou_sum: Tensor

    @classmethod
    def zeros(cls, num_classes: int) -> TrustCounts:
        return cls(*(torch.zeros(num_classes, dtype=torch.float64) for _ in fields(cls)))

    def __add__(self, other: TrustCounts) -> TrustCounts:
        return TrustCounts(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def pooled(self) -> TrustCounts:
        """The counts of every class together (``Tensor[1]`` each)."""
        return TrustCounts(*(getattr(self, f.name).sum().reshape(1) for f in fields(self)))

    def rates(self) -> dict[str, Tensor]:
        """Per class ``precision``, ``recall``, ``coverage`` and ``localisation`` (``Tensor[C]``; 0 without
        evidence), as measured (no interval)."""
        return {
            "precision": _ratio(self.correct, self.pseudo_labels),
            "recall": _ratio(self.found, self.objects),
            "coverage": _ratio(self.covered, self.objects),
            "localisation": _ratio(self.iou_sum, self.correct),
        }


@dataclass(frozen=True)
class TrustWeights:
    """Weights of the pseudo-labeled part's terms per class (``Tensor[C]`` float32 each, in [0, 1]).

    Attributes:
        positive: of each pseudo-labeled anchor's classification loss, by the class of its pseudo-label.
        negative: of the classification loss of each class's channel on anchors that are not pseudo-labeled, and of
            the background penalty on an anchor whose highest score is that class.
        box: of the box and DFL losses, by the class of the pseudo-label.
    """

    positive: Tensor
    negative: Tensor
    box: Tensor

    @classmethod
    def full(cls, num_classes: int) -> TrustWeights:
        """Weights of 1: the pseudo-labeled part as without a trust estimate."""
        return cls(*(torch.ones(num_classes) for _ in fields(cls)))

    def state_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name).clone() for f in fields(self)}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> TrustWeights:
        return cls(**{f.name: state[f.name].float() for f in fields(cls)})


def count_trust(
    dets: Detections, tiers: Tiers, gt_boxes: Tensor, gt_classes: Tensor, num_classes: int, tiered: bool = True
) -> TrustCounts:
    """One image's :class:`TrustCounts`.

    Args:
        dets: the teacher's detections after NMS (``boxes: Tensor[N, 4]`` xyxy pixels, ``scores``, ``classes``).
        tiers: their tiers (:func:`~semiyolo.pseudo.split_tiers`); ``reliable`` are the pseudo-labels.
        gt_boxes: ``Tensor[M, 4]`` xyxy in the same pixel frame.
        gt_classes: ``Tensor[M]`` int.
        num_classes: ``C``.
        tiered: whether the uncertain detections are ignore regions (tiered targets); else they are dropped and
            cover nothing.
    """
    gt_classes, gt_boxes = gt_classes.long().cpu(), gt_boxes.cpu().float()
    reliable = dets.select(tiers.reliable.cpu())
    boxes, classes = reliable.boxes.cpu().float(), reliable.classes.long().cpu()
    matched, iou = match_pairs(boxes, reliable.scores.cpu(), classes, gt_boxes, gt_classes, MATCH_IOU)
    correct = matched >= 0
    found = torch.zeros(gt_boxes.shape[0], dtype=torch.bool)
    found[matched[correct]] = True
    uncertain = dets.boxes[tiers.uncertain.cpu()].cpu().float() if tiered else dets.boxes[:0].cpu().float()
    ignored = _overlapped(uncertain, gt_boxes)

    def per_class(classes_of: Tensor, weights: Tensor | None = None) -> Tensor:
        return torch.bincount(classes_of, weights=weights, minlength=num_classes).double()[:num_classes]

    return TrustCounts(
        pseudo_labels=per_class(classes),
        correct=per_class(classes[correct]),
        objects=per_class(gt_classes),
        found=per_class(gt_classes[found]),
        covered=per_class(gt_classes[found | ignored]),
        iou_sum=per_class(classes[correct], iou[correct].double()),
    )


def trust_weights(counts: TrustCounts, z: float = WILSON_Z, prior: float = PRIOR_STRENGTH) -> TrustWeights:
    """The weights the counts justify (module docstring): ``positive = max(2 p - 1, 0)``,
    ``negative = max(2 c - 1, 0)``, ``box = positive * clamp((IoU - 0.5) / 0.5, 0, 1)``, with ``p`` and ``c`` the
    lower ends of their Wilson intervals at ``z`` standard errors, each class's counts first given ``prior``
    pseudo-observations at the pooled rate (:func:`shrink_to_pooled`)."""
    precision = wilson_lower(*shrink_to_pooled(counts.correct, counts.pseudo_labels, prior), z)
    coverage = wilson_lower(*shrink_to_pooled(counts.covered, counts.objects, prior), z)
    localisation = _ratio(*shrink_to_pooled(counts.iou_sum, counts.correct, prior))
    positive = (2 * precision - 1).clamp(min=0)
    negative = (2 * coverage - 1).clamp(min=0)
    box = positive * ((localisation - MATCH_IOU) / (1 - MATCH_IOU)).clamp(0, 1)
    return TrustWeights(positive.float(), negative.float(), box.float())


def shrink_to_pooled(successes: Tensor, trials: Tensor, prior: float) -> tuple[Tensor, Tensor]:
    """``(successes + prior * rate, trials + prior)`` per class (``Tensor[C]`` each), ``rate`` the pooled
    ``sum successes / sum trials``; unchanged where nothing was tried in any class (no evidence stays none)."""
    total = trials.sum()
    if prior == 0 or total == 0:
        return successes, trials
    return successes + prior * successes.sum() / total, trials + prior


def wilson_lower(successes: Tensor, trials: Tensor, z: float = WILSON_Z) -> Tensor:
    """The lower end of the Wilson score interval of ``successes / trials`` (elementwise); 0 where ``trials`` is 0.

    ``(p + z^2 / 2n - z sqrt(p (1 - p) / n + z^2 / 4n^2)) / (1 + z^2 / n)`` (Wilson, 1927)."""
    n = trials.double().clamp(min=1)
    p = successes.double() / n
    centre = p + z * z / (2 * n)
    spread = z * torch.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    lower = ((centre - spread) / (1 + z * z / n)).clamp(0, 1)
    return torch.where(trials > 0, lower, torch.zeros_like(lower))


def _ratio(numerator: Tensor, denominator: Tensor) -> Tensor:
    return torch.where(denominator > 0, numerator / denominator.clamp(min=1e-12), torch.zeros_like(numerator))


def _overlapped(boxes: Tensor, gt_boxes: Tensor) -> Tensor:
    """``Tensor[M]`` bool: objects that one of ``boxes`` overlaps at IoU >= :data:`MATCH_IOU`."""
    if boxes.shape[0] == 0 or gt_boxes.shape[0] == 0:
        return torch.zeros(gt_boxes.shape[0], dtype=torch.bool)
    return box_iou(boxes, gt_boxes).amax(0) >= MATCH_IOU


def object_best_scores(boxes: Tensor, scores: Tensor, gt_boxes: Tensor) -> Tensor:
    """``Tensor[M]``: for each object (``gt_boxes: Tensor[M, 4]`` xyxy), the highest score of the detections
    (``boxes: Tensor[N, 4]`` xyxy in the same pixels, ``scores: Tensor[N]``) that overlap it at IoU >=
    :data:`MATCH_IOU`, of any class (an uncertain detection of another class is still an ignore region); 0 where
    none does."""
    if boxes.shape[0] == 0 or gt_boxes.shape[0] == 0:
        return torch.zeros(gt_boxes.shape[0])
    overlapping = box_iou(gt_boxes.float(), boxes.float()) >= MATCH_IOU  # (M, N)
    return torch.where(overlapping, scores.float()[None, :], 0.0).amax(1)


def coverage_floor(best_scores: Tensor, coverage: float, lowest: float, highest: float) -> float:
    """The highest candidate floor (candidates need a score above it) that leaves at least ``coverage`` of the
    objects under some detection: just below the ``ceil(coverage M)``-th highest of ``best_scores: Tensor[M]``
    (:func:`object_best_scores`), clamped to ``[lowest, highest]``; ``highest`` without objects. Teacher-sure
    negatives: below the floor an unlabeled image's anchors are background, above it a detection that is not a
    pseudo-label is an ignore region."""
    if best_scores.numel() == 0:
        return highest
    ranked = best_scores.float().sort(descending=True).values
    needed = ranked[max(math.ceil(coverage * ranked.numel()) - 1, 0)]
    floor = float(torch.nextafter(needed, torch.zeros_like(needed)))
    return min(max(floor, lowest), highest)
