"""Which anchor points lie inside which boxes (torch only)."""

from __future__ import annotations

import torch
from torch import Tensor


def anchors_in_boxes(points: Tensor, boxes: Tensor, box_image: Tensor, num_images: int) -> Tensor:
    """Which anchors of each image lie inside one of that image's boxes.

    Args:
        points: ``Tensor[A, 2]`` anchor centres ``(x, y)`` in pixels (shared by every image).
        boxes: ``Tensor[M, 4]`` xyxy pixels.
        box_image: ``Tensor[M]`` the image of each box, in ``[0, num_images)``.
        num_images: ``B``.

    Returns:
        ``Tensor[B, A]`` bool: anchor ``a`` of image ``b`` lies inside (borders included) a box of image ``b``.
    """
    inside = torch.zeros(num_images, points.shape[0], dtype=torch.bool, device=points.device)
    if boxes.numel() == 0:
        return inside
    x, y = points[:, 0:1], points[:, 1:2]  # (A, 1)
    x1, y1, x2, y2 = boxes.to(points.dtype).T  # (M,) each
    hit = (x >= x1) & (x <= x2) & (y >= y1) & (y <= y2)  # (A, M)
    image = box_image.long().to(points.device)
    counts = torch.zeros(num_images, points.shape[0], dtype=torch.int32, device=points.device)
    counts.index_add_(0, image, hit.T.to(torch.int32))
    return inside | (counts > 0)
