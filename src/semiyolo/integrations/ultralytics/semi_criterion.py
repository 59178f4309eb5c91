"""The semi-supervised loss: the penalised criterion on the labeled images of a batch, plus ``lambda_unsup``
times the same criterion on the pseudo-labeled ones, whose normaliser is floored by the labeled part's."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from ...batch import DENSE_KEY, num_labeled, split_batch
from .criterion import BackgroundPenaltyDetectionLoss, inner_criteria

if TYPE_CHECKING:
    from ...pseudo import TrustWeights

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


def _labeled_positives(assignment, num_labeled: int) -> int:
    """The labeled images' foreground anchors per image (rounded up): the positives of each image with dense
    pseudo-targets (:mod:`semiyolo.pseudo.dense`)."""
    return math.ceil(int(assignment.fg_mask.sum()) / max(num_labeled, 1))


class SemiSupervisedLoss:
    """``criterion(labeled) + lambda_unsup * criterion(pseudo-labeled)`` for one detection head.

    A batch carries ``num_labeled``: the first ``num_labeled`` images are labeled, the rest are the strong
    views of unlabeled images with the teacher's pseudo-labels. Without it (burn-in, validation) the whole batch
    is labeled. Loss items are the criterion's, then the same names prefixed ``u_`` for the pseudo-labeled part,
    unweighted (zeros when there is none), so that results.csv keeps one set of columns for the whole run.

    Normalisation: Ultralytics divides the classification and box sums by the batch's total target score, so a
    pseudo-labeled part with few pseudo-labels (a teacher that misses objects, or none at all) would weigh
    its background many times more than a labeled batch does, and the student learns to suppress detections
    (which the teacher, its average, then inherits). With ``density_floor`` (default), the pseudo-labeled
    part's normaliser is at least the labeled part's, scaled by the ratio of image counts:
    ``max(N_u, N_l * B_u / B_l)``, so an unlabeled image never weighs more than a labeled image with the labeled
    images' object density. The floor is an argument of the criterion's call, nothing is stored on it.

    It has Ultralytics' criterion interface (``__call__``, ``loss``, ``parse_output``, ``hyp``), so an
    end-to-end head wraps one per branch: ``build_criterion(model, wrap=partial(SemiSupervisedLoss, ...))``
    gives ``E2ELoss`` over two of them, each branch floored by its own labeled normaliser.

    Trust: with ``semi.pseudo_trust`` the pseudo-labeled part's anchors are weighed by the teacher's measured
    trust (:func:`~.criterion.weigh_by_trust`, set with :func:`set_trust`); ``None``: unweighted.

    Args:
        criterion: a :class:`~.criterion.BackgroundPenaltyDetectionLoss` (one head; not an ``E2ELoss``).
        lambda_unsup: weight of the pseudo-labeled part (>= 0); schedules change it with
            :func:`~.criterion.set_loss_weights`.
        density_floor: floor the pseudo-labeled part's normaliser as above.
    """

    weight_names = ("lambda_unsup",)

    def __init__(
        self, criterion: BackgroundPenaltyDetectionLoss, lambda_unsup: float = 1.0, density_floor: bool = True
    ) -> None:
        if not isinstance(criterion, BackgroundPenaltyDetectionLoss):
            raise TypeError(
                f"SemiSupervisedLoss wraps one head's BackgroundPenaltyDetectionLoss, got {type(criterion).__name__};"
                " for an end-to-end head use build_criterion(model, wrap=partial(SemiSupervisedLoss, ...))"
            )
        self.criterion, self.density_floor = criterion, density_floor
        self.trust: TrustWeights | None = None
        self.set_weights(lambda_unsup=lambda_unsup)

    def set_weights(self, lambda_unsup: float) -> None:
        """Set the pseudo-labeled part's weight (>= 0); :func:`~.criterion.set_loss_weights` calls this."""
        if not lambda_unsup >= 0:
            raise ValueError(f"lambda_unsup must be >= 0, got {lambda_unsup!r}")
        self.lambda_unsup = float(lambda_unsup)

    @property
    def hyp(self):
        """The inner criterion's hyperparameters (``E2ELoss`` reads ``epochs`` from them)."""
        return self.criterion.hyp

    @property
    def loss_names(self) -> tuple[str, ...]:
        names = self.criterion.loss_names
        return (*names, *(UNSUPERVISED_PREFIX + n for n in names))

    def parse_output(self, preds: Any) -> dict[str, Tensor]:
        return self.criterion.parse_output(preds)

    def __call__(self, preds: Any, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        return self.loss(self.parse_output(preds), batch)

    def loss(self, preds: dict[str, Tensor], batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        """``(Tensor[4] * B, items)`` as ``v8DetectionLoss.loss``: ``L_l B_l + lambda_unsup L_u B_u``, with
        ``L_u`` normalised by ``max(N_u, N_l B_u / B_l)`` under ``density_floor``."""
        total = preds["boxes"].shape[0]
        n_labeled = num_labeled(batch, default=total)
        if n_labeled >= total:
            loss, items = self.criterion.loss(preds, batch)
            return loss, {**items, **{UNSUPERVISED_PREFIX + k: torch.zeros_like(v) for k, v in items.items()}}
        labeled, pseudo = split_batch(batch, n_labeled)
        loss, items, _, assignment = self.criterion.forward(_slice(preds, slice(0, n_labeled)), labeled)
        floor = assignment.normalizer * (total - n_labeled) / n_labeled if self.density_floor else None
        dense_k = _labeled_positives(assignment, n_labeled) if DENSE_KEY in pseudo else None
        u_part = _slice(preds, slice(n_labeled, total))
        u_loss, u_items = self.criterion.loss(u_part, pseudo, normalizer_floor=floor, dense_k=dense_k, trust=self.trust)
        items = {**items, **{UNSUPERVISED_PREFIX + k: v for k, v in u_items.items()}}
        return loss * n_labeled + self.lambda_unsup * u_loss, items


def set_trust(criterion, trust: TrustWeights | None) -> None:
    """Give every :class:`SemiSupervisedLoss` inside ``criterion`` (itself, or an ``E2ELoss``'s two) the trust
    estimate's weights for its pseudo-labeled part; ``None``: unweighted."""
    for c in inner_criteria(criterion):
        if isinstance(c, SemiSupervisedLoss):
            c.trust = trust
