"""Background penalty on anchors that the assigner left without a target (SPEC section 3, document 000).

- ``mode="max"`` (document 000): ``L_bg_i = max_c sigmoid(x_i^c)``; since sigmoid is increasing this is
  ``sigmoid(max_c x_i^c)``, computed that way (one reduction, then a sigmoid on ``(B, A)``).
- ``mode="focal"``: a hard-negative focal penalty ``L_bg_i = -sum_c sigma^gamma log(1 - sigma)``. Document
  000 writes ``(1 - sigma)^gamma``, which down-weights exactly the confident false positives it means to
  punish; ``sigma^gamma`` is the form with the stated intent. ``-log(1 - sigma) = softplus(x)``.

The weight ``lambda_bg`` is the caller's (the criterion and its schedule own it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ._common import as_float32, check_choice, check_ndim, check_reduction

BACKGROUND_MODES = ("max", "focal")


def background_penalty(
    logits: Tensor,
    background_mask: Tensor,
    mode: str = "max",
    gamma: float = 2.0,
    reduction: str = "sum",
) -> Tensor:
    """Penalty on confident class scores of background anchors.

    Args:
        logits: ``Tensor[B, A, C]`` class logits.
        background_mask: ``Tensor[B, A]`` bool, True where the anchor has no assigned target.
        mode: ``"max" | "focal"`` (see the module docstring).
        gamma: exponent of ``sigma`` in the focal mode (>= 0).
        reduction: ``"none"`` gives ``Tensor[B, A]`` with zeros off the background; ``"sum"`` sums over
            background anchors; ``"mean"`` averages over background anchors (0 when there are none).

    Returns:
        float32 (float64 for float64 logits); always attached to the graph of ``logits``.
    """
    check_reduction(reduction)
    check_choice("mode", mode, BACKGROUND_MODES)
    check_ndim("logits", logits, 3, "(B, A, C)")
    if background_mask.shape != logits.shape[:2]:
        raise ValueError(
            f"background_mask must have shape (B, A) = {tuple(logits.shape[:2])}, got {tuple(background_mask.shape)}"
        )
    if background_mask.dtype != torch.bool:
        raise ValueError(f"background_mask must be a bool tensor, got {background_mask.dtype}")
    if not gamma >= 0:
        raise ValueError(f"gamma must be >= 0, got {gamma!r}")
    logits = as_float32(logits)
    if logits.shape[-1] == 0:
        per_anchor = logits.sum(-1) * 0.0
    elif mode == "max":
        per_anchor = torch.sigmoid(logits.amax(dim=-1))
    else:
        per_anchor = (torch.sigmoid(logits).pow(gamma) * F.softplus(logits)).sum(dim=-1)
    per_anchor = torch.where(background_mask, per_anchor, 0.0)
    if reduction == "none":
        return per_anchor
    total = per_anchor.sum()
    if reduction == "sum":
        return total
    return total / background_mask.sum().clamp(min=1)
