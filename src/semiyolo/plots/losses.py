"""Figures of the losses in :mod:`semiyolo.losses`, computed by calling the library (and autograd), not retyped.

``write_loss_figures(out_dir)`` writes five PNGs; ``FIGURES`` maps each file stem to a builder that returns a
:class:`matplotlib.figure.Figure` (drawn on an Agg canvas, no pyplot state), so tests can inspect them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import Tensor

from semiyolo.losses import (
    background_penalty,
    distribution_focal_loss,
    integral_decode,
    quality_focal_loss,
    sigmoid_focal_loss,
)

DPI = 120
_EPS = 1e-6


def _figure(ncols: int = 1, width: float = 6.4) -> Figure:
    fig = Figure(figsize=(width, 4.6), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    fig.subplots(1, ncols)
    return fig


def _unit_grid(n: int = 999) -> Tensor:
    """``n`` probabilities strictly inside (0, 1), float64."""
    return torch.linspace(_EPS, 1 - _EPS, n, dtype=torch.float64)


def loss_shares(
    gamma: float, n_easy: int = 10**6, n_hard: int = 10, pt_easy: float = 0.99, pt_hard: float = 0.01
) -> tuple[float, float]:
    """``(negative_share, positive_share)`` of the total loss of ``n_easy`` negatives and ``n_hard`` positives.

    Per-example losses come from :func:`sigmoid_focal_loss` (``alpha=None``): a negative with ``p = 1 - pt_easy``
    and a positive with ``p = pt_hard``. ``gamma=0`` is cross-entropy.
    """
    p = torch.tensor([1 - pt_easy, pt_hard], dtype=torch.float64)
    per_example = sigmoid_focal_loss(torch.logit(p), torch.tensor([0.0, 1.0], dtype=torch.float64), None, gamma)
    totals = per_example * torch.tensor([n_easy, n_hard], dtype=torch.float64)
    neg, pos = (totals / totals.sum()).tolist()
    return neg, pos


def focal_vs_pt() -> Figure:
    fig = _figure()
    ax = fig.axes[0]
    pt = torch.linspace(1e-3, 1 - _EPS, 1000, dtype=torch.float64)
    for gamma in (0, 0.5, 1, 2, 5):
        loss = sigmoid_focal_loss(torch.logit(pt), torch.ones_like(pt), alpha=None, gamma=gamma)
        ax.plot(pt, loss, label=f"γ = {gamma}" + (" (cross-entropy)" if gamma == 0 else ""))
    ax.set(
        xlim=(0, 1),
        ylim=(0, 5),
        xlabel="probability of the ground-truth class $p_t$",
        ylabel="loss (nats)",
        title="Focal loss $-(1-p_t)^γ \\log p_t$ (α = None)",
    )
    ax.axvspan(0.6, 1.0, color="0.92", zorder=0)
    ax.text(0.8, 3.0, "well-classified\nexamples", ha="center", color="0.35")
    ax.legend(loc="upper right")
    return fig


def easy_vs_hard_share() -> Figure:
    fig = _figure(width=7.0)
    ax = fig.axes[0]
    labels = ("CE (γ = 0)", "FL (γ = 2, α = None)")
    shares = [loss_shares(gamma) for gamma in (0.0, 2.0)]
    x, w = torch.arange(2.0), 0.38
    for k, (name, color) in enumerate(
        (("10⁶ easy negatives ($p_t$ = 0.99)", "tab:blue"), ("10 hard positives ($p_t$ = 0.01)", "tab:red"))
    ):
        values = [100 * s[k] for s in shares]
        bars = ax.bar(x + (k - 0.5) * w, values, w, label=name, color=color)
        ax.bar_label(bars, labels=[f"{v:.2f} %" for v in values], padding=2)
    ax.set(
        xticks=x,
        xticklabels=labels,
        ylim=(0, 118),
        ylabel="share of the total loss (%)",
        xlabel="loss",
        title="Who carries the loss: 10⁶ easy negatives vs 10 hard positives",
    )
    ax.legend(loc="upper center", ncols=2)
    return fig


def qfl_shape() -> Figure:
    fig = _figure()
    ax = fig.axes[0]
    sigma = _unit_grid()
    for y in (0.0, 0.25, 0.5, 0.75, 1.0):
        loss = quality_focal_loss(torch.logit(sigma), torch.full_like(sigma, y), beta=2.0)
        (line,) = ax.plot(sigma, loss, label=f"y = {y}")
        i = int(loss.argmin())  # the computed minimum, to show it sits at sigma = y
        ax.axvline(sigma[i], color=line.get_color(), ls=":", lw=1)
        ax.plot(sigma[i], loss[i], "o", color=line.get_color(), ms=7, clip_on=False, zorder=5)
    ax.plot([], [], "ko:", label="computed minimum\n(lies at σ = y)")
    ax.set(
        xlim=(0, 1),
        ylim=(0, 0.8),
        xlabel="predicted score σ",
        ylabel="QFL (nats)",
        title="Quality focal loss, β = 2, for IoU targets y",
    )
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), title="IoU target")
    return fig


def _bin_logits(centre: float, width: float, n_bins: int = 16) -> Tensor:
    return -((torch.arange(n_bins, dtype=torch.float64) - centre) ** 2) / (2 * width**2)


def dfl_shape(target: float = 4.3) -> Figure:
    fig = _figure(ncols=2, width=11.0)
    ax_a, ax_b = fig.axes
    dists = {"peaked": _bin_logits(target, 0.6), "broad": _bin_logits(target, 3.0)}
    bins = torch.arange(16.0)
    ys = torch.linspace(0, 15, 601, dtype=torch.float64)
    for k, (name, logits) in enumerate(dists.items()):
        loss = distribution_focal_loss(logits[None], torch.tensor([target], dtype=torch.float64)).item()
        mean = integral_decode(logits).item()
        label = f"{name}: DFL = {loss:.2f}, E[bin] = {mean:.2f}"
        ax_a.bar(bins + (k - 0.5) * 0.4, torch.softmax(logits, -1), 0.4, label=label, alpha=0.85)
        ax_b.plot(ys, distribution_focal_loss(logits.expand(len(ys), -1), ys), label=f"{name} distribution")
    for ax in (ax_a, ax_b):
        ax.axvline(target, color="k", ls="--", lw=1, label=f"target y = {target}")
    ax_a.set(
        xticks=bins,
        xlabel="bin i (stride units)",
        ylabel="softmax probability $S_i$",
        title=f"(a) two predicted distributions, target y = {target}",
    )
    ax_b.set(
        xlim=(0, 15),
        ylim=(0, 10),
        xlabel="target y (bin units)",
        ylabel="DFL (nats)",
        title="(b) DFL against the target, distribution fixed",
    )
    ax_a.legend(loc="upper right", fontsize="small")
    ax_b.legend(loc="lower right", fontsize="small")
    return fig


def _background_grad_and_loss(kind: str, top: Tensor) -> tuple[Tensor, Tensor]:
    """Loss and its gradient w.r.t. the top logit, per anchor: one anchor per value of ``top``, 3 classes, target 0."""
    x = top.clone().requires_grad_(True)
    others = (top[:, None] - torch.tensor([2.0, 4.0], dtype=top.dtype)).detach()
    logits = torch.cat((x[:, None], others), dim=1)[None]  # (1, A, 3): the top class first
    if kind == "bce":
        per_anchor = F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits), reduction="none").sum(-1)
    else:
        per_anchor = background_penalty(
            logits, torch.ones(logits.shape[:2], dtype=torch.bool), mode=kind, gamma=2.0, reduction="none"
        )
    (grad,) = torch.autograd.grad(per_anchor.sum(), x)
    return grad.abs(), per_anchor[0].detach()


def bg_penalty_grad() -> Figure:
    fig = _figure(ncols=2, width=11.0)
    ax_g, ax_l = fig.axes
    sigma = _unit_grid()
    names = {
        "bce": "BCE, target 0",
        "max": "penalty, mode = max",
        "focal": "penalty, mode = focal, γ = 2",
    }
    expected = {"bce": ": σ", "max": ": σ(1 − σ)", "focal": ""}
    for kind, name in names.items():
        grad, loss = _background_grad_and_loss(kind, torch.logit(sigma))
        ax_g.plot(sigma, grad, label=name + expected[kind])
        ax_l.plot(sigma, loss, label=name)
    ax_g.set(
        xlim=(0, 1),
        ylim=(0, 1.25),
        xlabel="probability σ of the top-scoring class",
        ylabel="|∂ loss / ∂ top-class logit|",
        title="(a) gradient on one background anchor",
    )
    ax_l.set(
        xlim=(0, 1),
        ylim=(0, 3),
        xlabel="probability σ of the top-scoring class",
        ylabel="loss on the anchor (nats; max mode: probability)",
        title="(b) loss value",
    )
    ax_g.legend(loc="upper left", fontsize="small")
    ax_l.legend(loc="upper left", fontsize="small")
    return fig


FIGURES: dict[str, Callable[[], Figure]] = {
    "focal_vs_pt": focal_vs_pt,
    "easy_vs_hard_share": easy_vs_hard_share,
    "qfl_shape": qfl_shape,
    "dfl_shape": dfl_shape,
    "bg_penalty_grad": bg_penalty_grad,
}


def write_loss_figures(out_dir: str | Path) -> list[Path]:
    """Write the five loss figures as ``<name>.png`` into ``out_dir`` (created) and return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, build in FIGURES.items():
        path = out / f"{name}.png"
        build().savefig(path, dpi=DPI)
        paths.append(path)
    return paths
