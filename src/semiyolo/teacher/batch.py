"""Appending pseudo-labeled images to a training batch in Ultralytics' layout (torch only)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.ops import box_convert


def append_pseudo_labeled(batch: dict, images: Tensor, boxes: Sequence[Tensor], classes: Sequence[Tensor]) -> dict:
    """A new batch: ``batch``'s images and targets, then ``images`` with their pseudo-labels.

    Args:
        batch: Ultralytics' preprocessed batch: ``img: Tensor[B, 3, H, W]``, ``batch_idx: Tensor[N]``,
            ``cls: Tensor[N, 1]``, ``bboxes: Tensor[N, 4]`` cxcywh normalised to ``W, H``; other keys are kept.
        images: ``Tensor[U, 3, h, w]`` on the batch's device, in the batch's value range. A size other than
            ``(H, W)`` (Ultralytics' multi-scale resized the labeled images) is resized bilinearly to it.
        boxes: per appended image, ``Tensor[n_i, 4]`` xyxy in pixels of ``images``.
        classes: per appended image, ``Tensor[n_i]`` class indices.

    Returns:
        The batch with ``U`` more images; their targets take image indices ``B .. B + U - 1``; ``num_labeled = B``
        tells the criterion where the pseudo-labeled part starts.
    """
    if not len(boxes) == len(classes) == images.shape[0]:
        raise ValueError(
            f"expected one boxes and classes tensor per image: {images.shape[0]} images, "
            f"{len(boxes)} boxes, {len(classes)} classes"
        )
    height, width = batch["img"].shape[-2:]
    n_labeled, device = batch["img"].shape[0], batch["img"].device
    frame = torch.tensor([images.shape[-1], images.shape[-2]] * 2, device=device, dtype=torch.float32)
    if images.shape[-2:] != (height, width):
        images = F.interpolate(images, size=(height, width), mode="bilinear", align_corners=False)
    idx, cls, xywh = [batch["batch_idx"]], [batch["cls"]], [batch["bboxes"]]
    for i, (image_boxes, image_classes) in enumerate(zip(boxes, classes, strict=True)):
        normalised = image_boxes.to(device).float() / frame  # a resize keeps normalised coordinates
        idx.append(torch.full((normalised.shape[0],), n_labeled + i, device=device, dtype=batch["batch_idx"].dtype))
        cls.append(image_classes.to(device).view(-1, 1).to(batch["cls"].dtype))
        xywh.append(box_convert(normalised, "xyxy", "cxcywh").to(batch["bboxes"].dtype))
    return {
        **batch,
        "img": torch.cat((batch["img"], images.to(batch["img"].dtype))),
        "batch_idx": torch.cat(idx),
        "cls": torch.cat(cls),
        "bboxes": torch.cat(xywh),
        "num_labeled": n_labeled,
    }
