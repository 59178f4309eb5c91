"""Class-aware non-maximum suppression through torchvision."""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision.ops import batched_nms


def nms(
    boxes: Tensor,
    scores: Tensor,
    classes: Tensor | None = None,
    iou_threshold: float = 0.45,
    score_threshold: float = 0.0,
    max_det: int = 300,
) -> Tensor:
    """Indices of the kept detections, best score first.

    Args:
        boxes: ``Tensor[N, 4]`` xyxy. scores: ``Tensor[N]``.
        classes: ``Tensor[N]`` integer labels; boxes of different classes never suppress each other.
            ``None`` for class-agnostic NMS.
        iou_threshold: a box is dropped if it overlaps a better one of its class by more than this.
        score_threshold: boxes scoring at or below this are dropped before NMS.
        max_det: at most this many indices are returned.

    Returns:
        ``Tensor[K]`` (int64) indices into ``boxes`` (so callers can keep per-anchor data such as DFL
        distributions alongside).
    """
    if boxes.ndim != 2 or boxes.shape[-1] != 4 or scores.shape != boxes.shape[:1]:
        raise ValueError(f"boxes must be (N, 4) and scores (N,), got {tuple(boxes.shape)} and {tuple(scores.shape)}")
    if not 0 <= iou_threshold <= 1:
        raise ValueError(f"iou_threshold must lie in [0, 1], got {iou_threshold!r}")
    candidates = torch.nonzero(scores > score_threshold).squeeze(1)
    if classes is None:
        classes = torch.zeros_like(scores, dtype=torch.long)
    kept = batched_nms(boxes[candidates].float(), scores[candidates].float(), classes[candidates], iou_threshold)
    return candidates[kept[:max_det]]
