"""The semi-supervised loss: the penalised criterion on the labeled images of a batch, plus ``lambda_unsup``
times the same criterion on the pseudo-labeled ones."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .criterion import penalized_criteria

UNSUPERVISED_PREFIX = "u_"


def _slice(obj: Any, part: slice) -> Any:
    """The batch rows ``part`` of a (nested) head output: tensors, lists and dicts of them."""
    if isinstance(obj, Tensor):
        return obj[part]
    if isinstance(obj, dict):
        return {k: _slice(v, part) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_slice(v, part) for v in obj)
    return obj


def split_batch(batch: dict[str, Tensor], num_labeled: int) -> tuple[dict, dict]:
    """Targets of the labeled images and of the pseudo-labeled ones (their image indices restarted at 0)."""
    labeled = batch["batch_idx"] < num_labeled
    parts = []
    for mask, offset in ((labeled, 0), (~labeled, num_labeled)):
        parts.append(
            {"batch_idx": batch["batch_idx"][mask] - offset, "cls": batch["cls"][mask], "bboxes": batch["bboxes"][mask]}
        )
    return parts[0], parts[1]


class SemiSupervisedLoss:
    """``criterion(labeled) + lambda_unsup * criterion(pseudo-labeled)``.

    A batch carries ``num_labeled``: the first ``num_labeled`` images are labeled, the rest are the strong
    views of unlabeled images with the teacher's pseudo-labels. Without it (burn-in, validation) the whole batch
    is labeled. Loss items are the criterion's, then the same names prefixed ``u_`` for the pseudo-labeled part,
    unweighted (zeros when there is none), so that results.csv keeps one set of columns for the whole run.

    Normalisation: Ultralytics divides the classification and box sums by the batch's total target score, so a
    pseudo-labeled part with few pseudo-labels (a teacher that misses objects, or none at all) would weigh
    its background many times more than a labeled batch does, and the student learns to suppress detections
    (which the teacher, its average, then inherits). With ``density_floor`` (default), the pseudo-labeled
    part's normaliser is at least the labeled part's, scaled by the ratio of image counts: an unlabeled image
    never weighs more than a labeled image with the labeled images' object density.
    """

    def __init__(self, criterion, lambda_unsup: float = 1.0, density_floor: bool = True) -> None:
        self.criterion, self.lambda_unsup, self.density_floor = criterion, float(lambda_unsup), density_floor

    def update(self) -> None:  # Ultralytics calls this on E2E criteria once per epoch
        if hasattr(self.criterion, "update"):
            self.criterion.update()

    def __call__(self, preds: Any, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        preds = preds[1] if isinstance(preds, tuple) else preds
        total = batch["img"].shape[0]
        num_labeled = int(batch.get("num_labeled", total))
        if num_labeled >= total:
            loss, items = self.criterion(preds, batch)
            return loss, {**items, **{UNSUPERVISED_PREFIX + k: torch.zeros_like(v) for k, v in items.items()}}
        labeled, pseudo = split_batch(batch, num_labeled)
        loss, items = self.criterion(_slice(preds, slice(0, num_labeled)), labeled)
        u_loss, u_items = self._unsupervised(_slice(preds, slice(num_labeled, total)), pseudo, num_labeled, total)
        items = {**items, **{UNSUPERVISED_PREFIX + k: v for k, v in u_items.items()}}
        return loss + self.lambda_unsup * u_loss, items

    def _unsupervised(self, preds: Any, pseudo: dict[str, Tensor], num_labeled: int, total: int):
        parts = penalized_criteria(self.criterion) if self.density_floor else []
        for c in parts:
            c.normalizer_floor = c.normalizer * (total - num_labeled) / num_labeled
        try:
            return self.criterion(preds, pseudo)
        finally:
            for c in parts:
                c.normalizer_floor = None
