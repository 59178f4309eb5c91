"""The protocol report's plots (matplotlib, drawn off-screen): the online arms against the penalty weight, every
run's validation curve against optimizer steps, and the continuations up close."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..data import write_atomically
from .arms import CONVERGED, FROM_SCRATCH, FULLY_LABELED, ONLINE
from .rows import MAP, arm_name, number


def _figure() -> tuple[Figure, Any]:
    fig = Figure(figsize=(6.4, 4.4), dpi=120, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots()


def plot_arms_against_lambda(arms: Sequence[dict[str, Any]], out: str | Path) -> list[Path]:
    """From :func:`~.report.summarize_arms`: the online arms with the default penalty mode against lambda_bg (mean over
    seeds, bars one standard deviation): recall and mAP50-95, and background false positives per image at 0.25 and
    at the F1 peak; the supervised continuation as a dashed line."""
    online = sorted(
        (e for e in arms if e["kind"] == ONLINE and e["bg_mode"] == "max" and not e.get("variant")),
        key=lambda e: e["lambda_bg"],
    )
    lambdas = [e["lambda_bg"] for e in online]
    continued = next((e for e in arms if e.get("baseline")), None)
    panels = (
        ((("recall", "recall"), ("mAP50-95", "mAP50-95")), "validation metric", "recall_map_vs_lambda.png"),
        (
            (("bg FP / image", "at conf 0.25"), ("bg FP / image at F1 peak", "at the F1-optimal conf")),
            "background false positives per image",
            "bg_fp_vs_lambda.png",
        ),
    )
    paths = []
    for series, ylabel, name in panels:
        fig, ax = _figure()
        for i, (label, legend) in enumerate(series):
            means = [e[label][0] for e in online]
            stds = [e[label][1] for e in online]
            ax.errorbar(lambdas, means, yerr=stds, fmt="o-", color=f"C{i}", capsize=3, label=f"online, {legend}")
            if continued is not None and not math.isnan(continued[label][0]):
                ax.axhline(continued[label][0], color=f"C{i}", ls="--", lw=1, label=f"supervised continued, {legend}")
        labels = {
            "xlabel": "lambda_bg (background-penalty weight)",
            "ylabel": ylabel,
            "title": f"Online arms: {ylabel}",
        }
        paths.append(_save(fig, ax, out, name, **labels))
    return paths


def _curve(history: Sequence[dict[str, str]], key: str, start: float = 0.0) -> tuple[list[float], list[float]]:
    """``key`` against optimizer steps (shifted by ``start``) over a run's epochs, where both are numbers."""
    points = [(start + number(h.get("semi/optimizer_steps")), number(h.get(key))) for h in history]
    points = [(x, y) for x, y in points if not (math.isnan(x) or math.isnan(y))]
    return [x for x, _ in points], [y for _, y in points]


def _plot_by_arm(ax, colours: dict[str, str], arm: str, xs: list[float], ys: list[float], **style) -> None:
    """One run's line in its arm's colour; the arm is named in the legend once."""
    colour = colours.setdefault(arm, f"C{len(colours) % 10}")
    label = arm if arm not in {line.get_label() for line in ax.lines} else None
    ax.plot(xs, ys, color=colour, label=label, **style)


LEGEND_INSIDE = 8  # legend entries a plot holds inside its axes; more go beside them


def _save(fig: Figure, ax, out: str | Path, name: str, **labels) -> Path:
    ax.set(**labels)
    entries = len(ax.get_legend_handles_labels()[0])
    if entries > LEGEND_INSIDE:  # beside the axes, in columns of at most 16, the figure widened to hold them
        columns = -(-entries // 16)
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1), ncols=columns)
        fig.set_figwidth(fig.get_figwidth() + 2.4 * columns)
    elif entries:
        ax.legend(fontsize="small")
    path = Path(out) / name
    return write_atomically(path, lambda part: fig.savefig(part, format=path.suffix[1:]))


def plot_curves_by_steps(
    histories: dict[str, list[dict[str, str]]], rows: Sequence[dict[str, Any]], out: str | Path
) -> list[Path]:
    """Validation mAP50-95 against optimizer steps: the runs trained from the model's ``.yaml`` (the converged run,
    the ceiling, ``online_scratch``) from 0, the continuations from the converged run's last step, one colour per
    arm; and the online teachers' pseudo-label confidence."""
    by_run = {r["run"]: r for r in rows}
    converged = next((r for r in rows if r["kind"] == CONVERGED), None)
    offset = number(converged.get("optimizer_steps")) if converged else 0.0
    colours: dict[str, str] = {}
    paths = []
    for key, ylabel, name, title in (
        (MAP, "validation mAP50-95 (final weights of each epoch)", "curves_map.png", "Training curves"),
        (
            "semi/teacher_conf",
            "mean teacher score of kept pseudo-labels",
            "teacher_confidence.png",
            "Teacher confidence (online arms)",
        ),
    ):
        fig, ax = _figure()
        for run, history in histories.items():
            row = by_run.get(run, {"kind": "", "run": run})
            start = 0.0 if row["kind"] in FROM_SCRATCH else offset
            xs, ys = _curve(history, key, start)
            if xs:
                _plot_by_arm(ax, colours, arm_name(row) if row["kind"] else run, xs, ys, lw=1.2)
        paths.append(_save(fig, ax, out, name, xlabel="optimizer steps", ylabel=ylabel, title=title))
    return paths


def plot_continuations(
    histories: dict[str, list[dict[str, str]]], rows: Sequence[dict[str, Any]], out: str | Path
) -> Path:
    """The continuations up close: validation mAP50-95 against their own optimizer steps, one line per run,
    coloured by arm, with the converged run's and the ceiling's final values as dashed lines (``online_scratch``,
    not a continuation, is left to :func:`plot_curves_by_steps`)."""
    fig, ax = _figure()
    colours: dict[str, str] = {}
    for row in rows:
        if row["kind"] in (CONVERGED, FULLY_LABELED):
            grey = row["kind"] == CONVERGED
            named = row["kind"] in {line.get_label() for line in ax.lines}
            colour = "grey" if grey else "black"
            ax.axhline(number(row.get(MAP)), ls="--", lw=1, color=colour, label=None if named else row["kind"])
        elif row["kind"] not in FROM_SCRATCH:  # online_scratch is drawn in curves_map.png, from step 0
            xs, ys = _curve(histories.get(row["run"], []), MAP)
            _plot_by_arm(ax, colours, arm_name(row), xs, ys, marker="o", ms=3, lw=1)
    return _save(
        fig,
        ax,
        out,
        "continuations_map.png",
        xlabel="optimizer steps of the continuation",
        ylabel="validation mAP50-95",
        title="Continuations from the converged run (one line per seed)",
    )
