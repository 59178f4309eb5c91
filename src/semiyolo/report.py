"""The ablation report: Markdown and CSV tables and PNG plots from the runs' results (matplotlib, no Ultralytics)."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

COLUMNS = (
    ("run", "run"),
    ("lambda_bg", "lambda_bg"),
    ("precision", "metrics/precision(B)"),
    ("recall", "metrics/recall(B)"),
    ("mAP50", "metrics/mAP50(B)"),
    ("mAP50-95", "metrics/mAP50-95(B)"),
    ("bg FP / image", "bg_fp/background_fp_per_image"),
    ("PL precision", "semi/pl_precision"),
    ("PL recall", "semi/pl_recall"),
    ("minutes", "minutes"),
)


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]] = COLUMNS) -> str:
    """A Markdown table, one row per run; ``columns`` are ``(header, key)`` pairs."""
    lines = ["| " + " | ".join(name for name, _ in columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += [
        "| " + " | ".join(f"{row[key]:g}" if key == "lambda_bg" else _cell(row.get(key)) for _, key in columns) + " |"
        for row in rows
    ]
    return "\n".join(lines)


def write_tables(
    rows: Sequence[dict[str, Any]],
    out: str | Path,
    columns: Sequence[tuple[str, str]] = COLUMNS,
    stem: str = "ablation",
) -> tuple[Path, Path]:
    """``<stem>.md`` and ``<stem>.csv`` under ``out``, one row per run, columns as :data:`COLUMNS`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    md = out / f"{stem}.md"
    md.write_text(markdown_table(rows, columns) + "\n")
    path = out / f"{stem}.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([name for name, _ in columns])
        writer.writerows([[row.get(key, "") for _, key in columns] for row in rows])
    return md, path


def _figure() -> tuple[Figure, Any]:
    fig = Figure(figsize=(6.4, 4.4), dpi=120, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots()


def _penalty_mode(row: dict[str, Any]) -> str:
    return row.get("bg_mode") or (row.get("semi") or {}).get("bg_mode", "max")


def plot_against_lambda(rows: Sequence[dict[str, Any]], out: str | Path) -> list[Path]:
    """Precision and recall, and background false positives per image, against lambda_bg (online runs): a line
    through the runs with the default penalty mode, a marker per run with another mode (e.g. focal)."""
    online = sorted((r for r in rows if r.get("mode") == "online"), key=lambda r: r["lambda_bg"])
    default = [r for r in online if _penalty_mode(r) == "max"]
    others = [r for r in online if _penalty_mode(r) != "max"]
    panels = (
        (
            (("metrics/precision(B)", "precision"), ("metrics/recall(B)", "recall")),
            "validation precision / recall",
            "Precision and recall against lambda_bg (online)",
            "precision_recall_vs_lambda.png",
        ),
        (
            (("bg_fp/background_fp_per_image", "background FP / image"),),
            "background false positives per image",
            "Background false positives against lambda_bg (online)",
            "bg_fp_vs_lambda.png",
        ),
    )
    paths = []
    for series, ylabel, title, name in panels:
        fig, ax = _figure()
        for i, (key, label) in enumerate(series):
            color = f"C{3 if len(series) == 1 else i}"
            ax.plot(
                [r["lambda_bg"] for r in default],
                [r.get(key, math.nan) for r in default],
                "o-",
                color=color,
                label=label,
            )
            for r in others:
                ax.plot(
                    r["lambda_bg"],
                    r.get(key, math.nan),
                    "s",
                    color=color,
                    mfc="none",
                    markersize=9,
                    label=f"{label}, {_penalty_mode(r)} mode",
                )
        ax.set(xlabel="lambda_bg (background-penalty weight)", ylabel=ylabel, title=title)
        ax.legend(fontsize="small")
        paths.append(Path(out) / name)
        fig.savefig(paths[-1])
    return paths


def plot_curves(histories: dict[str, list[dict[str, str]]], out: str | Path) -> list[Path]:
    """Validation mAP50-95 per epoch of every run, and the teacher's mean pseudo-label confidence (online)."""
    paths = []
    for key, ylabel, name, title in (
        ("metrics/mAP50-95(B)", "validation mAP50-95", "curves_map.png", "Training curves"),
        (
            "semi/teacher_conf",
            "mean teacher score of kept pseudo-labels",
            "teacher_confidence.png",
            "Teacher confidence (online runs)",
        ),
    ):
        fig, ax = _figure()
        for run, rows in histories.items():
            values = [float(r[key]) for r in rows if key in r and r[key] not in ("", "nan")]
            if values:
                ax.plot(range(1, len(values) + 1), values, label=run)
        ax.set(xlabel="epoch", ylabel=ylabel, title=title)
        if ax.lines:
            ax.legend(fontsize="small")
        paths.append(Path(out) / name)
        fig.savefig(paths[-1])
    return paths
