"""Dense pseudo-targets (torch only): the teacher's per-anchor scores and boxes, without NMS or a score threshold.

After Dense Teacher (Zhou et al., "Dense Teacher: Dense Pseudo-Labels for Semi-supervised Object Detection",
ECCV 2022, section 3.3): on each unlabeled image, the ``k`` anchors where the teacher is most confident (by their
best class score) take the teacher's class scores as soft classification targets and its boxes as regression
targets, and every other anchor is a classification negative. The background penalty acts only where the
teacher is itself confident there is nothing (best class score below ``floor``). Rules: docs/spec.md §6.5.

``k`` is, by default, the number of foreground anchors a labeled image of the same batch gets from the
task-aligned assigner (its mean over the labeled images): as many positives as a labeled image has, whatever
the image size and object density. Dense Teacher selects a fixed share of the anchors (1 % of FCOS's on COCO);
``fraction`` gives that choice. A small fixed share was too few on the generated sets: the objects' other anchors
became negatives and pseudo-label recall fell (docs/BENCHMARKS.md, "What the measurements show").

The teacher and the student must see the same geometry (anchor ``a`` of the teacher's view is anchor ``a`` of
the student's): the student's view is photometric only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import torch
from torch import Tensor


@dataclass(frozen=True)
class DenseTargets:
    """The teacher's outputs on ``U`` unlabeled images over the head's ``A`` anchors (all levels, the head's order).

    Attributes:
        probs: ``Tensor[U, A, C]`` the teacher's class probabilities.
        boxes: ``Tensor[U, A, 4]`` its boxes, xyxy pixels.
        floor: in [0, 1): the penalty acts on anchors whose best class score is below it.
        fraction: in (0, 1], the share of each image's anchors that get targets; ``None``: the caller gives ``k``.
    """

    probs: Tensor
    boxes: Tensor
    floor: float
    fraction: float | None = None

    def __post_init__(self) -> None:
        if self.probs.ndim != 3 or self.boxes.shape != (*self.probs.shape[:2], 4):
            shapes = f"{tuple(self.probs.shape)} and {tuple(self.boxes.shape)}"
            raise ValueError(f"expected probs (U, A, C) and boxes (U, A, 4), got {shapes}")
        if self.fraction is not None and not 0 < self.fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1] or None, got {self.fraction!r}")
        if not 0 <= self.floor < 1:
            raise ValueError(f"floor must be in [0, 1), got {self.floor!r}")

    @cached_property
    def best(self) -> Tensor:
        """``Tensor[U, A]``: each anchor's best class score (computed once: the selection and the penalty's
        region both read it)."""
        return self.probs.max(-1).values if self.probs.shape[-1] else self.probs.new_zeros(self.probs.shape[:2])

    def anchors_per_image(self, k: int | None = None) -> int:
        """``ceil(fraction * A)`` with a ``fraction``, else ``k``; within ``[1, A]``."""
        if self.fraction is not None:
            k = math.ceil(self.fraction * self.probs.shape[1])
        if k is None:
            raise ValueError("dense targets without a fraction need k, the positives per image")
        return min(max(int(k), 1), self.probs.shape[1])

    def selected(self, k: int | None = None) -> Tensor:
        """``Tensor[U, A]`` bool: each image's top :meth:`anchors_per_image` anchors by best class score."""
        best = self.best
        chosen = torch.zeros_like(best, dtype=torch.bool)
        if best.numel():
            chosen.scatter_(1, best.topk(self.anchors_per_image(k), dim=1).indices, True)
        return chosen

    def penalized(self, selected: Tensor) -> Tensor:
        """``Tensor[U, A]`` bool: the unselected anchors the teacher is confident are background."""
        return ~selected & (self.best < self.floor)


def uses_dense_targets(pseudo_targets: str) -> bool:
    """Whether ``semi.pseudo_targets`` selects dense targets, and with them a student that sees the teacher's
    geometry: the teacher's anchor ``a`` of an image is the student's anchor ``a`` of that image."""
    return pseudo_targets == "dense"


def dense_geometry_conflict(
    pseudo_targets: str,
    *,
    pseudo_mixup: float = 0.0,
    pseudo_mosaic: float = 0.0,
    teacher_scale: float = 1.0,
    teacher_fusion: str = "anchor",
    relabel_every: int = 1,
    oracle_pseudo_labels: bool | str = False,
    multi_scale: float = 0.0,
    view_moves_boxes: bool = False,
) -> str | None:
    """The one rule of the dense targets' layout: why ``pseudo_targets`` cannot train with these settings, or
    ``None``. Under :func:`uses_dense_targets`, the teacher and the student see one image at one size, so no
    blend (``semi.pseudo_mixup``), no mosaic (``semi.pseudo_mosaic``), no resize of the teacher's view
    (``semi.teacher_scale``), no multi-scale (``train.multi_scale``) and no strong view that moves boxes (flip,
    scale, shift)."""
    if not uses_dense_targets(pseudo_targets):
        return None
    conflicts = (
        ("pseudo_mixup", pseudo_mixup, pseudo_mixup > 0, "they cannot be blended: set pseudo_mixup to 0"),
        ("pseudo_mosaic", pseudo_mosaic, pseudo_mosaic > 0, "they cannot be tiled: set pseudo_mosaic to 0"),
        ("teacher_scale", teacher_scale, teacher_scale != 1, "the teacher must see the student's size (scale 1)"),
        ("teacher_fusion", teacher_fusion, teacher_fusion != "anchor", "they need anchors: set teacher_fusion anchor"),
        ("relabel_every", relabel_every, relabel_every != 1, "they are the teacher's output of the step: set 1"),
        (
            "oracle_pseudo_labels",
            oracle_pseudo_labels,
            bool(oracle_pseudo_labels),
            "hidden labels are boxes: set false",
        ),
        ("train.multi_scale", multi_scale, bool(multi_scale), "both views need one size: set train.multi_scale to 0"),
        ("strong view", "flip, scale or shift", view_moves_boxes, "they need a strong view that keeps the geometry"),
    )
    for setting, value, conflict, remedy in conflicts:
        if conflict:
            other_section = "semi." if "." in setting else ""
            return (
                f"{setting}: {value} with {other_section}pseudo_targets: dense; dense targets map the teacher's "
                f"anchors to the student's one image at a time, so {remedy}"
            )
    return None
