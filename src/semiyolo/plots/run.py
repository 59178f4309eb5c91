"""``semi.png`` beside Ultralytics' ``results.png``: a run's ``semi/*`` and ``teacher/*`` columns of
``results.csv`` (as Ultralytics' ``trainer.read_results_csv()`` gives them) against the epoch (matplotlib on an
Agg canvas, no Ultralytics).

One panel per quantity that moved during the run (pseudo-labels per image, their precision and recall, the
filters' thresholds, ``lambda_bg`` and ``lambda_unsup``, ...); the teacher's mAP50-95 shares a panel with the
student's, so the two can be compared at a glance. Columns that stayed at one value are left out.
"""

from __future__ import annotations

import math
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

STUDENT_MAP = "metrics/mAP50-95(B)"
TEACHER_PREFIX = "teacher/"
SEMI_PREFIX = "semi/"
COUNTERS = ("semi/optimizer_steps", "semi/images_seen", "semi/skipped_steps")  # running totals, not quantities


def semi_panels(columns: dict[str, list[float]]) -> list[tuple[str, dict[str, list[float]]]]:
    """``(title, {label: values})`` for each panel: the teacher's mAP50-95 beside the student's, then every
    ``semi/*`` column (running counters aside) whose values moved."""
    panels = []
    teacher = next((k for k in columns if k.startswith(TEACHER_PREFIX) and "mAP50-95" in k), None)
    if teacher and STUDENT_MAP in columns:
        panels.append(("mAP50-95", {"student": columns[STUDENT_MAP], "teacher": columns[teacher]}))
    for key, values in columns.items():
        finite = {v for v in map(_number, values) if not math.isnan(v)}
        if key.startswith(SEMI_PREFIX) and key not in COUNTERS and len(finite) > 1:
            panels.append((key.removeprefix(SEMI_PREFIX), {key.removeprefix(SEMI_PREFIX): values}))
    return panels


def write_semi_figure(columns: dict[str, list], out: str | Path) -> Path | None:
    """``out`` (PNG) from the :func:`semi_panels` of ``columns`` (``results.csv``, column name -> values);
    ``None`` (nothing written) when no column moved."""
    columns = {key.strip(): [_number(v) for v in values] for key, values in columns.items()}
    panels = semi_panels(columns)
    if not panels:
        return None
    epochs = columns.get("epoch") or list(range(1, len(next(iter(columns.values()))) + 1))
    ncols = min(4, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig = Figure(figsize=(3.2 * ncols, 2.6 * nrows), dpi=100)
    FigureCanvasAgg(fig)
    for i, (title, lines) in enumerate(panels, 1):
        ax = fig.add_subplot(nrows, ncols, i)
        for label, values in lines.items():
            ax.plot(epochs, values, marker=".", label=label)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        if len(lines) > 1:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out)
    return Path(out)


def _number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
