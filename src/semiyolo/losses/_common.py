"""Argument checks and reductions shared by every loss in :mod:`semiyolo.losses`."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

REDUCTIONS = ("none", "mean", "sum")


def check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")


def check_same_shape(name_a: str, a: Tensor, name_b: str, b: Tensor) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{name_a} and {name_b} must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")


def check_ndim(name: str, x: Tensor, ndim: int, layout: str) -> None:
    if x.ndim != ndim:
        raise ValueError(f"{name} must have shape {layout}, got {tuple(x.shape)}")


def check_unit_interval(name: str, x: Tensor) -> None:
    """Raise if any value of ``x`` lies outside [0, 1] (NaN counts as outside)."""
    if x.numel() == 0:
        return
    lo, hi = torch.aminmax(x.detach())
    if not (lo >= 0 and hi <= 1):  # also False for NaN
        raise ValueError(f"{name} must lie in [0, 1], got values in [{lo.item():.4g}, {hi.item():.4g}]")


def as_float32(x: Tensor) -> Tensor:
    """Half and bfloat16 are computed in float32; float64 stays float64 (gradcheck)."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def reduce(loss: Tensor, reduction: str) -> Tensor:
    """Apply ``reduction``; an empty ``loss`` reduces to a zero that is still attached to the graph."""
    if reduction == "none":
        return loss
    if loss.numel() == 0:
        return loss.sum() * 0.0
    return loss.mean() if reduction == "mean" else loss.sum()
