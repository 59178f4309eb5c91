"""Pseudo-mixup: the strong views of pseudo-labeled images blended with other images of the batch, with both
images' targets (torch only).

After MixPL (Chen et al., "Mixed Pseudo Labels for Semi-Supervised Object Detection", 2023, its "Pseudo Mixup"):
an image the teacher labeled is blended half and half with another one and takes the union of their labels, as
Ultralytics' ``mixup`` does for labeled images. The partner is another pseudo-labeled image (MixPL's choice) or a
labeled one, whose true labels then join the pseudo-labeled part. The blended image stays in the pseudo-labeled part
of the batch (weighted by ``lambda_unsup``); the labeled images themselves are left as they are.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..batch import IGNORE_KEYS, PER_TARGET_KEYS, num_labeled, with_num_labeled

MIXUP_PARTNERS = ("pseudo", "labeled")  # semi.mixup_partners


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
    check_mixup(probability, partners)
    blended = torch.rand(num_pseudo, generator=generator) < probability
    if partners == "labeled":
        rows = torch.randint(max(num_labeled, 1), (num_pseudo,), generator=generator)
        possible = num_labeled > 0
    else:
        cycle = torch.randperm(num_pseudo, generator=generator)
        rows = torch.empty(num_pseudo, dtype=torch.long)
        rows[cycle] = cycle.roll(-1) + num_labeled  # cycle[k]'s partner is cycle[k + 1]
        possible = num_pseudo > 1
    none = torch.full_like(rows, -1)
    return torch.where(blended, rows, none) if possible else none


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


def mix_labeled(batch: dict, probability: float, generator: torch.Generator | None = None, ratio: float = 0.5) -> dict:
    """Pseudo-mixup's blend on labeled images alone: each image of ``batch`` is, with probability ``probability``,
    blended with another one of the batch (a random cycle, as :func:`draw_partners` gives pseudo-labeled images)
    and takes its labels too. The augmentation-only control of a pseudo-mixup arm (``semi.labeled_mixup``).

    Args:
        batch: Ultralytics' preprocessed batch (``img: Tensor[B, 3, H, W]``, ``batch_idx: Tensor[N]``,
            ``cls: Tensor[N, 1]``, ``bboxes: Tensor[N, 4]`` cxcywh normalised); its images are blended in place.
        probability: in [0, 1]. generator: the draws' generator (``None``: torch's global one).
        ratio: each blended image's own share, in (0, 1].
    """
    rows = batch["img"].shape[0]
    partners = draw_partners(0, rows, probability, "pseudo", generator)
    return with_num_labeled(mix_pseudo_labeled(with_num_labeled(batch, 0), partners, ratio), None)
