"""Focal loss (Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017) and varifocal loss.

Notation: logits ``x``, ``p = sigmoid(x)``, targets ``y`` in [0, 1]. ``1 - p_t = p + y - 2 p y`` (for hard
targets ``p_t`` is ``p`` on positives and ``1 - p`` on negatives; for soft targets it is the linear
interpolation torchvision uses), ``alpha_t = alpha y + (1 - alpha)(1 - y)``::

    FL = -alpha_t (1 - p_t)^gamma log(p_t)        (generalised to soft y through BCE(x, y))
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ._common import as_float32, check_reduction, check_same_shape, check_unit_interval, reduce

Alpha = float | Sequence[float] | Tensor | None


def _alpha_weight(alpha: Alpha, targets: Tensor) -> Tensor | float | None:
    """``alpha_t`` for every element, or ``None`` for no weighting.

    ``alpha`` may be a float in [0, 1] (``alpha`` on positives, ``1 - alpha`` on negatives), a
    ``(pos_alpha, neg_alpha)`` pair, or a ``Tensor[C]`` of per-class weights applied to class column ``c``
    whole (for example :func:`inverse_frequency_alpha`).
    """
    if alpha is None:
        return None
    if isinstance(alpha, Tensor):
        if alpha.ndim != 1 or alpha.shape[0] != targets.shape[-1]:
            raise ValueError(
                f"alpha as a tensor must have shape (C,) = ({targets.shape[-1]},), got {tuple(alpha.shape)}"
            )
        return alpha.to(targets.dtype)
    if isinstance(alpha, (int, float)):
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be a float in [0, 1], a (pos, neg) pair or None, got {alpha!r}")
        pos, neg = float(alpha), 1.0 - float(alpha)
    else:
        pair = tuple(alpha)
        if len(pair) != 2 or any(not isinstance(a, (int, float)) or a < 0 for a in pair):
            raise ValueError(f"alpha as a pair must be (pos_alpha, neg_alpha) with both >= 0, got {alpha!r}")
        pos, neg = float(pair[0]), float(pair[1])
    if pos == neg:
        return pos
    return targets.mul(pos - neg).add_(neg)


def _check_gamma(gamma: float) -> None:
    if not gamma >= 0:
        raise ValueError(f"gamma must be >= 0, got {gamma!r}")


def _modulator_pow(q: Tensor, exponent: float) -> Tensor:
    """``q ** exponent`` for ``q >= 0``, with the integer exponents done by multiplication."""
    if exponent == 1:
        return q
    if exponent == 2:
        return q * q
    if exponent < 0:  # only reached for 0 < gamma < 1: q^(gamma-1) at q == 0 is infinite, its factor is 0
        return torch.where(q > 0, q.clamp(min=torch.finfo(q.dtype).tiny).pow(exponent), 0.0)
    return q.pow(exponent)


class _SigmoidFocal(torch.autograd.Function):
    """Elementwise focal loss with a hand-written backward: one pass forward, one pass back.

    d FL / dx = alpha_t [ (p - y) q^gamma + gamma q^(gamma - 1) (1 - 2y) p (1 - p) CE ],  q = 1 - p_t.
    """

    @staticmethod
    def forward(ctx, logits: Tensor, targets: Tensor, alpha_t, gamma: float) -> Tensor:
        p = torch.sigmoid(logits)
        ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
        # q = 1 - p_t = p (1 - y) + (1 - p) y, with 1 - p = sigmoid(-x) so that easy examples keep precision
        q = torch.sigmoid(-logits).mul_(targets).addcmul_(p, 1.0 - targets)
        if gamma != int(gamma):
            q.clamp_(min=0.0)  # rounding could make q slightly negative; pow would give NaN
        loss = ce * _modulator_pow(q, gamma) if gamma != 0 else ce.clone()
        if alpha_t is not None:
            loss.mul_(alpha_t)
        ctx.gamma = gamma
        ctx.alpha_t = alpha_t if not isinstance(alpha_t, Tensor) else None
        ctx.save_for_backward(p, targets, ce, q, *([alpha_t] if isinstance(alpha_t, Tensor) else []))
        return loss

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor):
        p, y, ce, q, *saved_alpha = ctx.saved_tensors
        gamma = ctx.gamma
        dx = p - y
        if gamma != 0:
            dx.mul_(_modulator_pow(q, gamma))
            dq = torch.addcmul(p, p, p, value=-1.0)  # p (1 - p)
            dq.mul_(torch.add(y, -0.5).mul_(-2.0 * gamma))  # gamma (1 - 2y)
            dq.mul_(ce)
            if gamma != 1:
                dq.mul_(_modulator_pow(q, gamma - 1))
            dx.add_(dq)
        alpha_t = saved_alpha[0] if saved_alpha else ctx.alpha_t
        if alpha_t is not None:
            dx.mul_(alpha_t)
        return dx.mul_(grad), None, None, None


def sigmoid_focal_loss(
    logits: Tensor,
    targets: Tensor,
    alpha: Alpha = 0.25,
    gamma: float = 2.0,
    reduction: str = "none",
) -> Tensor:
    """Sigmoid focal loss on logits, ``-alpha_t (1 - p_t)^gamma log p_t`` elementwise.

    Args:
        logits: ``Tensor[*]`` of class logits, any shape, for example ``(B, A, C)``.
        targets: ``Tensor[*]`` of the same shape, in [0, 1] (soft targets allowed).
        alpha: a float in [0, 1] (weight of positives; negatives get ``1 - alpha``), a
            ``(pos_alpha, neg_alpha)`` pair, a ``Tensor[C]`` of per-class weights on the
            last dimension, or ``None`` for no weighting. RetinaNet's default is 0.25.
        gamma: focusing parameter >= 0; ``gamma=0, alpha=None`` is binary cross-entropy.
        reduction: ``"none" | "mean" | "sum"``.

    Returns:
        The loss in float32 (float64 for float64 input); shape of ``logits`` for ``"none"``, a scalar
        otherwise. Agrees with :func:`torchvision.ops.sigmoid_focal_loss` (which has no pair or per-class
        alpha and uses ``alpha < 0`` for none).
    """
    check_reduction(reduction)
    check_same_shape("logits", logits, "targets", targets)
    _check_gamma(gamma)
    logits, targets = as_float32(logits), as_float32(targets).to(as_float32(logits).dtype)
    check_unit_interval("targets", targets)
    alpha_t = _alpha_weight(alpha, targets)
    if logits.numel() == 0:
        return reduce(logits * 0.0, reduction)
    return reduce(_SigmoidFocal.apply(logits, targets, alpha_t, float(gamma)), reduction)


def focal_loss(
    probs: Tensor,
    targets: Tensor,
    alpha: Alpha = 0.25,
    gamma: float = 2.0,
    reduction: str = "mean",
) -> Tensor:
    """Focal loss on probabilities ``p`` in [0, 1] (for heads that already apply a sigmoid).

    Same formula and arguments as :func:`sigmoid_focal_loss`; ``log`` is clamped at -100 like
    :func:`torch.nn.functional.binary_cross_entropy`. Prefer the logit form: it is stabler and faster.

    Raises:
        ValueError: if ``probs`` or ``targets`` has a value outside [0, 1].
    """
    check_reduction(reduction)
    check_same_shape("probs", probs, "targets", targets)
    _check_gamma(gamma)
    probs, targets = as_float32(probs), as_float32(targets).to(as_float32(probs).dtype)
    check_unit_interval("probs", probs)
    check_unit_interval("targets", targets)
    alpha_t = _alpha_weight(alpha, targets)
    ce = F.binary_cross_entropy(probs, targets, reduction="none")
    one_minus_pt = probs + targets - 2 * probs * targets
    loss = ce * one_minus_pt.clamp(min=0).pow(gamma) if gamma != 0 else ce
    if alpha_t is not None:
        loss = loss * alpha_t
    return reduce(loss, reduction)


def inverse_frequency_alpha(class_counts: Tensor | Sequence[int], eps: float = 1e-6) -> Tensor:
    """Per-class weights ``alpha_c = 1 / (f_c + eps)`` with ``f_c`` the frequency of class ``c`` (docs/spec.md §2.1).

    Args:
        class_counts: ``Tensor[C]`` (or a sequence) of non-negative instance counts per class.
        eps: keeps an absent class finite (its weight is ``1 / eps``).

    Returns:
        ``Tensor[C]`` (float32), usable as ``alpha`` of :func:`sigmoid_focal_loss`.
    """
    counts = torch.as_tensor(class_counts, dtype=torch.float32)
    if counts.ndim != 1 or counts.numel() == 0:
        raise ValueError(f"class_counts must be a non-empty 1-D sequence, got shape {tuple(counts.shape)}")
    if (counts < 0).any() or counts.sum() <= 0:
        raise ValueError(f"class_counts must be >= 0 with a positive total, got {counts.tolist()}")
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps!r}")
    return 1.0 / (counts / counts.sum() + eps)


def varifocal_loss(
    logits: Tensor,
    quality: Tensor,
    alpha: float = 0.75,
    gamma: float = 2.0,
    reduction: str = "none",
) -> Tensor:
    """Varifocal loss (Zhang et al., "VarifocalNet", CVPR 2021).

    ``VFL = BCE(x, q) * (q if q > 0 else alpha p^gamma)``: positives are weighted by their IoU-aware
    target ``q``, negatives are focal-down-weighted. Ultralytics' ``VarifocalLoss`` is the same with
    ``.mean(1).sum()`` as its reduction.

    Args:
        logits: ``Tensor[*]`` of class logits, e.g. ``(B, A, C)``.
        quality: same shape, the IoU-aware classification target in [0, 1]; 0 on negatives.
        alpha: weight of negatives (>= 0). gamma: focusing exponent (>= 0).
        reduction: ``"none" | "mean" | "sum"``.
    """
    check_reduction(reduction)
    check_same_shape("logits", logits, "quality", quality)
    _check_gamma(gamma)
    if not alpha >= 0:
        raise ValueError(f"alpha must be >= 0, got {alpha!r}")
    logits = as_float32(logits)
    quality = quality.to(logits.dtype)
    check_unit_interval("quality", quality)
    weight = torch.where(quality > 0, quality, alpha * torch.sigmoid(logits).pow(gamma))
    loss = F.binary_cross_entropy_with_logits(logits, quality, reduction="none") * weight
    return reduce(loss, reduction)
