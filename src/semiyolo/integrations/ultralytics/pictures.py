"""Pictures of what the teacher taught: the strong views of an unlabeled batch with their pseudo-boxes by tier,
drawn by Ultralytics' own ``plot_images`` (as its ``train_batch*.jpg``)."""

from __future__ import annotations

from pathlib import Path

import torch
from ultralytics.utils.plotting import plot_images

from ...batch import REGRESS_KEY, WEIGHT_KEY, ignore_regions, num_labeled


def plot_pseudo_labels(batch: dict, names: dict[int, str], fname: Path, max_images: int = 8) -> None:
    """Draw the pseudo-labeled part of ``batch`` (images from ``num_labeled`` on) to ``fname``.

    Boxes by tier (:mod:`semiyolo.pseudo.tiers`): a reliable pseudo-label under its class name, one without box
    regression as ``<name> (class only)``, an uncertain one as ``uncertain`` (a soft target too, or not). Hard
    pseudo-labels are all reliable.
    """
    first, nc = num_labeled(batch), len(names)
    shown = torch.arange(first, min(first + max_images, batch["img"].shape[0]), device=batch["batch_idx"].device)
    targets = torch.isin(batch["batch_idx"], shown)
    if WEIGHT_KEY in batch:  # soft targets of uncertain pseudo-labels: drawn once, as their ignore regions
        targets &= batch[WEIGHT_KEY] >= 1
    cls = batch["cls"][targets].view(-1)
    if REGRESS_KEY in batch:
        cls = torch.where(batch[REGRESS_KEY][targets], cls, cls + nc)
    idx, boxes = [batch["batch_idx"][targets]], [batch["bboxes"][targets]]
    regions = ignore_regions(batch, out_fmt="cxcywh")  # normalised, as Ultralytics' plot_images reads boxes
    if regions is not None:
        uncertain = torch.isin(regions[0], shown)
        idx.append(regions[0][uncertain])
        boxes.append(regions[1][uncertain])
        cls = torch.cat((cls, torch.full((int(uncertain.sum()),), 2 * nc, device=cls.device, dtype=cls.dtype)))
    labels = {
        "img": batch["img"][shown].detach().float().cpu(),
        "batch_idx": (torch.cat(idx) - first).cpu(),
        "cls": cls.cpu(),
        "bboxes": torch.cat(boxes).float().cpu(),
    }
    tiered = {**names, **{nc + c: f"{n} (class only)" for c, n in names.items()}, 2 * nc: "uncertain"}
    plot_images(labels, fname=fname, names=tiered, threaded=False)
