"""The teacher's detections kept between visits of an unlabeled image (torch only): issue 31, item 3, "label each
unlabeled image less often than every step and keep its labels".

A teacher with several views (mirror, larger scales) costs a forward per view on every unlabeled image of every
step. Its detections of an image change slowly, as the teacher follows the student by a slow EMA, so they can be
kept and served again: an image is labeled on its first visit and then on every ``every``-th visit, and served
from the store in between. What is kept is the teacher's output after NMS and before the filters (boxes, scores,
classes, DFL logits, spread, and each view's own detections where the agreement needs them), in the weak view's
pixels: the filters, tiers and strong view run on every visit as usual, so DSAT's thresholds and the strong view's
draws stay current. The weak view must be the same on every visit (the letterbox view; not Ultralytics' random
mosaic), which the trainer checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from typing import Any

import torch

from ..pseudo import Detections

Entry = tuple[Detections, list[Detections]]  # an image's detections, and each view's own (empty without views)


class LabelStore:
    """Detections of unlabeled images by key (the image's path), with their visit counts.

    Args:
        every: an image is labeled on visits ``1, 1 + every, 1 + 2 every, ...`` and served from the store on the
            others; 1: labeled on every visit (nothing is kept).
    """

    def __init__(self, every: int = 1) -> None:
        if every < 1:
            raise ValueError(f"every must be a positive number of visits, got {every!r}")
        self.every = every
        self.visits: dict[str, int] = {}
        self.entries: dict[str, Entry] = {}
        self.floor: float | None = None  # the candidates' score floor the kept detections were made at

    def at_floor(self, floor: float) -> None:
        """Forget every kept detection when the labeler's candidate floor moved (``semi.negative_coverage`` sets it
        each epoch): detections made at another floor would teach other ignore regions."""
        if floor != self.floor:
            self.entries.clear()
            self.floor = floor

    def due(self, keys: Sequence[str]) -> list[bool]:
        """Count one visit of each of ``keys`` and say, per key, whether the teacher labels it now (its visit is
        due, or the store has nothing for it)."""
        found = []
        for key in keys:
            visit = self.visits.get(key, 0)
            self.visits[key] = visit + 1
            found.append(visit % self.every == 0 or key not in self.entries)
        return found

    def put(self, key: str, entry: Entry) -> None:
        """Keep ``entry`` for ``key`` (on the CPU), unless every visit is labeled anyway."""
        if self.every > 1:
            self.entries[key] = (_cpu(entry[0]), [_cpu(d) for d in entry[1]])

    def get(self, key: str, device: torch.device | str = "cpu") -> Entry:
        detections, views = self.entries[key]
        return _to(detections, device), [_to(d, device) for d in views]

    def state_dict(self) -> dict[str, Any]:
        return {"every": self.every, "visits": dict(self.visits), "entries": dict(self.entries), "floor": self.floor}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.every, self.visits, self.floor = int(state["every"]), dict(state["visits"]), state.get("floor")
        self.entries = {k: (_cpu(d), [_cpu(v) for v in views]) for k, (d, views) in state["entries"].items()}


def _to(detections: Detections, device: torch.device | str) -> Detections:
    values = {f.name: getattr(detections, f.name) for f in fields(detections)}
    return Detections(**{k: v.to(device) if v is not None else None for k, v in values.items()})


def _cpu(detections: Detections) -> Detections:
    return _to(detections, "cpu")


def merge_labeled(due: Sequence[bool], labeled: Sequence[Entry], served: Sequence[Entry]) -> list[Entry]:
    """The batch's entries in its order: the ``labeled`` ones where ``due``, the ``served`` ones elsewhere, each
    list in the order of its images."""
    labeled_iter, served_iter = iter(labeled), iter(served)
    merged = [next(labeled_iter) if now else next(served_iter) for now in due]
    if next(labeled_iter, None) is not None or next(served_iter, None) is not None:
        raise ValueError(f"{len(labeled)} labeled and {len(served)} served entries for {len(due)} images")
    return merged
