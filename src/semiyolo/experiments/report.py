"""The ablation report: Markdown and CSV tables and PNG plots from the runs' results (matplotlib, no Ultralytics).

The protocol's report (:func:`write_protocol_report`) groups the runs into arms (an arm is one method over
several seeds), gives each arm's mean and standard deviation over seeds, and the share of the gap between the
baseline and the fully labeled ceiling that it closes, paired by seed:
``gap_closed = (arm - baseline) / (fully_labeled - baseline)`` on mAP50-95, with ``fully_labeled`` the mean of the
ceiling's seeds; and, when the ceiling has several, the range of that mean against each ceiling run alone, so that a
reader sees how much the verdict owes to one ceiling run. The baseline is the best-tuned labeled-only continuation:
of ``supervised_continued`` and its learning-rate controls (:data:`~.arms.BASELINES`), the arm with the highest
mean mAP50-95.
"""

from __future__ import annotations

import csv
import math
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..data import write_atomically
from .arms import (
    BASELINES,
    CONTINUATIONS,
    CONTINUED_LR,
    CONVERGED,
    FULLY_LABELED,
    FULLY_LABELED_CONTINUED,
    ONLINE,
    ORACLE,
    VARIANT_LR_SCALE,
)
from .control_report import control_sections, scratch_sections
from .held_out import TEST, VAL
from .report_plots import plot_arms_against_lambda, plot_continuations, plot_curves_by_steps
from .review_report import review_sections
from .rows import FED, MAP, Pair, arm_name, fed_hidden_labels, mean_std, number, pair

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
    md = _write_text(out / f"{stem}.md", markdown_table(rows, columns) + "\n")

    def write_csv(part: Path) -> None:
        with open(part, "x", newline="") as f:
            writer = csv.writer(f)
            writer.writerow([name for name, _ in columns])
            writer.writerows([[row.get(key, "") for _, key in columns] for row in rows])

    return md, write_atomically(out / f"{stem}.csv", write_csv)


def _write_text(path: Path, text: str) -> Path:
    """``path`` written atomically: a reader (another ablation process, a crash) sees the old file or the new one."""
    return write_atomically(path, lambda part: part.write_text(text))


PROTOCOL_COLUMNS = (  # (header in ablation.csv, the row's key, the type it is read back as)
    ("kind", "kind", str),
    ("run", "run", str),
    ("variant", "variant", str),
    ("oracle_pseudo_labels", FED, str),
    ("lr_scale", VARIANT_LR_SCALE, float),
    ("seed", "seed", int),
    ("label_split", "label_split", int),
    ("eval_split", "eval_split", str),
    ("lambda_bg", "lambda_bg", float),
    ("bg_mode", "bg_mode", str),
    ("review_k", "review_k", int),
    ("review_order", "review_order", str),
    ("optimizer_steps", "optimizer_steps", int),
    ("images_seen", "images_seen", int),
    ("update_norm", "update_norm", float),
    ("precision", "metrics/precision(B)", float),
    ("recall", "metrics/recall(B)", float),
    ("mAP50", "metrics/mAP50(B)", float),
    ("mAP50-95", "metrics/mAP50-95(B)", float),
    ("bg_fp_per_image", "bg_fp/background_fp_per_image", float),
    ("bg_fp_per_image_at_f1", "bg_fp/background_fp_per_image_at_f1", float),
    ("f1_conf", "bg_fp/f1_conf", float),
    ("pl_precision", "semi/pl_precision", float),
    ("pl_recall", "semi/pl_recall", float),
    ("pl_iou", "semi/pl_iou", float),
    ("minutes", "minutes", float),
)
ARM_METRICS = (
    ("mAP50-95", MAP),
    ("mAP50", "metrics/mAP50(B)"),
    ("recall", "metrics/recall(B)"),
    ("bg FP / image", "bg_fp/background_fp_per_image"),
    ("bg FP / image at F1 peak", "bg_fp/background_fp_per_image_at_f1"),
    ("PL recall", "semi/pl_recall"),
    ("PL IoU", "semi/pl_iou"),
    ("update norm", "update_norm"),
)


def gap_closed(arm: float, continued: float, ceiling: float) -> float:
    """``(arm - continued) / (ceiling - continued)``: 0 for no gain over the supervised continuation, 1 for the
    fully labeled result; NaN when the ceiling is not above the continuation."""
    return (arm - continued) / (ceiling - continued) if ceiling > continued else math.nan


def _mean_gap(
    members: Sequence[dict[str, Any]], continued: dict[Pair, float], ceiling: dict[Any, float]
) -> tuple[float, float]:
    """``(mean, std)`` over ``members``' label splits and seeds of the gap closed, each continuation paired with the
    baseline of its label split and seed, against its label split's ``ceiling``."""
    gaps = [
        gap_closed(number(r.get(MAP)), continued[pair(r)], ceiling.get(r.get("label_split"), math.nan))
        for r in members
        if r["kind"] in CONTINUATIONS and pair(r) in continued
    ]
    return mean_std(gaps)


def ceiling_runs_by_split(rows: Sequence[dict[str, Any]]) -> dict[Any, list[float]]:
    """Each label split's ceiling runs' mAP50-95: the fully labeled runs continued as long as the arms
    (``fully_labeled_continued``) where every ``fully_labeled`` run of the split has its continuation, else the
    ``fully_labeled`` runs (never a mix of the two)."""
    found: dict[str, dict[Any, list[float]]] = {FULLY_LABELED: {}, FULLY_LABELED_CONTINUED: {}}
    for row in rows:
        value = number(row.get(MAP))
        if row["kind"] in found and not math.isnan(value):
            found[row["kind"]].setdefault(row.get("label_split"), []).append(value)
    plain, continued = found[FULLY_LABELED], found[FULLY_LABELED_CONTINUED]
    return {k: continued[k] if len(continued.get(k, ())) >= len(v) else v for k, v in plain.items()}


GainInterval = Callable[[Sequence[tuple[str, str]]], tuple[float, float, float]]  # (arm, baseline) runs -> gain, CI


def summarize_arms(
    rows: Sequence[dict[str, Any]], baseline: str | None = None, gain_interval: GainInterval | None = None
) -> list[dict[str, Any]]:
    """One entry per arm, in the order the arms first appear: runs, optimizer steps, ``(mean, std)`` of each of
    :data:`ARM_METRICS`, of the gap closed (paired by label split and seed with the baseline, against the split's
    mean ceiling, :func:`ceiling_runs_by_split`) and of the share of the oracle's gain (the same pairing, with
    ``oracle_continued`` as the ceiling); and ``gap closed range``: the mean gap closed against each split's highest
    and against its lowest ceiling run (NaN with fewer than two). ``baseline``: the arm gaps are taken against
    (default: :func:`best_baseline` of these rows; give the one chosen on validation when these are test rows).
    ``gain_interval``: given each arm's ``(run, baseline run)`` pairs, its mAP50-95 gain and the gain's interval
    (``gain interval``; :class:`~.held_out.GainIntervals` on the test images)."""
    ceilings = ceiling_runs_by_split(rows)
    arms: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        arms.setdefault(arm_name(row), []).append(row)
    baseline = baseline or best_baseline(arms)
    continued = {pair(r): number(r.get(MAP)) for r in arms.get(baseline, [])}
    baseline_runs = {pair(r): r["run"] for r in arms.get(baseline, [])}
    oracle = {pair(r): number(r.get(MAP)) for r in rows if r["kind"] == ORACLE}
    summary = []
    for name, members in arms.items():
        entry: dict[str, Any] = {
            "arm": name,
            "kind": members[0]["kind"],
            "lambda_bg": members[0].get("lambda_bg"),
            "bg_mode": members[0].get("bg_mode") or "max",
            "variant": members[0].get("variant"),
            "seeds": len(members),
            "optimizer_steps": sorted(
                {int(number(r.get("optimizer_steps"))) for r in members if r.get("optimizer_steps") is not None}
            ),
        }
        for label, key in ARM_METRICS:
            entry[label] = mean_std([number(r.get(key)) for r in members])
        entry["baseline"] = name == baseline
        entry["gap closed"] = _mean_gap(members, continued, {k: statistics.fmean(v) for k, v in ceilings.items()})
        entry["gap closed range"] = (
            (
                _mean_gap(members, continued, {k: max(v) for k, v in ceilings.items()})[0],
                _mean_gap(members, continued, {k: min(v) for k, v in ceilings.items()})[0],
            )
            if any(len(v) > 1 for v in ceilings.values())
            else (math.nan, math.nan)
        )
        entry["share of the oracle's gain"] = _oracle_share(members, continued, oracle)
        paired = [(r["run"], baseline_runs[pair(r)]) for r in members if pair(r) in baseline_runs]
        no_interval = name == baseline or gain_interval is None or members[0]["kind"] not in CONTINUATIONS
        entry["gain interval"] = (math.nan,) * 3 if no_interval else gain_interval(paired)
        summary.append(entry)
    return summary


def _oracle_share(
    members: Sequence[dict[str, Any]], continued: dict[Pair, float], oracle: dict[Pair, float]
) -> tuple[float, float]:
    """``(mean, std)`` of ``(arm - baseline) / (oracle - baseline)`` per label split and seed: how much of what
    perfect pseudo-labels gave at the same budget the arm got."""
    shares = [
        gap_closed(number(r.get(MAP)), continued[pair(r)], oracle[pair(r)])
        for r in members
        if r["kind"] in CONTINUATIONS and pair(r) in continued and pair(r) in oracle
    ]
    return mean_std(shares)


def best_baseline(arms: dict[str, Sequence[dict[str, Any]]]) -> str | None:
    """The name of the labeled-only continuation (:data:`~.arms.BASELINES`) with the highest mean mAP50-95; ties go
    to the first (``supervised_continued`` before its learning-rate controls)."""
    means = {
        name: mean_std([number(r.get(MAP)) for r in members])[0]
        for name, members in arms.items()
        if members[0]["kind"] in BASELINES
    }
    finite = {name: m for name, m in means.items() if not math.isnan(m)}
    return max(finite, key=finite.__getitem__) if finite else next(iter(means), None)


def _pm(pair: tuple[float, float], seeds: int) -> str:
    mean, std = pair
    if math.isnan(mean):
        return "-"
    return f"{mean:.3f}" if seeds < 2 else f"{mean:.3f} ± {std:.3f}"


def _range(pair: tuple[float, float]) -> str:
    low, high = pair
    return "-" if math.isnan(low) or math.isnan(high) else f"{low:.3f} to {high:.3f}"


def _interval(found: tuple[float, float, float]) -> str:
    gain, low, high = found
    if math.isnan(gain):
        return "-"
    verdict = "" if low > 0 or high < 0 else " (includes 0)"
    return f"{gain:+.3f} [{low:+.3f}, {high:+.3f}]{verdict}"


def arms_markdown(summary: Sequence[dict[str, Any]]) -> str:
    headers = ["arm", "runs", "optimizer steps", *(label for label, _ in ARM_METRICS), "gap closed"]
    headers += ["gap closed, highest to lowest ceiling run", "share of the oracle's gain"]
    intervals = any(not math.isnan(e.get("gain interval", (math.nan,))[0]) for e in summary)
    headers += ["mAP50-95 gain over the baseline, 95 % interval over images"] if intervals else []
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for e in summary:
        arm = f"{e['arm']} (baseline)" if e.get("baseline") else e["arm"]
        cells = [arm, str(e["seeds"]), "/".join(map(str, e["optimizer_steps"])) or "-"]
        cells += [_pm(e[label], e["seeds"]) for label, _ in ARM_METRICS]
        cells += [_pm(e["gap closed"], e["seeds"]), _range(e["gap closed range"])]
        cells.append(_pm(e["share of the oracle's gain"], e["seeds"]))
        cells += [_interval(e["gain interval"])] if intervals else []
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


FLAT_TOLERANCE = 0.005  # mAP50-95 a converged run may still gain over the last quarter of its optimizer steps


def convergence_note(history: Sequence[dict[str, str]], tolerance: float = FLAT_TOLERANCE) -> str:
    """Whether the converged run's curve is flat: mAP50-95 at three quarters of its steps and at its end. The word
    "converged" only where the last quarter added less than ``tolerance``; otherwise a warning that gains over the
    continuations may be the baseline's unfinished training."""
    points = [(number(r.get("semi/optimizer_steps")), number(r.get(MAP))) for r in history]
    points = [(s, m) for s, m in points if not math.isnan(m)]
    if len(points) < 4:
        return f"{CONVERGED}: too few epochs to judge convergence; not shown to be converged."
    end_steps, end_map = points[-1]
    q_steps, q_map = points[(3 * len(points)) // 4 - 1]
    best = max(m for _, m in points)
    curve = (
        f"mAP50-95 {q_map:.3f} at {q_steps:.0f} optimizer steps (three quarters of the run), {end_map:.3f} at the end "
        f"({end_steps:.0f} steps; best epoch {best:.3f}): the last quarter added {end_map - q_map:+.3f}"
    )
    if end_map - q_map < tolerance:
        return f"{CONVERGED}: converged (flat within {tolerance}): {curve}."
    return (
        f"WARNING: supervised_converged is NOT converged: {curve}, more than {tolerance}. Part of any gain over the "
        "continuations may be training the labeled-only run never finished: lengthen its schedule (train.epochs, "
        "semi.labeled_repeat) and run the ablation again in a new folder."
    )


def sweep_edge_note(arms: Sequence[dict[str, Any]]) -> str:
    """A warning when the baseline is the labeled-only continuation at the largest learning rate of the sweep: the
    best the baseline can do may lie beyond it, and every gain would then be measured against too weak a
    baseline. Empty otherwise."""
    scales = {e["arm"]: float(e["arm"].removeprefix(CONTINUED_LR)) for e in arms if e["kind"] == CONTINUED_LR}
    baseline = next((e["arm"] for e in arms if e["baseline"]), None)
    if baseline not in scales or scales[baseline] < max(scales.values()):
        return ""
    largest = scales[baseline]
    return (
        f"WARNING: the baseline is {baseline}, the largest learning rate of the sweep ({largest:g} x --continue-lr): "
        f"a larger one may be better still. Widen the sweep (--lr-scales ... {2 * largest:g}; the protocol refuses a "
        "rate past the converged run's peak, so where that is the edge, lower --continue-lr and sweep from there) "
        "before calling any gain a gain."
    )


def _named(run: str, note: str, runs: int) -> str:
    """``note`` prefixed with its run's label split (``split<seed>/``) when the report has several."""
    return f"{run.rsplit('/', 1)[0]}: {note}" if runs > 1 and "/" in run else note


def write_protocol_report(
    rows: Sequence[dict[str, Any]],
    histories: dict[str, list[dict[str, str]]],
    out: str | Path,
    notes: Sequence[str] = (),
    gain_interval: GainInterval | None = None,
) -> Path:
    """``ablation.md`` (arms with mean ± std and gap closed, the convergence check, every run), ``ablation.csv``
    (one row per run and evaluation split, :data:`PROTOCOL_COLUMNS`) and the plots; returns the Markdown file.
    Rows without ``eval_split`` are validation rows. The baseline is chosen on validation; where test rows exist,
    their table comes first and takes the same baseline."""
    out = Path(out)
    columns = [(header, key) for header, key, _ in PROTOCOL_COLUMNS]
    write_tables([{**r, FED: fed_hidden_labels(r)} if r["kind"] == ONLINE else r for r in rows], out, columns)
    val_rows = [r for r in rows if r.get("eval_split", VAL) == VAL]
    test_rows = [r for r in rows if r.get("eval_split") == TEST]
    arms = summarize_arms(val_rows)
    baseline = next((e["arm"] for e in arms if e["baseline"]), None)
    converged = [r["run"] for r in val_rows if r["kind"] == CONVERGED]
    tables = [("the validation split: where arms, budgets and the baseline are chosen", arms)]
    if test_rows:
        test_arms = summarize_arms(test_rows, baseline, gain_interval)
        tables.insert(0, ("the test split: images that chose nothing", test_arms))
    text = []
    for where, summary in tables:
        heading = f"## Arms on {where} (mean ± standard deviation over seeds; final weights)"
        text += [heading, "", arms_markdown(summary), ""]
    text += [
        "gap closed = (arm - baseline) / (ceiling - baseline) on mAP50-95, per label split and seed; the ceiling is "
        "the mean of the split's fully_labeled_continued runs (the ceiling trained as long as the arms) where every "
        "fully_labeled run has one, else of its fully_labeled runs; the column beside it takes each ceiling run "
        "alone; the share of the oracle's gain is (arm - baseline) / (oracle_continued - baseline). "
        "The baseline is the labeled-only continuation "
        "(supervised_continued at its learning rates) with the highest mean mAP50-95 on validation. Controls: "
        "supervised_continued_bg<lambda> (the penalty alone), _lr<m> (m times the learning rate), _aug_<arm> "
        "(the arm's augmentation on labeled images alone). Background false positives and the pseudo-label audit "
        "are measured on validation only. The gain's interval (test split): the mean mAP50-95 gain over the "
        "arm's label splits and seeds, and its 2.5 and 97.5 percentiles over bootstrap resamples of the test images "
        "(each resample shared by every run); an interval that includes 0 is no gain.",
        "",
        *(_named(run, convergence_note(histories.get(run, [])), len(converged)) for run in converged),
        *filter(None, [sweep_edge_note(arms)]),
        *notes,
        "",
        *control_sections(test_rows, baseline, "the test split"),
        *control_sections(val_rows, baseline, "the validation split"),
        *scratch_sections(test_rows, "the test split"),
        *scratch_sections(val_rows, "the validation split"),
        *review_sections(rows),
        "## Runs",
        "",
        markdown_table(rows, columns),
    ]
    md = _write_text(out / "ablation.md", "\n".join(text) + "\n")
    plot_arms_against_lambda(arms, out)
    plot_curves_by_steps(histories, val_rows, out)
    plot_continuations(histories, val_rows, out)
    return md
