"""Target tensors in Ultralytics' batch layout, shared by the classic criteria."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torchvision.ops import box_convert


def check_targets(targets: Tensor) -> None:
    """``targets``: ``Tensor[n, 6]`` rows ``(image_index, class, cx, cy, w, h)``, box normalised to [0, 1]."""
    if targets.ndim != 2 or targets.shape[1] != 6:
        raise ValueError(f"targets must have shape (n, 6) = (image, class, cx, cy, w, h), got {tuple(targets.shape)}")


def cxcywh_to_xyxy(boxes: Tensor) -> Tensor:
    """``Tensor[..., 4]`` ``(cx, cy, w, h)`` to ``(x1, y1, x2, y2)``: :func:`torchvision.ops.box_convert`."""
    return box_convert(boxes, "cxcywh", "xyxy")


def targets_xyxy(targets: Tensor, image_size: tuple[int, int]) -> Tensor:
    """Boxes of ``targets`` in pixels, xyxy; ``image_size`` is ``(height, width)``."""
    height, width = image_size
    scale = targets.new_tensor([width, height, width, height])
    return cxcywh_to_xyxy(targets[:, 2:6] * scale)


@torch.no_grad()
def match_per_image(targets: Tensor, batch_size: int, match_image: Callable[[Tensor], Tensor]) -> Tensor:
    """Run an image-level assigner over a batch.

    ``match_image(rows)`` gets the indices of one image's rows of ``targets`` and returns ``Tensor[A]`` of
    positions into ``rows`` (or negative codes). Returns ``Tensor[N, A]`` of row indices into ``targets``,
    with the negative codes kept.
    """
    image_of = targets[:, 0].long()
    matches = []
    for i in range(batch_size):
        rows = (image_of == i).nonzero().squeeze(1)
        local = match_image(rows)
        matches.append(torch.where(local >= 0, rows[local.clamp(min=0)], local) if rows.numel() else local)
    return torch.stack(matches)
