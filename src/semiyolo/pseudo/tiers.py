"""Pseudo-labels in tiers (torch only): what each teacher detection teaches the student (docs/spec.md §6.4).

After Efficient Teacher's pseudo-label assigner (Xu et al., 2023, section 3.2) and the separate classification /
regression pseudo-labels of Unbiased Teacher v2 (Liu et al., CVPR 2022) and S4OD (Zhang et al., 2023):

- **reliable**: the detections the filters that judge the *label* keep (score, DSAT, cap): full classification
  targets, as hard pseudo-labels;
- **regressed**: the reliable ones that the filters judging *localisation* also keep (DFL entropy, NMS spread):
  only these get box and DFL losses; the others still teach their class;
- **uncertain**: every other detection the teacher made above ``pseudo_min_score`` (the candidates' floor): the
  anchors they cover are neither positive nor negative, and the background penalty leaves them alone. What is
  left, outside every teacher detection, is background the teacher is confident about.

With ``soft`` uncertain targets (Efficient Teacher's uncertain pseudo-labels) the uncertain detections are targets
too (:func:`soft_targets`): their classification target is scaled by the teacher's score, they are never
regressed, and the anchors of their box that the assigner leaves out stay neither positive nor negative.

Hard pseudo-labels (the filter chain as a whole deciding, no uncertain tier) remain the ``hard`` choice.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torchvision.ops import box_iou

from .filters import FilterChain
from .nms import batched_box_iou
from .predictions import BatchedDetections, Detections

PSEUDO_TARGETS = ("hard", "tiered", "dense")  # semi.pseudo_targets (dense: :mod:`.dense`)
UNCERTAIN_TARGETS = ("ignore", "soft")  # semi.uncertain_targets: what the uncertain tier teaches
SAME_OBJECT_IOU = 0.5  # an uncertain detection this close to a reliable one is another reading of that object


@dataclass(frozen=True)
class Tiers:
    """Masks over one image's detections, or a batch's rows (``Tensor[N]`` bool each); ``regressed`` implies
    ``reliable``, and ``uncertain`` is ``~reliable``."""

    reliable: Tensor
    regressed: Tensor
    uncertain: Tensor


def split_tiers(
    chain: FilterChain, dets: Detections | BatchedDetections, tiered: bool = True, count: bool = True
) -> Tiers:
    """The tiers of ``dets`` (a teacher's detections after NMS, all above the candidates' floor): of one image, or of
    a batch at once (masks over its rows; the same masks and counts as image by image).

    Tiered: the filters judging the label run first, in their configured order, each on what the previous kept;
    then those judging localisation, on the reliable detections. Not tiered (hard pseudo-labels): every filter, in
    its order, keeps or deletes, and what survives is reliable and regressed. With ``count``, every filter counts
    what it kept and dropped (not for the trust estimate's held-out images).
    """
    n, device = len(dets), dets.scores.device
    judges_label = [f for f in chain if f.judges == "label" or not tiered]
    reliable = _surviving(dets, judges_label, torch.arange(n, device=device), count)
    regressed = _surviving(dets, [f for f in chain if f not in judges_label], reliable, count)
    return Tiers(_mask(reliable, n, device), _mask(regressed, n, device), ~_mask(reliable, n, device))


def soft_targets(reliable: Tensor, boxes: Tensor) -> Tensor:
    """Which detections are targets with soft uncertain targets: every reliable one, and every uncertain one that
    overlaps no reliable box at IoU >= ``SAME_OBJECT_IOU``.

    Such an overlap is mostly the same object read as another class (class-aware NMS keeps both). As a target it
    would compete in the assigner for that object's anchors by fit alone, whatever its weight, and the anchors it
    took would teach the reliable class 0 there; it stays an ignore region instead.

    Args:
        reliable: ``Tensor[N]`` bool.
        boxes: ``Tensor[N, 4]`` xyxy.

    Returns:
        ``Tensor[N]`` bool.
    """
    uncertain = ~reliable
    if not reliable.any() or not uncertain.any():
        return torch.ones_like(reliable)
    overlap = box_iou(boxes[uncertain], boxes[reliable]).amax(1)  # (number uncertain,)
    targets = reliable.clone()
    targets[uncertain.nonzero().squeeze(1)] = overlap < SAME_OBJECT_IOU
    return targets


def batched_soft_targets(reliable: Tensor, boxes: Tensor, image: Tensor, num_images: int) -> Tensor:
    """:func:`soft_targets` of a batch's rows at once, each uncertain box compared with its own image's reliable ones.

    Args:
        reliable: ``Tensor[N]`` bool. boxes: ``Tensor[N, 4]`` xyxy. image: ``Tensor[N]`` int64, never decreasing.

    Returns:
        ``Tensor[N]`` bool, what :func:`soft_targets` gives image by image.
    """
    uncertain = ~reliable
    if not reliable.any() or not uncertain.any():
        return torch.ones_like(reliable)
    (u_image, u_rank), u_boxes = _in_rows(uncertain, image, num_images), boxes[uncertain]
    (r_image, r_rank), r_boxes = _in_rows(reliable, image, num_images), boxes[reliable]
    padded_u = boxes.new_zeros(num_images, int(u_rank.max()) + 1, 4)
    padded_r = boxes.new_zeros(num_images, int(r_rank.max()) + 1, 4)
    padded_u[u_image, u_rank], padded_r[r_image, r_rank] = u_boxes, r_boxes
    real_r = torch.zeros(padded_r.shape[:2], dtype=torch.bool, device=boxes.device)
    real_r[r_image, r_rank] = True
    iou = torch.where(real_r[:, None, :], batched_box_iou(padded_u, padded_r), 0.0)  # (B, max u, max r)
    targets = reliable.clone()
    targets[uncertain] = iou[u_image, u_rank].amax(1) < SAME_OBJECT_IOU
    return targets


def _in_rows(mask: Tensor, image: Tensor, num_images: int) -> tuple[Tensor, Tensor]:
    """``(image, rank)`` of the rows where ``mask`` holds: their image and their position among its selected rows."""
    chosen = image[mask]
    counts = torch.bincount(chosen, minlength=num_images)
    return chosen, torch.arange(chosen.numel(), device=image.device) - (counts.cumsum(0) - counts)[chosen]


def _surviving(dets: Detections | BatchedDetections, filters: list, index: Tensor, count: bool = True) -> Tensor:
    """Indices into ``dets`` of ``dets[index]`` that pass ``filters`` one after the other (counted, or not)."""
    for f in filters:
        index = index[(f.counted_mask if count else f.keep_mask)(dets.select(index))]
    return index


def _mask(index: Tensor, n: int, device: torch.device) -> Tensor:
    mask = torch.zeros(n, dtype=torch.bool, device=device)
    mask[index] = True
    return mask


def soft_uncertain(uncertain_targets: str, pseudo_targets: str) -> bool:
    """The one rule of soft targets: whether the uncertain tier is taught as targets whose classification target is
    the teacher's score (:func:`soft_targets`). Raises ``ValueError`` for an unknown ``uncertain_targets``, or
    ``soft`` without ``tiered`` pseudo-targets (only they have an uncertain tier)."""
    if uncertain_targets not in UNCERTAIN_TARGETS:
        raise ValueError(f"uncertain_targets must be one of {UNCERTAIN_TARGETS}, got {uncertain_targets!r}")
    soft = uncertain_targets == "soft"
    if soft and pseudo_targets != "tiered":
        raise ValueError(
            f"uncertain_targets: soft with pseudo_targets: {pseudo_targets}; soft uncertain targets need tiered "
            "pseudo-targets, the only ones with an uncertain tier: set pseudo_targets to tiered or uncertain_targets "
            "to ignore"
        )
    return soft
