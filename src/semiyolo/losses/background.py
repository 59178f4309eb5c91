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


class _BCEAndMaxPenaltySums(torch.autograd.Function):
    """``(sum BCE(x, y), sum_bg max_c sigmoid(x))`` in one forward and one dense backward.

    The penalty's gradient is non-zero at one class per anchor (the arg-max), so the backward scatters it
    into BCE's dense gradient ``(p - y) g`` instead of materialising a second dense tensor.
    """

    @staticmethod
    def forward(ctx, logits: Tensor, probs: Tensor, targets: Tensor, background: Tensor):
        flat_logits = logits.reshape(-1)
        bce_sum = F.softplus(flat_logits).sum() - torch.dot(flat_logits, targets.reshape(-1))
        top_prob, top_class = probs.max(dim=-1)
        penalty_sum = torch.dot(top_prob.reshape(-1), background.reshape(-1))
        ctx.save_for_backward(probs, targets, top_prob, top_class, background)
        return bce_sum, penalty_sum

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_bce: Tensor, grad_penalty: Tensor):
        probs, targets, top_prob, top_class, background = ctx.saved_tensors
        grad = torch.sub(probs, targets).mul_(grad_bce)
        penalty_grad = top_prob * (1 - top_prob) * background * grad_penalty
        grad.scatter_add_(-1, top_class.unsqueeze(-1), penalty_grad.unsqueeze(-1))
        return grad, None, None, None


def bce_and_background_sums(
    logits: Tensor, targets: Tensor, background_mask: Tensor, probs: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Summed BCE of ``logits`` against ``targets`` and the summed ``max``-mode background penalty, fused.

    The classification pass of a dense detector with document 000's penalty: equal to
    ``binary_cross_entropy_with_logits(logits, targets, reduction="sum")`` and
    ``background_penalty(logits, background_mask, "max", reduction="sum")`` in value and gradient, at about
    the cost of the BCE alone.

    Args:
        logits: ``Tensor[B, A, C]`` (float32 or float64; no conversion is made here).
        targets: ``Tensor[B, A, C]`` soft targets (e.g. TAL's target scores).
        background_mask: ``Tensor[B, A]`` bool.
        probs: ``sigmoid(logits)`` if the caller already has it (a detector's assigner needs it too).

    Returns:
        ``(bce_sum, penalty_sum)``, two scalars attached to the graph of ``logits``.
    """
    check_ndim("logits", logits, 3, "(B, A, C)")
    if targets.shape != logits.shape or background_mask.shape != logits.shape[:2]:
        raise ValueError(
            f"targets must have shape {tuple(logits.shape)} and background_mask {tuple(logits.shape[:2])}, "
            f"got {tuple(targets.shape)} and {tuple(background_mask.shape)}"
        )
    if logits.numel() == 0:
        zero = logits.sum() * 0.0
        return zero, zero.clone()
    if probs is None:
        probs = torch.sigmoid(logits.detach())
    background = background_mask.to(logits.dtype)
    return _BCEAndMaxPenaltySums.apply(logits.contiguous(), probs.detach(), targets.to(logits.dtype), background)
