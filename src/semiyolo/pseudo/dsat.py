"""The F-beta-optimal score threshold behind DSAT (S4OD, Zhang et al. 2022, which uses F1; docs/spec.md §6.3)."""

from __future__ import annotations

import torch
from torch import Tensor


def f1_optimal_threshold(scores: Tensor, is_tp: Tensor, n_gt: int, beta: float = 1.0) -> float | None:
    """The score threshold ``t`` maximising F-beta of the predictions with ``score >= t``:
    ``F_beta = (1 + beta^2) P R / (beta^2 P + R)``, F1 at ``beta = 1``; ``beta > 1`` weighs a miss more than a
    false positive (a missed object becomes a background target in the student's loss).

    Args:
        scores: ``Tensor[P]`` prediction scores. is_tp: ``Tensor[P]`` bool, whether each is a true positive.
        n_gt: number of ground-truth objects (> 0).
        beta: > 0.

    Returns:
        The score of the last prediction kept at the optimum (ties in F1 go to the higher threshold); 1.0
        (keep nothing) when no prediction is a true positive; ``None`` when there are no predictions.
    """
    if n_gt <= 0:
        raise ValueError(f"n_gt must be > 0, got {n_gt}")
    if not beta > 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    if scores.numel() == 0:
        return None
    order = scores.argsort(descending=True)
    tp = is_tp[order].float().cumsum(0)
    kept = torch.arange(1, scores.numel() + 1, dtype=torch.float32, device=scores.device)
    b2 = beta * beta
    f1 = (1 + b2) * tp / (kept + b2 * n_gt)  # (1 + b2) P R / (b2 P + R) with P = tp / kept, R = tp / n_gt
    best = int(torch.argmax(f1))  # first (highest-threshold) maximum
    if f1[best] == 0:
        return 1.0
    return float(scores[order][best])
