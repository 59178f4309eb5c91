"""The GFL total loss (Li et al., NeurIPS 2020) on an anchor-point head with DFL box distributions::

L = 1/N_pos sum_all QFL + 1/N_pos sum_pos (lambda_0 L_GIoU + lambda_1 L_DFL)     (lambda_0 = 2, lambda_1 = 0.25)
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..losses import box_iou_paired, distribution_focal_loss, integral_decode, quality_focal_loss
from ._targets import check_targets, match_per_image, targets_xyxy


@torch.no_grad()
def assign_points_inside(points: Tensor, gt_boxes: Tensor) -> Tensor:
    """Each anchor point goes to the smallest ground truth that contains it; ``-1`` if none does.

    A simple stand-in for GFL's ATSS assigner. ``points: Tensor[A, 2]``, ``gt_boxes: Tensor[M, 4]`` xyxy.
    Returns ``Tensor[A]`` (int64).
    """
    if gt_boxes.numel() == 0:
        return torch.full((points.shape[0],), -1, dtype=torch.long, device=points.device)
    x, y = points[:, None, 0], points[:, None, 1]
    inside = (x > gt_boxes[:, 0]) & (x < gt_boxes[:, 2]) & (y > gt_boxes[:, 1]) & (y < gt_boxes[:, 3])
    area = ((gt_boxes[:, 2] - gt_boxes[:, 0]) * (gt_boxes[:, 3] - gt_boxes[:, 1])).expand_as(inside)
    area = torch.where(inside, area, torch.inf)
    best_area, best = area.min(dim=1)
    return torch.where(torch.isfinite(best_area), best, -1)


class GFLLoss(nn.Module):
    """Layouts: ``cls_logits: Tensor[N, A, C]``; ``bin_logits: Tensor[N, A, 4, n_bins]``, the distributions
    of the distances ``(left, top, right, bottom)`` from each anchor point in stride units; ``points:
    Tensor[A, 2]`` pixels; ``strides: Tensor[A]``; ``targets: Tensor[n, 6]`` ``(image, class, cx, cy, w, h)``
    normalised; ``image_size = (height, width)``.

    Terms: ``qfl`` against the joint target (the IoU of the positive's decoded box with its object, in its
    class column); ``giou`` = lambda_0 (1 - GIoU) and ``dfl`` = lambda_1 * DFL averaged over the 4 sides, on
    positives; each divided by ``max(1, N_pos)``. Distances beyond ``n_bins - 1`` are clamped for the DFL.
    """

    def __init__(
        self,
        num_classes: int,
        lambda_giou: float = 2.0,
        lambda_dfl: float = 0.25,
        beta: float = 2.0,
        assigner=assign_points_inside,
    ) -> None:
        super().__init__()
        self.num_classes, self.lambda_giou, self.lambda_dfl, self.beta = num_classes, lambda_giou, lambda_dfl, beta
        self.assigner = assigner

    def forward(
        self,
        cls_logits: Tensor,
        bin_logits: Tensor,
        points: Tensor,
        strides: Tensor,
        targets: Tensor,
        image_size: tuple[int, int],
    ) -> dict[str, Tensor]:
        n, a, _ = cls_logits.shape
        if bin_logits.ndim != 4 or bin_logits.shape[:3] != (n, a, 4) or points.shape != (a, 2):
            raise ValueError(
                "expected cls_logits (N, A, C), bin_logits (N, A, 4, n_bins) and points (A, 2), got "
                f"{tuple(cls_logits.shape)}, {tuple(bin_logits.shape)} and {tuple(points.shape)}"
            )
        check_targets(targets)
        gt_boxes = targets_xyxy(targets, image_size)
        matches = match_per_image(targets, n, lambda rows: self.assigner(points, gt_boxes[rows]))
        positive = matches >= 0
        num_pos = positive.sum().clamp(min=1)
        img, anchor = positive.nonzero().unbind(1)
        gt = gt_boxes[matches[positive]]

        stride = strides[anchor, None]
        distances = integral_decode(bin_logits[img, anchor]) * stride  # (P, 4) pixels
        p = points[anchor]
        pred_boxes = torch.cat((p - distances[:, :2], p + distances[:, 2:]), dim=1)
        quality = torch.zeros_like(cls_logits)
        iou = box_iou_paired(pred_boxes.detach(), gt).clamp(min=0)
        quality[img, anchor, targets[matches[positive], 1].long()] = iou.to(quality.dtype)

        n_bins = bin_logits.shape[-1]
        target_dist = (torch.cat((p - gt[:, :2], gt[:, 2:] - p), dim=1) / stride).clamp(0, n_bins - 1)
        dfl = distribution_focal_loss(bin_logits[img, anchor], target_dist).mean(dim=1)
        return {
            "qfl": quality_focal_loss(cls_logits, quality, self.beta, reduction="sum") / num_pos,
            "giou": self.lambda_giou * (1 - box_iou_paired(pred_boxes, gt, "giou")).sum() / num_pos,
            "dfl": self.lambda_dfl * dfl.sum() / num_pos,
        }
