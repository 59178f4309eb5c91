"""The teacher's views fused at the detection level (torch only, torchvision for NMS and IoU): issue 31, item 3.

Each view of an image (the image, its mirror, a larger scale) gives its own detections after NMS, mapped to the
image's pixels. Weighted Boxes Fusion (Solovyev, Wang and Gabruseva, "Weighted boxes fusion: ensembling boxes from
different object detection models", 2021) merges them: boxes of one class that overlap become one box, their
score-weighted mean, whose confidence is the views' mean confidence, a view that missed the object counting zero.
So an object one view alone finds keeps half its score with two views, and a box the views place differently is
their compromise. Unlike WBF's sequential clustering, the clusters here come from one class-aware NMS over every
view's detections (each box joins the kept box of its class it overlaps most), so the fusion is a few tensor
operations with no loop over boxes.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torchvision.ops import batched_nms, box_iou

from .predictions import Detections

FUSE_IOU = 0.55  # WBF's default: boxes of one class overlapping at more than this are one object


def fuse_views(views: Sequence[Detections], iou_threshold: float = FUSE_IOU) -> tuple[Detections, Tensor]:
    """One image's detections from ``V = len(views)`` views fused into one set, and how many views found each.

    Clusters: a class-aware NMS (``torchvision.ops.batched_nms``) over all views' detections keeps one box per
    cluster; every other box joins the kept box of its class with which its IoU is highest (above ``iou_threshold``,
    which NMS guarantees for the boxes it suppressed). For a cluster ``C`` with members' boxes ``b_i``, scores
    ``s_i`` and views ``v_i``:

        box    = sum_i s_i b_i / sum_i s_i
        score  = (1 / V) sum_v max { s_i : i in C, v_i = v }      (a view with no member counts 0)
        views  = |{ v_i : i in C }|

    ``bin_logits`` (the DFL distributions) are the kept box's; ``cluster_spread`` is the larger of the members'
    own spreads (each view's NMS clusters) and their spread across views: the members' score-weighted standard
    deviation of the four coordinates over the fused box's width (x) or height (y), averaged over the four
    (:func:`~.nms.nms_with_spread`'s measure), so one view alone keeps its NMS spread. Sorted by fused score, best
    first.

    Args:
        views: per view, one image's :class:`~.predictions.Detections` (xyxy pixels of the image), each with or
            each without ``bin_logits``.
        iou_threshold: in (0, 1].

    Returns:
        ``(fused Detections, Tensor[M] int64 views that found each)``.
    """
    if not views:
        raise ValueError("fuse_views needs at least one view")
    if not 0 < iou_threshold <= 1:
        raise ValueError(f"iou_threshold must lie in (0, 1], got {iou_threshold!r}")
    every = _concatenated(views)
    boxes, scores, classes, view = every["boxes"].float(), every["scores"].float(), every["classes"], every["view"]
    n_bins = views[0].bin_logits.shape[-1] if views[0].bin_logits is not None else None
    if boxes.shape[0] == 0:
        return Detections.empty(n_bins, boxes.device), torch.zeros(0, dtype=torch.long, device=boxes.device)
    kept = batched_nms(boxes, scores, classes, iou_threshold)
    overlap = box_iou(boxes[kept], boxes).masked_fill(classes[kept, None] != classes[None, :], -1.0)
    overlap[torch.arange(kept.numel(), device=boxes.device), kept] = 2.0  # a kept box is its own cluster's
    cluster = overlap.argmax(0)  # (K,): each box's cluster, 0 .. M - 1
    weight = torch.zeros(kept.numel(), device=boxes.device).index_add_(0, cluster, scores)
    fused = torch.zeros(kept.numel(), 4, device=boxes.device).index_add_(0, cluster, scores[:, None] * boxes)
    fused = fused / weight.clamp(min=1e-12)[:, None]
    best_per_view = torch.zeros(kept.numel() * len(views), device=boxes.device)
    best_per_view = best_per_view.scatter_reduce(0, cluster * len(views) + view, scores, "amax")
    score = best_per_view.view(-1, len(views)).sum(1) / len(views)
    members = torch.zeros(kept.numel() * len(views), device=boxes.device)
    members = members.index_add_(0, cluster * len(views) + view, torch.ones_like(scores))
    found_by = (members.view(-1, len(views)) > 0).sum(1)
    spread = _spread(boxes, scores, cluster, fused, weight)
    if every["cluster_spread"] is not None:
        own = torch.zeros_like(spread).scatter_reduce(0, cluster, every["cluster_spread"].float(), "amax")
        spread = torch.maximum(spread, own)
    order = score.argsort(descending=True, stable=True)
    bins = every["bin_logits"][kept][order] if n_bins else None
    out = Detections(fused[order], score[order], classes[kept][order], bins, spread[order])
    return out, found_by[order]


def _concatenated(views: Sequence[Detections]) -> dict[str, Tensor | None]:
    """Every view's detections in one set of tensors, with ``view: Tensor[K]``, each detection's view."""
    has_bins = [v.bin_logits is not None for v in views]
    if any(has_bins) and not all(has_bins):
        raise ValueError("the views must all have DFL distributions (bin_logits) or none")
    device = views[0].boxes.device
    view = torch.cat([torch.full((len(v),), i, dtype=torch.long, device=device) for i, v in enumerate(views)])
    return {
        "boxes": torch.cat([v.boxes for v in views]),
        "scores": torch.cat([v.scores for v in views]),
        "classes": torch.cat([v.classes.long() for v in views]),
        "bin_logits": torch.cat([v.bin_logits for v in views]) if all(has_bins) else None,
        "cluster_spread": None
        if any(v.cluster_spread is None for v in views)
        else torch.cat([v.cluster_spread for v in views]),
        "view": view,
    }


def _spread(boxes: Tensor, scores: Tensor, cluster: Tensor, fused: Tensor, weight: Tensor) -> Tensor:
    """``Tensor[M]``: each cluster's score-weighted standard deviation of its members' coordinates around the fused
    box, over the fused box's (w, h, w, h), averaged over the four coordinates."""
    share = scores / weight.clamp(min=1e-12)[cluster]
    squared = (boxes - fused[cluster]).square() * share[:, None]
    var = torch.zeros_like(fused).index_add_(0, cluster, squared)
    size = (fused[:, 2:] - fused[:, :2]).clamp(min=1e-6).repeat(1, 2)
    return (var.sqrt() / size).mean(1)
