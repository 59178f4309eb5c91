"""The teacher's outputs on an image averaged with its outputs on the image's left-right mirror.

A flip ensemble of the teacher, after Humble Teacher's (Tang et al., CVPR 2021, "Humble Teachers Teach Better
Students for Semi-Supervised Object Detection"): the mirror's outputs are mapped back onto the image's anchors
(each pyramid level's columns reversed, box centres mirrored, the left and right DFL distributions swapped) and
the two are averaged anchor by anchor, before NMS. The model must have been trained on mirrored
images (Ultralytics' ``fliplr`` > 0) for its mirror outputs to mean anything.
"""

from __future__ import annotations

import torch
from torch import Tensor


def mirrored_anchor_order(level_shapes: list[tuple[int, int]], device: torch.device | None = None) -> Tensor:
    """``Tensor[A]``: for each anchor of an image, the index of the same place in its left-right mirror.

    Anchors are laid out as Ultralytics' ``make_anchors`` lays them: level by level, each level's ``(h, w)`` grid
    row by row. Mirroring reverses the columns of each row, so the order is an involution (its own inverse)."""
    order, offset = [], 0
    for h, w in level_shapes:
        order.append(torch.arange(h * w, device=device).view(h, w).flip(1).reshape(-1) + offset)
        offset += h * w
    return torch.cat(order) if order else torch.zeros(0, dtype=torch.long, device=device)


def mirror_views(decoded: Tensor, raw: dict, width: int) -> list[tuple[Tensor, dict]]:
    """Each view of a detection head's outputs on ``2B`` images (``B`` images, then their mirrors), on the images'
    anchors: ``[(image's decoded, raw), (mirror's decoded, raw) mapped back]``.

    Args:
        decoded: ``Tensor[2B, 4 + C, A]``, the decoded inference output: ``cxcywh`` boxes in pixels, then class
            probabilities.
        raw: the head's training outputs, ``feats`` (one ``Tensor[2B, ch, h, w]`` per level: they give the
            anchor grid) and, where present, ``boxes`` (DFL logits ``Tensor[2B, 4 reg_max, A]`` in ``l, t, r, b``
            order) and ``scores`` (class logits ``Tensor[2B, C, A]``).
        width: the images' width in pixels (the mirror maps ``cx`` to ``width - cx``).

    Returns:
        Two ``(decoded Tensor[B, 4 + C, A], raw)``: the image's own outputs, and the mirror's with each level's
        columns reversed, ``cx -> width - cx`` and the left and right DFL sides swapped; ``feats`` are the images'
        own in both.
    """
    batch = decoded.shape[0] // 2
    if decoded.shape[0] != 2 * batch:
        raise ValueError(f"the flip ensemble needs images then their mirrors (an even batch), got {decoded.shape[0]}")
    order = mirrored_anchor_order([tuple(f.shape[-2:]) for f in raw["feats"]], decoded.device)
    if order.numel() != decoded.shape[-1]:
        raise ValueError(f"the feature maps give {order.numel()} anchors, the decoded output {decoded.shape[-1]}")
    back = decoded[batch:, :, order]  # advanced indexing: a new tensor, so mirroring its centres in place is safe
    back[:, 0] = width - back[:, 0]
    feats = [f[:batch] for f in raw["feats"]]
    own, mirrored = {"feats": feats}, {"feats": feats}
    if "boxes" in raw:
        sides = raw["boxes"][batch:, :, order].unflatten(1, (4, -1))  # (B, 4, reg_max, A): l, t, r, b
        own["boxes"], mirrored["boxes"] = raw["boxes"][:batch], sides[:, [2, 1, 0, 3]].flatten(1, 2)
    if "scores" in raw:
        own["scores"], mirrored["scores"] = raw["scores"][:batch], raw["scores"][batch:, :, order]
    return [(decoded[:batch], own), (back, mirrored)]


def mirror_average(decoded: Tensor, raw: dict, width: int) -> tuple[Tensor, dict]:
    """The flip ensemble of a detection head's outputs on ``2B`` images: ``B`` images, then their mirrors
    (arguments as :func:`mirror_views`').

    Returns:
        ``(decoded Tensor[B, 4 + C, A], raw)``: per anchor the mean of the image's outputs and the mirror's
        mapped back (boxes, probabilities, logits); ``feats`` are the images' own. Averaging ``cx`` and ``w`` is
        averaging the left and right distances, since both are linear in them.
    """
    return views_mean(mirror_views(decoded, raw, width))


def views_mean(views: list[tuple[Tensor, dict]]) -> tuple[Tensor, dict]:
    """The mean of two views' ``(decoded, raw)`` on the same anchors (:func:`mirror_views`'), ``feats`` the first's."""
    (own, own_raw), (back, back_raw) = views
    averaged = {"feats": own_raw["feats"]}
    averaged.update({k: (own_raw[k] + back_raw[k]) / 2 for k in ("boxes", "scores") if k in own_raw})
    return (own + back) / 2, averaged
