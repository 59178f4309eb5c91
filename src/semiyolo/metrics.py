"""Detection metrics that Ultralytics does not report (torch and torchvision only)."""

from __future__ import annotations

from torch import Tensor
from torchvision.ops import box_iou


def count_background_false_positives(pred_boxes: Tensor, gt_boxes: Tensor, iou_threshold: float = 0.5) -> int:
    """Detections that overlap no ground-truth box (of any class) by ``iou_threshold`` or more.

    A detection on an object of another class is a classification error, not a background false positive,
    so matching is class-agnostic. ``pred_boxes: Tensor[N, 4]``, ``gt_boxes: Tensor[M, 4]``, both xyxy.
    """
    if pred_boxes.shape[0] == 0:
        return 0
    if gt_boxes.shape[0] == 0:
        return int(pred_boxes.shape[0])
    return int((box_iou(pred_boxes.float(), gt_boxes.float()).amax(dim=1) < iou_threshold).sum())
