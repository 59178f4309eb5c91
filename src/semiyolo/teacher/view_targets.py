"""The teacher's tiers in the student's strong view, as targets and ignore regions (torch only): per image (the
reference) and for the whole batch at once (:meth:`~.mean_teacher.MeanTeacher.extend`)."""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import Tensor
from torchvision.ops import box_iou

from ..pseudo import BatchedDetections, Detections, Tiers, batched_soft_targets, soft_targets
from ..pseudo.augment import BatchedStrongView


def tiers_in_view(dets: Detections, tiers: Tiers, boxes: Tensor, kept: Tensor, soft: bool = False):
    """``(boxes, classes, regressed, ignored boxes, weights)`` of one image's targets in the strong view:
    ``boxes[j]`` is detection ``kept[j]`` after the view's geometry (the view drops boxes that leave the image).
    The targets are the reliable detections, and with ``soft`` the uncertain ones too (weight: the teacher's
    score, 1 for the reliable ones; never regressed) but those on a reliable one
    (:func:`~semiyolo.pseudo.soft_targets`); the uncertain ones' boxes are ignore regions either way. ``weights``
    is ``None`` without ``soft``."""
    reliable = tiers.reliable[kept]
    if not soft:
        targets = boxes[reliable], dets.classes[kept][reliable], tiers.regressed[kept][reliable]
        return *targets, boxes[~reliable], None
    targets = soft_targets(reliable, boxes)
    weights = torch.where(reliable, 1.0, dets.scores[kept].float())[targets]
    return boxes[targets], dets.classes[kept][targets], tiers.regressed[kept][targets], boxes[~reliable], weights


def cut_regions(tiers: Tiers, cut: Tensor, cut_boxes: Tensor, tiered: bool) -> Tensor:
    """``Tensor[m, 4]`` xyxy pixels of the strong view: the visible parts ``cut_boxes: Tensor[c, 4]`` of the
    detections ``cut: Tensor[c]`` the view cut that would have been targets or ignore regions had they been kept:
    every one with tiered targets, the reliable ones with hard targets (the others are background there)."""
    return cut_boxes if tiered else cut_boxes[tiers.reliable[cut]]


def targets_in_view(
    dets: BatchedDetections, tiers: Tiers, view: BatchedStrongView, soft: bool
) -> tuple[Tensor, Tensor | None]:
    """:func:`tiers_in_view` of the whole batch: ``(targets Tensor[N] bool, weights Tensor[N] or None)`` over the
    rows of ``dets``: the reliable detections the view keeps, and with ``soft`` the uncertain ones kept too but those on
    a reliable one (weight: the teacher's score, 1 for the reliable ones)."""
    targets = view.kept & tiers.reliable
    if not soft:
        return targets, None
    kept = view.kept
    targets[kept] = batched_soft_targets(tiers.reliable[kept], view.boxes[kept], dets.image[kept], dets.num_images)
    return targets, torch.where(tiers.reliable, 1.0, dets.scores.float())


def view_ignore_regions(
    dets: BatchedDetections, tiers: Tiers, view: BatchedStrongView, tiered: bool, cut_ignored: bool
) -> tuple[Tensor, Tensor] | None:
    """``(image Tensor[M], boxes Tensor[M, 4] xyxy pixels of the view)`` of the batch's ignore regions, image by
    image, each image's in :meth:`MeanTeacher.extend`'s order: with tiered targets its uncertain detections the
    view keeps, then with ``cut_ignored`` :func:`cut_regions`' boxes. ``None`` when there are none to give."""
    rows = ([view.kept & ~tiers.reliable] if tiered else []) + (
        [view.cut & (tiers.reliable | tiered)] if cut_ignored else []
    )
    if not rows:
        return None
    image = torch.cat([dets.image[r] for r in rows])
    order = image.argsort(stable=True)
    return image[order], torch.cat([view.boxes[r] for r in rows])[order]


def joined_tiers(tiers: list[Tiers]) -> Tiers:
    """Each image's :class:`Tiers` as one over the batch's rows, image by image."""
    if not tiers:
        none = torch.zeros(0, dtype=torch.bool)
        return Tiers(none, none, none)
    return Tiers(*(torch.cat([getattr(t, name) for t in tiers]) for name in ("reliable", "regressed", "uncertain")))


def perfect_labels(hidden: list[Tensor]) -> tuple[BatchedDetections, Tiers]:
    """Hidden labels as pseudo-labels (the oracle's): ``hidden[i]: Tensor[n, 5]`` (class, x1, y1, x2, y2 pixels of
    image ``i``'s weak view) as detections of score 1, every one reliable and regressed."""
    found = [
        Detections(h[:, 1:5].float(), torch.ones(h.shape[0]), h[:, 0].long(), None, torch.zeros(h.shape[0]))
        for h in hidden
    ]
    dets = BatchedDetections.from_list(found)
    every = torch.ones(len(dets), dtype=torch.bool)
    return dets, Tiers(every, every, ~every)


def exact_boxes(dets: BatchedDetections, hidden: list[Tensor], min_iou: float = 0.5) -> BatchedDetections:
    """The teacher's detections with each box replaced by the hidden box of its image that it overlaps most, where
    that IoU is ``min_iou`` or more (the oracle's ``boxes`` diagnostic: what exact extents alone add). Which objects
    are found, their classes and scores stay the teacher's: the match ignores class, and two detections on one
    object both take its box, as their targets both train today. ``hidden[i]: Tensor[n, 5]`` (class, x1, y1, x2,
    y2 pixels of image ``i``'s weak view); boxes xyxy."""
    counts = torch.tensor([h.shape[0] for h in hidden], dtype=torch.long)
    if len(dets) == 0 or int(counts.sum()) == 0:
        return dets
    truth = torch.cat(hidden).to(dets.boxes)
    owner = torch.repeat_interleave(torch.arange(len(hidden)), counts).to(dets.image.device)
    iou = box_iou(dets.boxes, truth[:, 1:5]).masked_fill(dets.image[:, None] != owner[None], 0.0)
    best, index = iou.max(dim=1)
    matched = (best >= min_iou)[:, None]
    return replace(dets, boxes=torch.where(matched, truth[index, 1:5], dets.boxes))
