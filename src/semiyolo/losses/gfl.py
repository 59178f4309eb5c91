"""Generalized Focal Loss (Li et al., "Generalized Focal Loss", NeurIPS 2020): QFL, DFL and the integral decode.

Bin convention: a box side is a distribution over ``n_bins`` unit-spaced bins ``0, 1, ..., n_bins - 1``
(in stride units). GFL's ``reg_max = 16`` means 17 bins (0..16); Ultralytics' ``reg_max = 16`` means 16
bins (0..15). These functions take ``n_bins`` from the last dimension of the logits, so both work.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ._common import as_float32, check_reduction, check_same_shape, check_unit_interval, reduce


def quality_focal_loss(logits: Tensor, quality: Tensor, beta: float = 2.0, reduction: str = "none") -> Tensor:
    """Quality focal loss ``QFL = -|y - sigma|^beta ((1 - y) log(1 - sigma) + y log sigma)``.

    Args:
        logits: ``Tensor[*]`` of class logits, e.g. ``(N, C)`` or ``(B, A, C)``.
        quality: same shape; the joint classification-IoU target ``y`` in [0, 1]: the IoU of a positive's
            predicted box with its ground truth in the column of its class, 0 everywhere else.
        beta: modulating exponent (>= 0); the paper uses 2. ``|.|`` is used, so odd ``beta`` is correct too.
        reduction: ``"none" | "mean" | "sum"``.
    """
    check_reduction(reduction)
    check_same_shape("logits", logits, "quality", quality)
    if not beta >= 0:
        raise ValueError(f"beta must be >= 0, got {beta!r}")
    logits = as_float32(logits)
    quality = quality.to(logits.dtype)
    check_unit_interval("quality", quality)
    scale = (quality - torch.sigmoid(logits)).abs().pow(beta)
    loss = F.binary_cross_entropy_with_logits(logits, quality, reduction="none") * scale
    return reduce(loss, reduction)


def distribution_focal_loss(bin_logits: Tensor, target: Tensor, reduction: str = "none") -> Tensor:
    """Distribution focal loss ``DFL = -((y_{i+1} - y) log S_i + (y - y_i) log S_{i+1})``.

    ``S = softmax(bin_logits)``; ``y_i <= y <= y_{i+1}`` are the two bins around the continuous target.

    Args:
        bin_logits: ``Tensor[*, n_bins]`` (``(N, n_bins)`` for N box sides), ``n_bins >= 2``.
        target: ``Tensor[*]``, the continuous side length in bin units, in ``[0, n_bins - 1]``.
        reduction: ``"none" | "mean" | "sum"``.

    Returns:
        ``Tensor[*]`` for ``"none"``. Ultralytics' ``DFLoss`` returns the mean over a box's 4 sides and
        clamps targets to ``n_bins - 1.01``; this function raises on targets out of range instead.
    """
    check_reduction(reduction)
    if bin_logits.ndim < 1 or bin_logits.shape[-1] < 2:
        raise ValueError(f"bin_logits must have shape (*, n_bins) with n_bins >= 2, got {tuple(bin_logits.shape)}")
    if target.shape != bin_logits.shape[:-1]:
        raise ValueError(
            f"target must have shape {tuple(bin_logits.shape[:-1])} (bin_logits without its last dim), "
            f"got {tuple(target.shape)}"
        )
    n_bins = bin_logits.shape[-1]
    bin_logits = as_float32(bin_logits)
    target = target.to(bin_logits.dtype)
    if target.numel():
        lo, hi = torch.aminmax(target.detach())
        if not (lo >= 0 and hi <= n_bins - 1):
            raise ValueError(
                f"target must lie in [0, n_bins - 1] = [0, {n_bins - 1}], "
                f"got values in [{lo.item():.4g}, {hi.item():.4g}]"
            )
    left = target.detach().floor().long().clamp_(max=n_bins - 2)
    w_right = target - left
    weights = torch.stack((1.0 - w_right, w_right), dim=-1)
    log_probs = F.log_softmax(bin_logits, dim=-1).gather(-1, torch.stack((left, left + 1), dim=-1))
    return reduce(-(log_probs * weights).sum(-1), reduction)


def integral_decode(bin_logits: Tensor) -> Tensor:
    """Expected value of the bin distribution, ``y_hat = sum_i softmax(bin_logits)_i * i``.

    Args:
        bin_logits: ``Tensor[*, n_bins]``.

    Returns:
        ``Tensor[*]`` in ``[0, n_bins - 1]`` (bin units; multiply by the stride for pixels).
    """
    if bin_logits.ndim < 1 or bin_logits.shape[-1] < 1:
        raise ValueError(f"bin_logits must have shape (*, n_bins), got {tuple(bin_logits.shape)}")
    bin_logits = as_float32(bin_logits)
    bins = torch.arange(bin_logits.shape[-1], dtype=bin_logits.dtype, device=bin_logits.device)
    return F.softmax(bin_logits, dim=-1) @ bins
