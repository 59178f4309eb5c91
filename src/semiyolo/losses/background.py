"""Background penalty on anchors that the assigner left without a target (docs/spec.md §3).

- ``mode="max"``: ``L_bg_i = max_c sigmoid(x_i^c)``; since sigmoid is increasing this is
  ``sigmoid(max_c x_i^c)``, computed that way (one reduction, then a sigmoid on ``(B, A)``).
- ``mode="focal"``: a hard-negative focal penalty ``L_bg_i = -sum_c sigma^gamma log(1 - sigma)``. The source
  document writes ``(1 - sigma)^gamma``, which down-weights exactly the confident false positives it means to
  punish; ``sigma^gamma`` is the form with the stated intent (docs/spec.md §3.2). ``-log(1 - sigma) =
  softplus(x)``.

The weight ``lambda_bg`` is the caller's (the criterion and its schedule own it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ._common import as_float32, check_choice, check_ndim, check_reduction

BACKGROUND_MODES = ("max", "focal")
PENALTY_MODES = (*BACKGROUND_MODES, "none")  # a criterion's choices: "none" turns the penalty off
PENALTY_NORMALIZATIONS = ("bce", "bg_mean", "joint")  # how a criterion normalises it (docs/spec.md §3.3)


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
    """``(sum BCE(x, y), sum_bg max_c sigmoid(x))`` with ``y`` non-zero on foreground rows only.

    Works on any memory layout of ``x`` (Ultralytics' scores are a ``(B, C, A)`` tensor seen as ``(B, A, C)``):
    the dense work is ``softplus(x)`` forward and ``p g`` backward, both in ``x``'s layout; the targets and the
    penalty's gradient (one class per anchor, the arg-max) are applied sparsely.
    """

    @staticmethod
    def forward(ctx, logits, probs, fg_index, fg_targets, background, with_penalty):
        fg_logits = logits[fg_index]
        bce_sum = F.softplus(logits).sum() - (fg_logits * fg_targets).sum()
        if with_penalty:
            top_prob, top_class = probs.max(dim=-1)
            penalty_sum = torch.dot(top_prob.reshape(-1), background.reshape(-1))
        else:
            top_prob = top_class = None
            penalty_sum = bce_sum.new_zeros(())
        ctx.fg_index = fg_index
        ctx.save_for_backward(probs, fg_targets, top_prob, top_class, background)
        return bce_sum, penalty_sum

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_bce, grad_penalty):
        probs, fg_targets, top_prob, top_class, background = ctx.saved_tensors
        grad = probs * grad_bce
        grad[ctx.fg_index] = (probs[ctx.fg_index] - fg_targets) * grad_bce
        if top_prob is not None:
            penalty_grad = top_prob * (1 - top_prob) * background * grad_penalty
            grad.scatter_add_(-1, top_class.unsqueeze(-1), penalty_grad.unsqueeze(-1))
        return grad, None, None, None, None, None


def bce_and_background_sums(
    logits: Tensor,
    foreground_mask: Tensor,
    foreground_targets: Tensor,
    probs: Tensor | None = None,
    with_penalty: bool = True,
) -> tuple[Tensor, Tensor]:
    """Summed BCE of a dense detector's class logits and the summed ``max``-mode background penalty, fused.

    The target is ``foreground_targets`` on foreground anchors and 0 elsewhere (a TAL target); the penalty
    applies to the other anchors. Equal in value and gradient to
    ``binary_cross_entropy_with_logits(logits, dense_targets, reduction="sum")`` and
    ``background_penalty(logits, ~foreground_mask, "max", reduction="sum")``, at less than the cost of the
    BCE alone: no dense target is read, and ``logits`` may be a strided view (no contiguous copy is made).

    Args:
        logits: ``Tensor[B, A, C]``, any strides; half and bfloat16 are computed in float32.
        foreground_mask: ``Tensor[B, A]`` bool.
        foreground_targets: ``Tensor[N_fg, C]``, the targets of the foreground anchors in the order of
            ``foreground_mask.nonzero()`` (i.e. ``dense_targets[foreground_mask]``).
        probs: ``sigmoid(logits)`` if the caller already has it (a detector's assigner needs it too).
        with_penalty: ``False`` skips the penalty's pass (its sum is then 0).

    Returns:
        ``(bce_sum, penalty_sum)``, two scalars attached to the graph of ``logits``.
    """
    check_ndim("logits", logits, 3, "(B, A, C)")
    if foreground_mask.shape != logits.shape[:2] or foreground_mask.dtype != torch.bool:
        raise ValueError(
            f"foreground_mask must be a bool tensor of shape {tuple(logits.shape[:2])}, "
            f"got {foreground_mask.dtype} {tuple(foreground_mask.shape)}"
        )
    fg_index = foreground_mask.nonzero(as_tuple=True)
    if foreground_targets.shape != (fg_index[0].numel(), logits.shape[-1]):
        raise ValueError(
            f"foreground_targets must have shape (N_fg, C) = ({fg_index[0].numel()}, {logits.shape[-1]}), "
            f"got {tuple(foreground_targets.shape)}"
        )
    logits = as_float32(logits)  # a custom function is not autocast: half logits would be summed in half
    probs = torch.sigmoid(logits.detach()) if probs is None else probs.to(logits.dtype)
    background = (~foreground_mask).to(logits.dtype)
    return _BCEAndMaxPenaltySums.apply(
        logits, probs.detach(), fg_index, foreground_targets.to(logits.dtype), background, with_penalty
    )
