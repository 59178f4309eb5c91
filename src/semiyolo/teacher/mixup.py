"""Pseudo-mixup: the strong views of pseudo-labeled images blended with other images of the batch, with both
images' targets (torch only).

After MixPL (Chen et al., "Mixed Pseudo Labels for Semi-Supervised Object Detection", 2023, its "Pseudo Mixup"):
an image the teacher labeled is blended half and half with another one and takes the union of their labels, as
Ultralytics' ``mixup`` does for labeled images. The partner is another pseudo-labeled image (MixPL's choice) or a
labeled one, whose true labels then join the pseudo-labeled part. The blended image stays in the pseudo-labeled part
of the batch (weighted by ``lambda_unsup``); the labeled images themselves are left as they are.

Object-aware blending (``semi.mixup_max_overlap``) is ours, not MixPL's: an image is not blended with a partner one
of whose boxes overlaps one of its own at an IoU above a bound (the weaker object would be hidden under the other,
yet stay a target); the next candidate of the same draw is tried (:func:`draw_candidates`, :func:`first_allowed`).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision.ops import box_convert, box_iou

from ..batch import IGNORE_KEYS, PER_TARGET_KEYS, num_labeled, with_num_labeled

MIXUP_PARTNERS = ("pseudo", "labeled")  # semi.mixup_partners
_IOU_ROWS = 4096  # boxes per box_iou call in overlapping_images


def check_mixup(probability: float, partners: str) -> None:
    """Raise ``ValueError`` unless ``probability`` lies in [0, 1] and ``partners`` is one of :data:`MIXUP_PARTNERS`."""
    if partners not in MIXUP_PARTNERS:
        raise ValueError(f"mixup partners must be one of {MIXUP_PARTNERS}, got {partners!r}")
    if not 0 <= probability <= 1:
        raise ValueError(f"mixup probability must lie in [0, 1], got {probability!r}")


def draw_partners(
    num_labeled: int, num_pseudo: int, probability: float, partners: str, generator: torch.Generator | None = None
) -> Tensor:
    """``Tensor[num_pseudo]`` long: for each pseudo-labeled image (batch row ``num_labeled + i``), the batch row it
    is blended with, or -1 for none.

    Each image is blended with probability ``probability``. ``pseudo``: partners follow a random cycle through the
    pseudo-labeled images, so no image is its own partner (none with fewer than two); ``labeled``: a labeled row
    drawn uniformly (none without labeled images). The draws use ``generator`` alone, in a fixed order, so a
    resumed run draws the same partners."""
    return draw_candidates(num_labeled, num_pseudo, probability, partners, generator)[:, 0]


def draw_candidates(
    num_labeled: int, num_pseudo: int, probability: float, partners: str, generator: torch.Generator | None = None
) -> Tensor:
    """``Tensor[num_pseudo, K]`` long, ``K >= 1``: for each pseudo-labeled image (batch row ``num_labeled + i``),
    the batch rows it may be blended with, in order of preference, or a row of -1 where it is not blended.

    Column 0 is :func:`draw_partners`' partner, from the same draws of ``generator``; the others follow from them
    without further draws. ``pseudo``: the rest of the random cycle from the image on (``K = num_pseudo - 1``);
    ``labeled``: the labeled rows from the drawn one on, wrapping round (``K = num_labeled``)."""
    check_mixup(probability, partners)
    blended = torch.rand(num_pseudo, generator=generator) < probability
    if partners == "labeled":
        drawn = torch.randint(max(num_labeled, 1), (num_pseudo,), generator=generator)
        rows = (drawn.view(-1, 1) + torch.arange(num_labeled)) % max(num_labeled, 1)
    else:
        cycle = torch.randperm(num_pseudo, generator=generator)
        position = torch.empty_like(cycle)
        position[cycle] = torch.arange(num_pseudo)
        ahead = (position.view(-1, 1) + torch.arange(1, max(num_pseudo, 1))) % max(num_pseudo, 1)
        rows = cycle[ahead] + num_labeled  # image cycle[k]'s candidates: cycle[k + 1], cycle[k + 2], ...
    if rows.shape[1] == 0:
        rows = torch.full((num_pseudo, 1), -1, dtype=torch.long)
    return torch.where(blended.view(-1, 1), rows, torch.full_like(rows, -1))


def overlapping_images(image_of: Tensor, boxes: Tensor, num_images: int, max_overlap: float) -> Tensor:
    """``Tensor[num_images, num_images]`` bool: ``[i, j]`` is True where a box of image ``i`` and a box of image
    ``j`` overlap at an IoU above ``max_overlap`` (``torchvision.ops.box_iou``); the diagonal is True for every image
    with a box.

    Args:
        image_of: ``Tensor[N]``, each box's image row (``batch_idx``).
        boxes: ``Tensor[N, 4]`` cxcywh, normalised to their image. The images of a batch fill one canvas, so the
            boxes of two images compare directly as they would once blended.
        num_images: the batch's rows.
        max_overlap: in (0, 1].
    """
    if not 0 < max_overlap <= 1:
        raise ValueError(f"mixup max_overlap must lie in (0, 1], got {max_overlap!r}")
    image_of = image_of.detach().long().cpu()
    xyxy = box_convert(boxes.detach().float(), "cxcywh", "xyxy")
    overlapping = torch.zeros(num_images, num_images, dtype=torch.bool)
    for start in range(0, xyxy.shape[0], _IOU_ROWS):  # bounds box_iou's N x N matrix on crowded batches
        a, b = (box_iou(xyxy[start : start + _IOU_ROWS], xyxy) > max_overlap).nonzero(as_tuple=True)
        overlapping[image_of[a.cpu() + start], image_of[b.cpu()]] = True
    return overlapping


def first_allowed(candidates: Tensor, overlapping: Tensor, num_labeled: int) -> Tensor:
    """``Tensor[U]`` long: for each pseudo-labeled image (batch row ``num_labeled + i``), its first candidate ``p``
    with ``overlapping[num_labeled + i, p]`` False, or -1 when it has none.

    Args:
        candidates: ``Tensor[U, K]`` batch rows or -1 (:func:`draw_candidates`).
        overlapping: ``Tensor[num_labeled + U, num_labeled + U]`` bool (:func:`overlapping_images`).
        num_labeled: the batch's labeled rows, before the pseudo-labeled ones.
    """
    own = torch.arange(candidates.shape[0]).view(-1, 1) + num_labeled
    allowed = (candidates >= 0) & ~overlapping[own, candidates.clamp(min=0)]
    first = allowed.long().argmax(1, keepdim=True)  # argmax gives the first of equal maxima
    chosen = candidates.gather(1, first).squeeze(1)
    return torch.where(allowed.any(1), chosen, torch.full_like(chosen, -1))


def draw_blend_partners(
    batch: dict,
    probability: float,
    partners: str,
    generator: torch.Generator | None = None,
    max_overlap: float | None = None,
) -> tuple[Tensor, int]:
    """``(Tensor[U], refused)``: the partners of ``batch``'s ``U`` pseudo-labeled images (rows after
    ``batch["num_labeled"]``), batch rows or -1, and how many drawn partners the object-aware rule refused.

    ``max_overlap`` ``None``: :func:`draw_partners`' partners. Else image ``i`` is blended with ``p`` only when no
    box of ``p`` overlaps one of its own at an IoU above ``max_overlap`` (boxes cxcywh normalised, as in
    ``batch["bboxes"]``); a refused partner gives way to the next candidate of the same draws
    (:func:`draw_candidates`), and with none allowed the image stays unblended. Either way ``generator`` draws the
    same numbers, so a resumed run draws the same partners."""
    n_labeled, total = num_labeled(batch, 0), batch["img"].shape[0]
    candidates = draw_candidates(n_labeled, total - n_labeled, probability, partners, generator)
    drawn = candidates[:, 0]
    if max_overlap is None:
        return drawn, 0
    overlapping = overlapping_images(batch["batch_idx"], batch["bboxes"], total, max_overlap)
    chosen = first_allowed(candidates, overlapping, n_labeled)
    return chosen, int((chosen != drawn).sum())


def mix_pseudo_labeled(batch: dict, partners: Tensor, ratio: float = 0.5) -> dict:
    """A new batch dict whose pseudo-labeled image ``i`` (row ``B + i``, ``B = batch["num_labeled"]``) is, where
    ``partners[i] = p >= 0``, ``ratio * img[B + i] + (1 - ratio) * img[p]`` (both before blending), and also carries
    row ``p``'s targets: classes, boxes (cxcywh normalised, so sizes need not agree), ``regress`` flags, target
    weights and the uncertain ``ignore`` regions, placed after the row's own (the targets stay sorted by image).

    The images are blended in place, in ``batch["img"]``: the batch :func:`~semiyolo.batch.append_pseudo_labeled`
    made owns them, and a copy of a whole batch would cost more than the blend (a 128-image batch at 160 px: 39 MB).

    Args:
        batch: a batch :func:`~semiyolo.batch.append_pseudo_labeled` made (``img: Tensor[B + U, 3, H, W]``,
            ``batch_idx: Tensor[N]``, ``cls: Tensor[N, 1]``, ``bboxes: Tensor[N, 4]``, ``num_labeled``).
        partners: ``Tensor[U]`` long, batch rows or -1 (:func:`draw_partners`).
        ratio: the pseudo-labeled image's share of the blend, in (0, 1].
    """
    n_labeled, total = num_labeled(batch), batch["img"].shape[0]
    if partners.shape != (total - n_labeled,):
        raise ValueError(f"expected one partner per pseudo-labeled image ({total - n_labeled}), got {partners.shape}")
    if not 0 < ratio <= 1:
        raise ValueError(f"mixup ratio must lie in (0, 1], got {ratio!r}")
    device = batch["img"].device
    partners = partners.to(device)
    rows = (partners >= 0).nonzero().squeeze(1) + n_labeled  # the blended images' rows
    sources = partners[rows - n_labeled]  # and their partners'
    if rows.numel() == 0:
        return batch
    img = batch["img"]  # gathered before the write, so a row that is also a partner gives its unblended image
    img[rows] = torch.lerp(img[sources], img[rows], ratio)
    out = dict(batch)
    per_target = {k: batch[k] for k in PER_TARGET_KEYS if k in batch}
    out["batch_idx"], copied = _with_copies(batch["batch_idx"], per_target, rows, sources)
    out.update(copied)
    if IGNORE_KEYS[0] in batch:
        index, boxes = IGNORE_KEYS
        out[index], copied = _with_copies(batch[index], {boxes: batch[boxes]}, rows, sources)
        out.update(copied)
    return out


def _with_copies(
    image_of: Tensor, fields: dict[str, Tensor], rows: Tensor, sources: Tensor
) -> tuple[Tensor, dict[str, Tensor]]:
    """Entries ``image_of: Tensor[N]`` (each one's image row) and their ``fields`` (``Tensor[N, ...]`` each), with
    a copy of every entry of row ``sources[k]`` given to row ``rows[k]``, all sorted by image, stably: Ultralytics'
    ``preprocess`` reads each image's targets as one contiguous run, and a row's own entries stay before the
    copies it receives."""
    which, k = (image_of.long().view(-1, 1) == sources.view(1, -1)).nonzero(as_tuple=True)
    into = rows[k]
    order = torch.cat((image_of.long(), into)).argsort(stable=True)
    extended = torch.cat((image_of, into.to(image_of.dtype)))[order]
    return extended, {name: torch.cat((v, v[which]))[order] for name, v in fields.items()}


def mix_labeled(
    batch: dict,
    probability: float,
    generator: torch.Generator | None = None,
    ratio: float = 0.5,
    max_overlap: float | None = None,
) -> dict:
    """Pseudo-mixup's blend on labeled images alone: each image of ``batch`` is, with probability ``probability``,
    blended with another one of the batch (a random cycle, as :func:`draw_partners` gives pseudo-labeled images)
    and takes its labels too. The augmentation-only control of a pseudo-mixup arm (``semi.labeled_mixup``).

    Args:
        batch: Ultralytics' preprocessed batch (``img: Tensor[B, 3, H, W]``, ``batch_idx: Tensor[N]``,
            ``cls: Tensor[N, 1]``, ``bboxes: Tensor[N, 4]`` cxcywh normalised); its images are blended in place.
        probability: in [0, 1]. generator: the draws' generator (``None``: torch's global one).
        ratio: each blended image's own share, in (0, 1].
        max_overlap: the object-aware rule pseudo-mixup applies (:func:`draw_blend_partners`); ``None``: any partner.
    """
    unlabeled = with_num_labeled(batch, 0)
    partners, _ = draw_blend_partners(unlabeled, probability, "pseudo", generator, max_overlap)
    return with_num_labeled(mix_pseudo_labeled(unlabeled, partners, ratio), None)
