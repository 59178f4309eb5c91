"""Appending pseudo-labeled images to a training batch in Ultralytics' layout (torch only)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.ops import box_convert

REGRESS_KEY = "regress"  # Tensor[N] bool per target: box and DFL losses apply (absent: every target)
WEIGHT_KEY = "target_weight"  # Tensor[N] float per target: its classification target's scale (absent: 1)
PER_TARGET_KEYS = ("cls", "bboxes", REGRESS_KEY, WEIGHT_KEY)  # what each target carries, beside batch_idx
IGNORE_KEYS = ("ignore_idx", "ignore_bboxes")  # uncertain pseudo-labels: Tensor[M] image, Tensor[M, 4] cxcywh
DENSE_KEY = "dense_targets"  # DenseTargets of the pseudo-labeled images: the criterion's targets in their place


def append_pseudo_labeled(
    batch: dict,
    images: Tensor,
    boxes: Sequence[Tensor],
    classes: Sequence[Tensor],
    regressed: Sequence[Tensor] | None = None,
    ignored: Sequence[Tensor] | None = None,
    weights: Sequence[Tensor] | None = None,
) -> dict:
    """A new batch: ``batch``'s images and targets, then ``images`` with their pseudo-labels.

    Args:
        batch: Ultralytics' preprocessed batch: ``img: Tensor[B, 3, H, W]``, ``batch_idx: Tensor[N]``,
            ``cls: Tensor[N, 1]``, ``bboxes: Tensor[N, 4]`` cxcywh normalised to ``W, H``; other keys are kept.
        images: ``Tensor[U, 3, h, w]`` on the batch's device, in the batch's value range. A size other than
            ``(H, W)`` (Ultralytics' multi-scale resized the labeled images) is resized bilinearly to it.
        boxes: per appended image, ``Tensor[n_i, 4]`` xyxy in pixels of ``images``.
        classes: per appended image, ``Tensor[n_i]`` class indices.
        regressed: per appended image, ``Tensor[n_i]`` bool, whether the box is regressed (tiered targets); the
            batch then carries ``regress: Tensor[N + sum n_i]`` (True for the labeled targets).
        ignored: per appended image, ``Tensor[m_i, 4]`` xyxy pixels of uncertain pseudo-labels; the batch then
            carries ``ignore_idx: Tensor[sum m_i]`` and ``ignore_bboxes: Tensor[sum m_i, 4]`` (cxcywh normalised).
        weights: per appended image, ``Tensor[n_i]`` float, each target's classification scale (soft targets of
            uncertain pseudo-labels); the batch then carries ``target_weight: Tensor[N + sum n_i]`` (1 for the
            labeled targets).

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
    idx, xywh = _targets(boxes, frame, n_labeled, batch["batch_idx"].dtype, batch["bboxes"].dtype)
    cls = [c.to(device).view(-1, 1).to(batch["cls"].dtype) for c in classes]
    out = {
        **batch,
        "img": torch.cat((batch["img"], images.to(batch["img"].dtype))),
        "batch_idx": torch.cat((batch["batch_idx"], idx)),
        "cls": torch.cat((batch["cls"], *cls)),
        "bboxes": torch.cat((batch["bboxes"], xywh)),
        "num_labeled": n_labeled,
    }
    if regressed is not None:
        labeled = batch.get(REGRESS_KEY, torch.ones(batch["cls"].shape[0], dtype=torch.bool, device=device))
        out[REGRESS_KEY] = torch.cat((labeled, *(r.to(device).bool() for r in regressed)))
    if ignored is not None:
        out[IGNORE_KEYS[0]], out[IGNORE_KEYS[1]] = _targets(ignored, frame, n_labeled, idx.dtype, xywh.dtype)
    if weights is not None:
        labeled = batch.get(WEIGHT_KEY, torch.ones(batch["cls"].shape[0], device=device))
        out[WEIGHT_KEY] = torch.cat((labeled, *(w.to(device).float() for w in weights)))
    return out


def _targets(boxes: Sequence[Tensor], frame: Tensor, first: int, idx_dtype, box_dtype) -> tuple[Tensor, Tensor]:
    """``(image index Tensor[M], cxcywh normalised Tensor[M, 4])`` of per-image xyxy pixel boxes; image ``i`` of
    ``boxes`` gets index ``first + i``."""
    device = frame.device
    idx = [torch.full((b.shape[0],), first + i, device=device, dtype=idx_dtype) for i, b in enumerate(boxes)]
    xywh = [box_convert(b.to(device).float() / frame, "xyxy", "cxcywh").to(box_dtype) for b in boxes]
    empty = (torch.zeros(0, device=device, dtype=idx_dtype), torch.zeros(0, 4, device=device, dtype=box_dtype))
    return (torch.cat(idx), torch.cat(xywh)) if boxes else empty


def labeled_part(batch: dict) -> dict:
    """The labeled images of a batch :func:`append_pseudo_labeled` extended (``batch`` itself when it was not):
    ``img[:B]`` and the targets whose image index is below ``B = num_labeled``, without the pseudo-labels' ignore
    regions or dense targets; other keys are kept."""
    n_labeled = batch.get("num_labeled")
    if n_labeled is None:
        return batch
    own = batch["batch_idx"] < n_labeled
    part = {k: v for k, v in batch.items() if k not in (*IGNORE_KEYS, DENSE_KEY, "num_labeled")}
    part.update(img=batch["img"][:n_labeled], batch_idx=batch["batch_idx"][own])
    part.update({k: batch[k][own] for k in PER_TARGET_KEYS if k in batch})
    return part
