"""Detection metrics that Ultralytics does not report (torch and torchvision only)."""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision.ops import box_iou


def background_flags(pred_boxes: Tensor, gt_boxes: Tensor, iou_threshold: float = 0.5) -> Tensor:
    """Which detections overlap no ground-truth box (of any class) by ``iou_threshold`` or more.

    A detection on an object of another class is a classification error, not a background false positive,
    so matching is class-agnostic. ``pred_boxes: Tensor[N, 4]``, ``gt_boxes: Tensor[M, 4]``, both xyxy.
    Returns ``Tensor[N]`` bool.
    """
    if pred_boxes.shape[0] == 0 or gt_boxes.shape[0] == 0:
        return torch.ones(pred_boxes.shape[0], dtype=torch.bool, device=pred_boxes.device)
    return box_iou(pred_boxes.float(), gt_boxes.float()).amax(dim=1) < iou_threshold


def count_background_false_positives(pred_boxes: Tensor, gt_boxes: Tensor, iou_threshold: float = 0.5) -> int:
    """The number of :func:`background_flags` set."""
    return int(background_flags(pred_boxes, gt_boxes, iou_threshold).sum())


def match_detections(
    boxes: Tensor, scores: Tensor, classes: Tensor, gt_boxes: Tensor, gt_classes: Tensor, iou_threshold: float = 0.5
) -> Tensor:
    """True-positive flags of detections against ground truth, class-aware and greedy by score: each object
    matches at most one detection, the best-scoring one that overlaps it by ``iou_threshold`` or more.

    Shapes: ``boxes: Tensor[N, 4]`` xyxy, ``scores, classes: Tensor[N]``, ``gt_boxes: Tensor[M, 4]``,
    ``gt_classes: Tensor[M]``. Returns ``Tensor[N]`` bool.
    """
    return match_pairs(boxes, scores, classes, gt_boxes, gt_classes, iou_threshold)[0] >= 0


def match_pairs(
    boxes: Tensor, scores: Tensor, classes: Tensor, gt_boxes: Tensor, gt_classes: Tensor, iou_threshold: float = 0.5
) -> tuple[Tensor, Tensor]:
    """The pairs of :func:`match_detections`: ``(object: Tensor[N] long, iou: Tensor[N])``, the index of the object
    each detection matched (-1: none) and their IoU (0: none). Shapes as :func:`match_detections`."""
    matched = torch.full((boxes.shape[0],), -1, dtype=torch.long, device=boxes.device)
    matched_iou = torch.zeros(boxes.shape[0], device=boxes.device)
    if boxes.shape[0] == 0 or gt_boxes.shape[0] == 0:
        return matched, matched_iou
    iou = box_iou(boxes.float(), gt_boxes.float())
    iou = torch.where(classes[:, None] == gt_classes[None, :].to(classes), iou, -1.0)
    taken = torch.zeros(gt_boxes.shape[0], dtype=torch.bool, device=boxes.device)
    for i in scores.argsort(descending=True).tolist():
        candidates = torch.where(taken, -1.0, iou[i])
        best = int(candidates.argmax())
        if candidates[best] >= iou_threshold:
            taken[best] = True
            matched[i], matched_iou[i] = best, candidates[best]
    return matched, matched_iou
