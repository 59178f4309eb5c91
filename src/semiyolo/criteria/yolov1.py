"""YOLOv1 sum-squared-error loss (Redmon et al., "You Only Look Once", CVPR 2016)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..losses import box_iou_paired
from ._targets import check_targets, cxcywh_to_xyxy


class YoloV1Loss(nn.Module):
    """YOLOv1 loss on an ``S x S`` grid with ``B`` boxes per cell and ``C`` classes.

    Layout of ``preds``: ``Tensor[N, S, S, B * 5 + C]``; per cell ``B`` boxes ``(x, y, w, h, conf)`` then ``C``
    class probabilities. ``x, y`` are the centre's offset in the cell, ``w, h`` the size relative to the
    image, all in [0, 1] (the head applies its own sigmoid). Targets: :func:`check_targets` layout.

    Terms (summed over the batch, divided by ``N``): ``coord`` = lambda_coord * squared error of
    ``(x, y, sqrt w, sqrt h)`` of the responsible box (the cell's box with the highest IoU with the object);
    ``obj`` = squared error of its confidence against that IoU; ``noobj`` = lambda_noobj * squared
    confidence of every other box; ``cls`` = squared error of the class probabilities of cells with an
    object. One object per cell: when two share a cell, the last one in ``targets`` is kept.
    """

    def __init__(
        self,
        grid_size: int = 7,
        boxes_per_cell: int = 2,
        num_classes: int = 20,
        lambda_coord: float = 5.0,
        lambda_noobj: float = 0.5,
    ) -> None:
        super().__init__()
        self.S, self.B, self.C = grid_size, boxes_per_cell, num_classes
        self.lambda_coord, self.lambda_noobj = lambda_coord, lambda_noobj

    def forward(self, preds: Tensor, targets: Tensor) -> dict[str, Tensor]:
        expected = (self.S, self.S, self.B * 5 + self.C)
        if preds.ndim != 4 or tuple(preds.shape[1:]) != expected:
            raise ValueError(f"preds must have shape (N, {', '.join(map(str, expected))}), got {tuple(preds.shape)}")
        check_targets(targets)
        n = preds.shape[0]
        boxes = preds[..., : self.B * 5].reshape(n, self.S, self.S, self.B, 5)
        cell_obj, cell_gt = self._cell_targets(n, targets.to(preds.dtype), preds.device)
        responsible, iou = self._responsible(boxes.detach(), cell_obj, cell_gt)

        resp_boxes = boxes[responsible]  # (P, 5)
        gt = cell_gt[cell_obj]  # (P, 6): (class, x, y, w, h, -), same order as resp_boxes
        xy_err = (resp_boxes[:, :2] - gt[:, 1:3]).square().sum()
        wh_err = (resp_boxes[:, 2:4].clamp(min=0).sqrt() - gt[:, 3:5].sqrt()).square().sum()
        class_target = torch.zeros(gt.shape[0], self.C, dtype=preds.dtype, device=preds.device)
        class_target[torch.arange(gt.shape[0]), gt[:, 0].long()] = 1.0
        return {
            "coord": self.lambda_coord * (xy_err + wh_err) / n,
            "obj": (resp_boxes[:, 4] - iou).square().sum() / n,
            "noobj": self.lambda_noobj * boxes[..., 4][~responsible].square().sum() / n,
            "cls": (preds[..., self.B * 5 :][cell_obj] - class_target).square().sum() / n,
        }

    @torch.no_grad()
    def _cell_targets(self, n: int, targets: Tensor, device) -> tuple[Tensor, Tensor]:
        """``cell_obj: Tensor[N, S, S]`` bool and ``cell_gt: Tensor[N, S, S, 6]`` (class, x, y, w, h, -)."""
        cell_gt = torch.zeros(n, self.S, self.S, 6, device=device, dtype=targets.dtype)
        cell_obj = torch.zeros(n, self.S, self.S, dtype=torch.bool, device=device)
        img = targets[:, 0].long()
        gx = (targets[:, 2] * self.S).long().clamp(0, self.S - 1)
        gy = (targets[:, 3] * self.S).long().clamp(0, self.S - 1)
        offsets = torch.stack((targets[:, 2] * self.S - gx, targets[:, 3] * self.S - gy), dim=1)
        rows = torch.cat((targets[:, 1:2], offsets, targets[:, 4:6], torch.zeros_like(offsets[:, :1])), dim=1)
        cell_gt[img, gy, gx] = rows
        cell_obj[img, gy, gx] = True
        return cell_obj, cell_gt

    @torch.no_grad()
    def _responsible(self, boxes: Tensor, cell_obj: Tensor, cell_gt: Tensor) -> tuple[Tensor, Tensor]:
        """Mask ``Tensor[N, S, S, B]`` of responsible boxes and their IoU with the object (``Tensor[P]``)."""
        # compare in image units: centre = offset / S, sizes already relative to the image
        pred = boxes[cell_obj][..., :4].clone()  # (P, B, 4)
        pred[..., :2] /= self.S
        gt = cell_gt[cell_obj][:, 1:5].clone()  # (P, 4)
        gt[:, :2] /= self.S
        gt = gt[:, None].expand_as(pred)
        ious = box_iou_paired(cxcywh_to_xyxy(pred.clamp(min=0)), cxcywh_to_xyxy(gt))  # (P, B)
        best = ious.argmax(dim=1)
        responsible = torch.zeros_like(boxes[..., 0], dtype=torch.bool)
        responsible[cell_obj] = nn.functional.one_hot(best, self.B).bool()
        return responsible, ious.gather(1, best[:, None]).squeeze(1)
