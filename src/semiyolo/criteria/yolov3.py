"""YOLOv3 (Redmon and Farhadi, 2018) and YOLOv4 (Bochkovskiy et al., 2020) losses on three scales."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import box_iou

from ..boxes import YOLOV3_CODER, YOLOV4_CODER, YoloBoxCoder
from ..losses import iou_loss
from ._targets import check_targets, cxcywh_to_xyxy, targets_xyxy

# YOLOv3's COCO anchors in pixels (416 px input), for strides 32, 16, 8
YOLOV3_ANCHORS = (
    ((116, 90), (156, 198), (373, 326)),
    ((30, 61), (62, 45), (59, 119)),
    ((10, 13), (16, 30), (33, 23)),
)


class _Grid:
    """The predictions of all scales flattened to ``(N, P, 5 + C)`` and each prediction's cell, anchor
    (grid units) and stride. Order within a scale: anchor, row, column."""

    def __init__(self, preds: list[Tensor], anchors: Tensor, strides: tuple[int, ...], num_classes: int):
        flat, cells, sizes, stride_of, self.shapes = [], [], [], [], []
        for pred, scale_anchors, stride in zip(preds, anchors, strides, strict=True):
            n, _, h, w = pred.shape
            a = scale_anchors.shape[0]
            flat.append(pred.view(n, a, 5 + num_classes, h, w).permute(0, 1, 3, 4, 2).reshape(n, a * h * w, -1))
            ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
            cell = torch.stack((xs, ys), dim=-1).view(1, h * w, 2).expand(a, -1, -1).reshape(-1, 2)
            cells.append(cell.to(pred))
            sizes.append((scale_anchors / stride).to(pred).repeat_interleave(h * w, dim=0))
            stride_of.append(torch.full((a * h * w,), float(stride), device=pred.device))
            self.shapes.append((a, h, w))
        self.pred = torch.cat(flat, dim=1)
        self.cells, self.anchors, self.strides = torch.cat(cells), torch.cat(sizes), torch.cat(stride_of)
        self.offsets = torch.tensor([0] + [a * h * w for a, h, w in self.shapes]).cumsum(0)[:-1].tolist()


class YoloV3Loss(nn.Module):
    """YOLOv3 loss: MSE on box parameters, BCE objectness with an ignore mask, sigmoid (not softmax) classes.

    Layouts:
        preds: a list with one ``Tensor[N, A * (5 + C), H_s, W_s]`` per stride in ``strides``; channels per
            anchor ``(t_x, t_y, t_w, t_h, objectness, class logits...)``.
        targets: ``Tensor[n, 6]`` rows ``(image_index, class, cx, cy, w, h)`` normalised to [0, 1].
        anchors: ``(scales, A, 2)`` anchor sizes in pixels, ordered like ``strides`` (32, 16, 8 by default).

    Assignment (no gradient): each object goes to the anchor, among all scales, whose shape fits it best
    (IoU of centred boxes), in the cell holding its centre. Terms, summed and divided by ``N``:
    ``box`` = lambda_coord * [MSE of ``sigmoid(t_xy)`` against the centre's offset + MSE of ``t_wh``
    against ``log(w / p_w)``]; ``obj`` = BCE(objectness, 1) on positives; ``noobj`` = lambda_noobj *
    BCE(objectness, 0) on the other predictions, except those whose decoded box already overlaps a
    ground truth by more than ``ignore_thresh`` (the ``ignore_mask``); ``cls`` = BCE of class logits on
    positives. At 416 px the three scales give (13^2 + 26^2 + 52^2) * 3 = 10,647 predictions.
    """

    coder: YoloBoxCoder = YOLOV3_CODER

    def __init__(
        self,
        num_classes: int,
        anchors=YOLOV3_ANCHORS,
        strides: tuple[int, ...] = (32, 16, 8),
        lambda_coord: float = 5.0,
        lambda_noobj: float = 0.5,
        ignore_thresh: float = 0.5,
    ) -> None:
        super().__init__()
        self.num_classes, self.strides = num_classes, tuple(strides)
        self.register_buffer("anchors", torch.as_tensor(anchors, dtype=torch.float32), persistent=False)
        if self.anchors.ndim != 3 or self.anchors.shape[0] != len(self.strides) or self.anchors.shape[2] != 2:
            raise ValueError(f"anchors must have shape ({len(self.strides)}, A, 2), got {tuple(self.anchors.shape)}")
        self.lambda_coord, self.lambda_noobj, self.ignore_thresh = lambda_coord, lambda_noobj, ignore_thresh

    def forward(self, preds: list[Tensor], targets: Tensor) -> dict[str, Tensor]:
        if len(preds) != len(self.strides):
            raise ValueError(f"preds must hold {len(self.strides)} scales (strides {self.strides}), got {len(preds)}")
        check_targets(targets)
        grid = _Grid(preds, self.anchors, self.strides, self.num_classes)
        n = grid.pred.shape[0]
        image_size = (preds[0].shape[2] * self.strides[0], preds[0].shape[3] * self.strides[0])
        img, flat_idx, targets = self.assign(grid, targets.to(grid.pred.dtype))
        positive = torch.zeros(grid.pred.shape[:2], dtype=torch.bool, device=grid.pred.device)
        positive[img, flat_idx] = True
        noobj = ~positive & ~self.ignore_mask(grid, targets, image_size)

        pos_pred = grid.pred[img, flat_idx]  # (P, 5 + C)
        obj_logits = grid.pred[..., 4]
        class_target = F.one_hot(targets[:, 1].long(), self.num_classes).to(pos_pred.dtype)
        return {
            "box": self.box_loss(grid, pos_pred, flat_idx, targets, image_size) / n,
            "obj": F.binary_cross_entropy_with_logits(pos_pred[:, 4], torch.ones_like(pos_pred[:, 4]), reduction="sum")
            / n,
            "noobj": self.lambda_noobj
            * F.binary_cross_entropy_with_logits(
                obj_logits[noobj], torch.zeros_like(obj_logits[noobj]), reduction="sum"
            )
            / n,
            "cls": F.binary_cross_entropy_with_logits(pos_pred[:, 5:], class_target, reduction="sum") / n,
        }

    @torch.no_grad()
    def assign(self, grid: _Grid, targets: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Image index and flat prediction index of each object's responsible anchor, and the objects kept
        (one per anchor: a later object on the same anchor and cell replaces an earlier one)."""
        wh = targets[:, 4:6]  # normalised
        all_anchors = self.anchors.view(-1, 2)
        scale_of = torch.arange(len(self.strides)).repeat_interleave(self.anchors.shape[1])
        best_iou, best_flat = None, None
        for k, anchor in enumerate(all_anchors):
            s = int(scale_of[k])
            a, h, w = grid.shapes[s]
            anchor_norm = anchor / torch.tensor([w * self.strides[s], h * self.strides[s]], dtype=wh.dtype)
            inter = torch.minimum(wh, anchor_norm).prod(1)
            iou = inter / (wh.prod(1) + anchor_norm.prod() - inter)
            gx = (targets[:, 2] * w).long().clamp(0, w - 1)
            gy = (targets[:, 3] * h).long().clamp(0, h - 1)
            flat = grid.offsets[s] + (k % a) * h * w + gy * w + gx
            if best_iou is None:
                best_iou, best_flat = iou, flat
            else:
                better = iou > best_iou
                best_iou, best_flat = torch.where(better, iou, best_iou), torch.where(better, flat, best_flat)
        img = targets[:, 0].long()
        order = torch.arange(img.numel(), device=img.device)
        _, slot = torch.unique(img * grid.pred.shape[1] + best_flat, return_inverse=True)
        last = torch.full((int(slot.max()) + 1 if slot.numel() else 0,), -1, device=img.device)
        keep = last.scatter_reduce(0, slot, order, reduce="amax")[slot] == order
        return img[keep], best_flat[keep], targets[keep]

    @torch.no_grad()
    def ignore_mask(self, grid: _Grid, targets: Tensor, image_size: tuple[int, int]) -> Tensor:
        """``Tensor[N, P]`` bool: predictions whose decoded box overlaps a ground truth by more than
        ``ignore_thresh``; they are spared the no-object loss."""
        boxes = cxcywh_to_xyxy(self.coder.decode(grid.pred[..., :4], grid.cells, grid.anchors) * grid.strides[:, None])
        gt = targets_xyxy(targets, image_size)
        mask = torch.zeros(grid.pred.shape[:2], dtype=torch.bool, device=grid.pred.device)
        for i in targets[:, 0].long().unique().tolist():
            mask[i] = box_iou(boxes[i], gt[targets[:, 0].long() == i]).amax(dim=1) > self.ignore_thresh
        return mask

    def box_loss(self, grid: _Grid, pos_pred: Tensor, flat_idx: Tensor, targets: Tensor, image_size) -> Tensor:
        cells, anchors = grid.cells[flat_idx], grid.anchors[flat_idx]
        box_grid = targets[:, 2:6] * targets.new_tensor(image_size[::-1] * 2) / grid.strides[flat_idx, None]
        t_target = self.coder.encode(box_grid, cells, anchors)
        xy = F.mse_loss(torch.sigmoid(pos_pred[:, :2]), torch.sigmoid(t_target[:, :2]), reduction="sum")
        wh = F.mse_loss(pos_pred[:, 2:4], t_target[:, 2:], reduction="sum")
        return self.lambda_coord * (xy + wh)


class YoloV4Loss(YoloV3Loss):
    """YOLOv4: :class:`YoloV3Loss` with ``1 - CIoU`` of the decoded box (grid-sensitive coder, scale 1.1)
    in place of the coordinate MSE, weighted by ``lambda_coord``."""

    coder: YoloBoxCoder = YOLOV4_CODER

    def box_loss(self, grid: _Grid, pos_pred: Tensor, flat_idx: Tensor, targets: Tensor, image_size) -> Tensor:
        stride = grid.strides[flat_idx, None]
        pred = self.coder.decode(pos_pred[:, :4], grid.cells[flat_idx], grid.anchors[flat_idx]) * stride
        gt = targets_xyxy(targets, image_size)
        return self.lambda_coord * iou_loss(cxcywh_to_xyxy(pred), gt, "ciou", reduction="sum")
