"""Agreement across the teacher's views (torch only): which fused pseudo-labels every view found, and on which the
views' boxes agree (docs/spec.md §6.4, ``semi.teacher_agreement``).

The teacher labels an image and its mirror in one forward (:mod:`semiyolo.teacher.mirror`, after Humble Teacher's
flip ensemble, Tang et al., CVPR 2021). Besides the fused detections, each view's own detections say whether the
object is there whichever way the image is seen, and where its box is. Agreement between an image and its mirror
is CSD's consistency (Jeong et al., NeurIPS 2019: flip consistency for semi-supervised detection); counting the
ensemble members that found a box is Weighted Boxes Fusion's (Solovyev et al., 2021: a fused box that fewer models
found has its confidence lowered); keeping box losses for the boxes the teacher is sure of is Unbiased Teacher
v2's (Liu et al., CVPR 2022). Here a reliable pseudo-label that a view misses becomes uncertain, and a regressed
one whose views' boxes disagree is not regressed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torchvision.ops import box_iou

from ..losses.iou import box_iou_paired
from .tiers import Tiers

FOUND_IOU = 0.5  # a view found a fused detection: a detection of its class at this IoU or more
AGREE_IOU = 0.75  # the views agree on its box: the boxes they found it with overlap at this IoU or more


@dataclass(frozen=True)
class ViewAgreement:
    """Per fused detection (``Tensor[N]`` bool each): ``found_by_every_view``, and ``views_agree_on_box`` (which
    implies it)."""

    found_by_every_view: Tensor
    views_agree_on_box: Tensor


def view_agreement(
    boxes: Tensor,
    classes: Tensor,
    view_boxes: Sequence[Tensor],
    view_classes: Sequence[Tensor],
    found_iou: float = FOUND_IOU,
    agree_iou: float = AGREE_IOU,
) -> ViewAgreement:
    """Whether each fused detection is found by every view, and whether the views' boxes for it agree.

    Each view finds a fused detection with its same-class detection of the highest IoU with the fused box, if that
    IoU is ``>= found_iou`` (a view's detection may find several fused ones). The views agree on the box when it is
    found by every view and the boxes they found it with have IoU ``>= agree_iou`` with each other, every pair of
    views: the views are compared with each other rather than with the fused box, which is partly their mean and
    sits between them. With no view, every detection is found and agreed on.

    Args:
        boxes: ``Tensor[N, 4]`` xyxy, the fused detections.
        classes: ``Tensor[N]`` int.
        view_boxes: per view ``Tensor[M_v, 4]`` xyxy, in the same pixels as ``boxes``.
        view_classes: per view ``Tensor[M_v]`` int.

    Returns:
        :class:`ViewAgreement` of ``Tensor[N]`` bool masks.
    """
    matched = [_best_same_class(boxes, classes, b, c) for b, c in zip(view_boxes, view_classes, strict=True)]
    found = torch.ones(len(boxes), dtype=torch.bool, device=boxes.device)
    for iou, _ in matched:
        found &= iou >= found_iou
    agree = found.clone()
    for i, (_, first) in enumerate(matched):
        for _, second in matched[i + 1 :]:
            agree &= box_iou_paired(first, second) >= agree_iou
    return ViewAgreement(found, agree)


def tiers_by_agreement(tiers: Tiers, agreement: ViewAgreement) -> Tiers:
    """``tiers`` after the views' agreement: reliable only where every view found the detection, regressed only
    where the views also agree on its box (``regressed`` still implies ``reliable``; ``uncertain`` is
    ``~reliable``)."""
    reliable = tiers.reliable & agreement.found_by_every_view
    regressed = tiers.regressed & reliable & agreement.views_agree_on_box
    return Tiers(reliable, regressed, ~reliable)


def agreement_conflict(
    teacher_agreement: bool, teacher_flip: bool, pseudo_targets: str, more_scales: bool = False
) -> str | None:
    """Why ``teacher_agreement`` cannot be had with these settings (it compares the teacher's views, its mirror or
    its further scales, and sets tiers), or ``None``."""
    if teacher_agreement and not ((teacher_flip or more_scales) and pseudo_targets == "tiered"):
        return (
            f"teacher_agreement compares the teacher's views and sets tiers: it needs teacher_flip true (or "
            f"teacher_scales with teacher_fusion boxes) and pseudo_targets tiered (got teacher_flip {teacher_flip}, "
            f"pseudo_targets {pseudo_targets})"
        )
    return None


def _best_same_class(boxes: Tensor, classes: Tensor, view_boxes: Tensor, view_classes: Tensor) -> tuple[Tensor, Tensor]:
    """``(iou Tensor[N], box Tensor[N, 4])``: per fused box, the IoU of the view's best same-class box and that box
    (IoU 0 and a zero box where the view has none of its class)."""
    if len(view_boxes) == 0:
        return boxes.new_zeros(len(boxes)), boxes.new_zeros(len(boxes), 4)
    iou = box_iou(boxes.float(), view_boxes.float())
    best, index = torch.where(classes[:, None] == view_classes[None, :], iou, 0.0).max(1)
    return best, view_boxes[index]
