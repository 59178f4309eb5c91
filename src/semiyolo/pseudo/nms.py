"""Class-aware NMS that also measures each kept box's cluster spread (S4OD's NMS uncertainty), per image or for a
batch of images at once."""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision.ops import box_iou
from torchvision.ops import nms as torchvision_nms

from ..boxes import nms


def nms_with_spread(
    boxes: Tensor, scores: Tensor, classes: Tensor, iou_threshold: float = 0.7, max_det: int = 300
) -> tuple[Tensor, Tensor]:
    """Indices kept by class-aware NMS, and each kept box's cluster spread.

    The cluster of a kept box is the box and every candidate of its class that overlaps it by more than
    ``iou_threshold`` (the ones it suppressed). Its spread is the score-weighted standard deviation of the
    cluster's four coordinates, each divided by the kept box's width (x) or height (y), averaged over the four:
    0 for a lone box or a cluster that agrees, larger when the candidates disagree about the object's extent.

    Args:
        boxes: ``Tensor[K, 4]`` xyxy candidates. scores: ``Tensor[K]``. classes: ``Tensor[K]``.

    Returns:
        ``(keep: Tensor[N] int64, spread: Tensor[N])``, best score first.
    """
    keep = nms(boxes, scores, classes, iou_threshold=iou_threshold, max_det=max_det)
    if keep.numel() == 0:
        return keep, boxes.new_zeros(0)
    kept = boxes[keep].float()
    member = (box_iou(kept, boxes.float()) > iou_threshold) & (classes[keep, None] == classes[None, :])
    member[torch.arange(keep.numel()), keep] = True
    weights = member.float() * scores.float()[None, :]
    weights = weights / weights.sum(1, keepdim=True).clamp(min=1e-12)
    mean = weights @ boxes.float()
    var = (weights @ boxes.float().square() - mean.square()).clamp(min=0)
    size = (kept[:, 2:] - kept[:, :2]).clamp(min=1e-6).repeat(1, 2)  # (w, h, w, h)
    return keep, (var.sqrt() / size).mean(1)


PAIRS_PER_BLOCK = 1 << 22  # (kept box, candidate) pairs of the spread's IoU held at once: tens of MB
# torchvision's CPU NMS compares each kept box with every later one of the call: one call per block of whole images
# of about this many candidates keeps the cost per image from growing with the batch
BOXES_PER_NMS = 2048


def batched_nms_with_spread(
    boxes: Tensor, scores: Tensor, classes: Tensor, valid: Tensor, iou_threshold: float = 0.7, max_det: int = 300
) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`nms_with_spread` on a batch of images at once: class-aware NMS in which boxes of different images
    never suppress each other (one torchvision NMS per block of whole images, :data:`BOXES_PER_NMS`), at most
    ``max_det`` kept per image, and each kept box's cluster spread, its cluster drawn from its own image's candidates.

    Args:
        boxes: ``Tensor[B, K, 4]`` xyxy candidates. scores: ``Tensor[B, K]``. classes: ``Tensor[B, K]`` int64.
        valid: ``Tensor[B, K]`` bool: each image's candidates; the others are padding, never kept nor in a cluster.

    Returns:
        ``(image: Tensor[N] int64, index: Tensor[N] int64 into K, spread: Tensor[N])``, image by image, best score
        first within an image (ties in the order of ``K``).
    """
    n_images, k = scores.shape
    flat = torch.nonzero((valid & (scores > 0)).flatten()).squeeze(1)
    if flat.numel() == 0:
        return flat, flat, boxes.new_zeros(0)
    keep = _kept_image_by_image(boxes.flatten(0, 1), scores.flatten(), classes.flatten(), flat, k, iou_threshold)
    rank = _rank_in_image(keep // k, n_images)
    keep, rank = keep[rank < max_det], rank[rank < max_det]
    image, index = keep // k, keep % k
    spread = boxes.new_zeros(keep.numel(), dtype=torch.float32)
    per_block = max(1, PAIRS_PER_BLOCK // ((int(rank.max()) + 1) * k))
    for start in range(0, n_images, per_block):
        rows = (image >= start) & (image < start + per_block)
        if rows.any():
            block = slice(start, start + per_block)
            spread[rows] = _cluster_spread(
                boxes[block], scores[block], classes[block], valid[block], (image[rows] - start, rank[rows]),
                index[rows], iou_threshold,
            )  # fmt: skip
    return image, index, spread


def _kept_image_by_image(
    boxes: Tensor, scores: Tensor, classes: Tensor, flat: Tensor, k: int, iou_threshold: float
) -> Tensor:
    """Class-aware NMS of the candidates ``flat`` (ascending indices ``image * k + candidate`` into the flattened
    ``Tensor[B * k, ...]`` inputs), images apart, in blocks of whole images of about :data:`BOXES_PER_NMS`.

    Returns:
        ``Tensor[N]`` kept indices into ``B * k``, image by image, best score first within an image.
    """
    image = flat // k
    counts = torch.bincount(image)
    block = ((counts.cumsum(0) - counts) // BOXES_PER_NMS)[image]  # an image lies in the block it starts in
    groups = image * (int(classes[flat].max()) + 1) + classes[flat]
    keep = []
    for rows in torch.split(
        torch.arange(flat.numel()), torch.unique_consecutive(block, return_counts=True)[1].tolist()
    ):
        keep.append(flat[rows[disjoint_nms(boxes[flat[rows]], scores[flat[rows]], groups[rows], iou_threshold)]])
    keep = torch.cat(keep)
    return keep[torch.sort(keep // k, stable=True).indices]  # image by image, each still best first


def disjoint_nms(boxes: Tensor, scores: Tensor, groups: Tensor, iou_threshold: float) -> Tensor:
    """torchvision's ``batched_nms`` by the coordinate trick, in float64: each group is moved clear of the others
    (by the extent of all the boxes, negative coordinates included) without rounding its coordinates.

    Args:
        boxes: ``Tensor[N, 4]`` xyxy. scores: ``Tensor[N]``. groups: ``Tensor[N]`` int64; boxes of different groups
            never suppress each other.

    Returns:
        ``Tensor[K]`` int64 indices of the kept boxes, best score first.
    """
    boxes = boxes.double()
    extent = boxes.max() - boxes.min() + 1
    return torchvision_nms(boxes + (groups.double() * extent)[:, None], scores.double(), iou_threshold)


def _rank_in_image(image: Tensor, n_images: int) -> Tensor:
    """Each entry's position among its image's entries, of ``image: Tensor[N]`` sorted (ascending)."""
    counts = torch.bincount(image, minlength=n_images)
    return torch.arange(image.numel(), device=image.device) - (counts.cumsum(0) - counts)[image]


def batched_box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """``Tensor[B, M, K]``: torchvision's ``box_iou`` of each image's ``boxes1: Tensor[B, M, 4]`` and
    ``boxes2: Tensor[B, K, 4]`` (xyxy), the same arithmetic."""
    area1 = (boxes1[..., 2] - boxes1[..., 0]) * (boxes1[..., 3] - boxes1[..., 1])
    area2 = (boxes2[..., 2] - boxes2[..., 0]) * (boxes2[..., 3] - boxes2[..., 1])
    lt = torch.max(boxes1[:, :, None, :2], boxes2[:, None, :, :2])
    rb = torch.min(boxes1[:, :, None, 2:], boxes2[:, None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (area1[:, :, None] + area2[:, None, :] - inter)


def _cluster_spread(
    boxes: Tensor,
    scores: Tensor,
    classes: Tensor,
    valid: Tensor,
    slot: tuple[Tensor, Tensor],
    index: Tensor,
    iou_threshold: float,
) -> Tensor:
    """:func:`nms_with_spread`'s spread of kept candidates ``index: Tensor[N]`` (into ``K``), the kept boxes laid out
    in ``slot``: ``(image, rank)``, one image's kept boxes per row of a ``Tensor[B, M, 4]``.

    Args: as :func:`batched_nms_with_spread`'s, ``Tensor[B, K, ...]``.

    Returns:
        ``Tensor[N]``, in the order of ``index``.
    """
    kept_index = index.new_zeros(boxes.shape[0], int(slot[1].max()) + 1)
    kept_index[slot] = index
    boxes = boxes.float()
    kept = boxes.gather(1, kept_index[..., None].expand(-1, -1, 4))  # (B, M, 4); unused slots hold candidate 0
    same_class = classes.gather(1, kept_index)[..., None] == classes[:, None, :]
    member = (batched_box_iou(kept, boxes) > iou_threshold) & same_class & valid[:, None, :]
    member.scatter_(2, kept_index[..., None], True)
    weights = member.float() * scores.float()[:, None, :]
    weights = weights / weights.sum(2, keepdim=True).clamp(min=1e-12)
    mean = weights @ boxes
    var = (weights @ boxes.square() - mean.square()).clamp(min=0)
    size = (kept[..., 2:] - kept[..., :2]).clamp(min=1e-6).repeat(1, 1, 2)  # (w, h, w, h)
    return (var.sqrt() / size).mean(2)[slot]
