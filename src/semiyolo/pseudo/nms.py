"""Class-aware NMS that also measures each kept box's cluster spread (S4OD's NMS uncertainty)."""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision.ops import box_iou

from ..boxes import nms


def nms_with_spread(
    boxes: Tensor, scores: Tensor, classes: Tensor, iou_threshold: float = 0.7, max_det: int = 300
) -> tuple[Tensor, Tensor]:
    """Indices kept by class-aware NMS, and each kept box's cluster spread.

    The cluster of a kept box is the box and every candidate of its class that overlaps it by more than
    ``iou_threshold`` (the ones it suppressed). Its spread is the score-weighted standard deviation of the
    cluster's four coordinates, each divided by the kept box's width (x) or height (y), averaged over the four:
    0 for a lone box or a cluster that agrees, larger when the candidates disagree about the object's extent.

    Args:
        boxes: ``Tensor[K, 4]`` xyxy candidates. scores: ``Tensor[K]``. classes: ``Tensor[K]``.

    Returns:
        ``(keep: Tensor[N] int64, spread: Tensor[N])``, best score first.
    """
    keep = nms(boxes, scores, classes, iou_threshold=iou_threshold, max_det=max_det)
    if keep.numel() == 0:
        return keep, boxes.new_zeros(0)
    kept = boxes[keep].float()
    member = (box_iou(kept, boxes.float()) > iou_threshold) & (classes[keep, None] == classes[None, :])
    member[torch.arange(keep.numel()), keep] = True
    weights = member.float() * scores.float()[None, :]
    weights = weights / weights.sum(1, keepdim=True).clamp(min=1e-12)
    mean = weights @ boxes.float()
    var = (weights @ boxes.float().square() - mean.square()).clamp(min=0)
    size = (kept[:, 2:] - kept[:, :2]).clamp(min=1e-6).repeat(1, 2)  # (w, h, w, h)
    return keep, (var.sqrt() / size).mean(1)
