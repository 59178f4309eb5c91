"""Anchor target encoding by IoU thresholds: each anchor becomes positive (matched to one object),
negative, or ignored.

An anchor is responsible for at most one object (its highest-IoU ground truth); an object may be encoded
to several anchors. Presets: YOLOv3 (negative < 0.3, positive > 0.7), RetinaNet (negative < 0.4,
positive >= 0.5), YOLOv2 (positive > 0.3, negative otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torchvision.ops import box_iou

NEGATIVE = -1
IGNORE = -2


@dataclass(frozen=True)
class IoUMatcher:
    """Assign ground truths to anchors from an IoU matrix.

    Args:
        negative_below: IoU below this is negative.
        positive_from: IoU at (or above, see ``positive_inclusive``) this is positive; in between is ignored.
        positive_inclusive: ``True`` for ``iou >= positive_from`` (RetinaNet), ``False`` for ``>`` (YOLO).
        match_best_anchor: also keep, for every object, the anchor(s) with its highest IoU (so that no
            object goes unassigned: YOLOv3's "best anchor" rule, torchvision's low-quality matches).
    """

    negative_below: float
    positive_from: float
    positive_inclusive: bool = True
    match_best_anchor: bool = True

    def __post_init__(self) -> None:
        if not 0 <= self.negative_below <= self.positive_from <= 1:
            raise ValueError(
                "thresholds must satisfy 0 <= negative_below <= positive_from <= 1, "
                f"got negative_below={self.negative_below}, positive_from={self.positive_from}"
            )

    @torch.no_grad()
    def __call__(self, iou: Tensor) -> Tensor:
        """``iou``: ``Tensor[M, A]`` (objects x anchors). Returns ``Tensor[A]`` (int64): the matched object's
        index, :data:`NEGATIVE` (-1) or :data:`IGNORE` (-2)."""
        if iou.ndim != 2:
            raise ValueError(f"iou must have shape (M, A), got {tuple(iou.shape)}")
        if iou.shape[0] == 0:
            return torch.full((iou.shape[1],), NEGATIVE, dtype=torch.long, device=iou.device)
        best_iou, matches = iou.max(dim=0)
        positive = best_iou >= self.positive_from if self.positive_inclusive else best_iou > self.positive_from
        result = torch.where(positive, matches, torch.where(best_iou < self.negative_below, NEGATIVE, IGNORE))
        if self.match_best_anchor:
            best_for_object = iou.max(dim=1, keepdim=True).values
            anchor_is_best = ((iou == best_for_object) & (best_for_object > 0)).any(dim=0)
            result = torch.where(anchor_is_best, matches, result)
        return result

    def match_boxes(self, gt_boxes: Tensor, anchors: Tensor) -> Tensor:
        """Same, from xyxy ``gt_boxes: Tensor[M, 4]`` and ``anchors: Tensor[A, 4]``."""
        return self(box_iou(gt_boxes, anchors))


YOLOV2_MATCHER = IoUMatcher(0.3, 0.3, positive_inclusive=False)
YOLOV3_MATCHER = IoUMatcher(0.3, 0.7, positive_inclusive=False)
RETINANET_MATCHER = IoUMatcher(0.4, 0.5, positive_inclusive=True)
