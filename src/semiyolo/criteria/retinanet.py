"""RetinaNet loss (Lin et al., ICCV 2017): focal classification over non-ignored anchors and a box
regression on the positives' R-CNN deltas, both normalised by the number of positives."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..boxes import IGNORE, RETINANET_MATCHER, IoUMatcher, encode_deltas
from ..losses import sigmoid_focal_loss
from ._targets import check_targets, match_per_image, targets_xyxy


class RetinaNetLoss(nn.Module):
    """Layouts: ``cls_logits: Tensor[N, A, C]``, ``box_deltas: Tensor[N, A, 4]`` (``d_x, d_y, d_w, d_h``),
    ``anchors: Tensor[A, 4]`` xyxy pixels, ``targets: Tensor[n, 6]`` ``(image, class, cx, cy, w, h)``
    normalised, ``image_size = (height, width)``.

    Anchors are matched with IoU thresholds (negative < 0.4, positive >= 0.5, ignored in between, plus each
    object's best anchor). ``cls`` = focal loss (alpha 0.25, gamma 2) summed over non-ignored anchors;
    ``box`` = smooth-L1 (``beta = 0`` is L1, torchvision's choice) of the deltas of positives; both divided by
    ``max(1, number of positives)`` over the batch.
    """

    def __init__(
        self,
        num_classes: int,
        matcher: IoUMatcher = RETINANET_MATCHER,
        alpha: float = 0.25,
        gamma: float = 2.0,
        beta: float = 0.0,
    ) -> None:
        super().__init__()
        self.num_classes, self.matcher = num_classes, matcher
        self.alpha, self.gamma, self.beta = alpha, gamma, beta

    def forward(
        self, cls_logits: Tensor, box_deltas: Tensor, anchors: Tensor, targets: Tensor, image_size: tuple[int, int]
    ) -> dict[str, Tensor]:
        if (
            cls_logits.ndim != 3
            or box_deltas.shape != (*cls_logits.shape[:2], 4)
            or anchors.shape != (cls_logits.shape[1], 4)
        ):
            raise ValueError(
                "expected cls_logits (N, A, C), box_deltas (N, A, 4) and anchors (A, 4), got "
                f"{tuple(cls_logits.shape)}, {tuple(box_deltas.shape)} and {tuple(anchors.shape)}"
            )
        check_targets(targets)
        matches, gt_boxes = self.match(anchors, targets, image_size, cls_logits.shape[0])
        positive = matches >= 0
        num_pos = positive.sum().clamp(min=1)
        cls_target = torch.zeros_like(cls_logits)
        cls_target[positive] = F.one_hot(targets[matches[positive], 1].long(), self.num_classes).to(cls_target)
        valid = matches != IGNORE
        cls = sigmoid_focal_loss(cls_logits[valid], cls_target[valid], self.alpha, self.gamma, reduction="sum")
        anchor_idx = positive.nonzero()[:, 1]
        target_deltas = encode_deltas(anchors[anchor_idx], gt_boxes[matches[positive]])
        box = F.smooth_l1_loss(box_deltas[positive], target_deltas, beta=self.beta, reduction="sum")
        return {"cls": cls / num_pos, "box": box / num_pos}

    @torch.no_grad()
    def match(self, anchors: Tensor, targets: Tensor, image_size: tuple[int, int], batch_size: int):
        """``Tensor[N, A]`` of row indices into ``targets`` (or -1 / -2), and the targets' pixel boxes."""
        gt_boxes = targets_xyxy(targets, image_size)
        matches = match_per_image(targets, batch_size, lambda rows: self.matcher.match_boxes(gt_boxes[rows], anchors))
        return matches, gt_boxes
