"""Paired IoU, GIoU, DIoU and CIoU of boxes in ``(x1, y1, x2, y2)`` format, and the matching losses.

- GIoU: Rezatofighi et al., CVPR 2019. ``GIoU = IoU - |C \\ (B u B_gt)| / |C|``, C the enclosing box.
- DIoU / CIoU: Zheng et al., AAAI 2020. ``DIoU = IoU - rho^2 / c^2`` (centre distance over enclosing
  diagonal); ``CIoU = DIoU - alpha v``, ``v = 4 / pi^2 (atan(w_gt / h_gt) - atan(w / h))^2``,
  ``alpha = v / ((1 - IoU) + v)``. As in torchvision and Ultralytics, ``alpha`` is a constant in the
  backward pass (computed without gradient).

``eps`` (1e-7) is added to every denominator, so zero-area and identical degenerate boxes give finite
values and gradients.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ._common import as_float32, check_choice, check_reduction, reduce

IOU_KINDS = ("iou", "giou", "diou", "ciou")


def _check_boxes(boxes1: Tensor, boxes2: Tensor) -> None:
    if boxes1.shape[-1:] != (4,) or boxes1.shape != boxes2.shape:
        raise ValueError(
            "boxes1 and boxes2 must both have shape (*, 4) in xyxy, "
            f"got {tuple(boxes1.shape)} and {tuple(boxes2.shape)}"
        )


def box_iou_paired(boxes1: Tensor, boxes2: Tensor, kind: str = "iou", eps: float = 1e-7) -> Tensor:
    """IoU-family metric of each box in ``boxes1`` with the box at the same index in ``boxes2``.

    Args:
        boxes1: ``Tensor[N, 4]`` (or ``(*, 4)``), xyxy with ``x1 <= x2, y1 <= y2``, e.g. predictions.
        boxes2: ``Tensor[N, 4]``, same shape, e.g. the ground truth (CIoU's aspect term is asymmetric only
            in name: it is symmetric in the two boxes).
        kind: ``"iou" | "giou" | "diou" | "ciou"``.
        eps: added to denominators.

    Returns:
        ``Tensor[N]``. IoU lies in [0, 1], GIoU in [-1, 1], DIoU and CIoU in [-1, 1] up to ``alpha v``.
        For all-pairs IoU use :func:`torchvision.ops.box_iou`.
    """
    check_choice("kind", kind, IOU_KINDS)
    _check_boxes(boxes1, boxes2)
    boxes1, boxes2 = as_float32(boxes1), as_float32(boxes2)
    x1, y1, x2, y2 = boxes1.unbind(-1)
    gx1, gy1, gx2, gy2 = boxes2.unbind(-1)
    w1, h1, w2, h2 = x2 - x1, y2 - y1, gx2 - gx1, gy2 - gy1

    overlap_w = torch.minimum(x2, gx2) - torch.maximum(x1, gx1)  # negative when the boxes are apart
    overlap_h = torch.minimum(y2, gy2) - torch.maximum(y1, gy1)
    inter = overlap_w.clamp(min=0) * overlap_h.clamp(min=0)
    union = w1 * h1 + w2 * h2 - inter + eps
    iou = inter / union
    if kind == "iou":
        return iou

    # max(a, b) = a + b - min(a, b) turns the enclosing box into the overlap's complement: no more min/max
    enclose_w = w1 + w2 - overlap_w
    enclose_h = h1 + h2 - overlap_h
    if kind == "giou":
        enclose_area = enclose_w * enclose_h + eps
        return iou - (enclose_area - union) / enclose_area

    diagonal2 = enclose_w.square() + enclose_h.square() + eps
    centre_dist2 = ((gx1 + gx2 - x1 - x2).square() + (gy1 + gy2 - y1 - y2).square()) * 0.25
    diou = iou - centre_dist2 / diagonal2
    if kind == "diou":
        return diou

    v = (4 / math.pi**2) * (torch.atan(w2 / (h2 + eps)) - torch.atan(w1 / (h1 + eps))).square()
    with torch.no_grad():
        alpha = v / (v - iou + (1 + eps))
    return diou - alpha * v


def iou_loss(pred: Tensor, target: Tensor, kind: str = "ciou", reduction: str = "none", eps: float = 1e-7) -> Tensor:
    """``1 - box_iou_paired(pred, target, kind)``; boxes xyxy ``Tensor[N, 4]``.

    Equals :func:`torchvision.ops.generalized_box_iou_loss`, ``distance_box_iou_loss`` and
    ``complete_box_iou_loss`` (up to where ``eps`` enters) and Ultralytics' ``1 - bbox_iou(..., CIoU=True)``.
    """
    check_reduction(reduction)
    return reduce(1.0 - box_iou_paired(pred, target, kind, eps), reduction)
