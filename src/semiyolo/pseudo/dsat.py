"""The F1-optimal score threshold behind DSAT (S4OD, Zhang et al. 2022)."""

from __future__ import annotations

import torch
from torch import Tensor


def f1_optimal_threshold(scores: Tensor, is_tp: Tensor, n_gt: int) -> float | None:
    """The score threshold ``t`` maximising F1 of the predictions with ``score >= t``.

    Args:
        scores: ``Tensor[P]`` prediction scores. is_tp: ``Tensor[P]`` bool, whether each is a true positive.
        n_gt: number of ground-truth objects (> 0).

    Returns:
        The score of the last prediction kept at the optimum (ties in F1 go to the higher threshold); 1.0
        (keep nothing) when no prediction is a true positive; ``None`` when there are no predictions.
    """
    if n_gt <= 0:
        raise ValueError(f"n_gt must be > 0, got {n_gt}")
    if scores.numel() == 0:
        return None
    order = scores.argsort(descending=True)
    tp = is_tp[order].float().cumsum(0)
    kept = torch.arange(1, scores.numel() + 1, dtype=torch.float32, device=scores.device)
    f1 = 2 * tp / (kept + n_gt)  # 2 P R / (P + R) with P = tp / kept, R = tp / n_gt
    best = int(torch.argmax(f1))  # first (highest-threshold) maximum
    if f1[best] == 0:
        return 1.0
    return float(scores[order][best])
