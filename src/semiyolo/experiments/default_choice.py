"""One default for every dataset, chosen on validation (issue 31, item 5).

The rule, fixed before any test figure is read:

0. The candidates are the online arms, less any fed the hidden labels (``semi.oracle_pseudo_labels``) and any
   continued at another learning rate than the others (a ``--variant``'s ``lr_scale``: a control, not a setting).
1. On each set, the baseline is the labeled-only continuation with the highest mean mAP50-95 on **validation**
   (:func:`~.report.best_baseline`), and every online arm's gap closed is taken against it, per label split and
   seed (:func:`~.report.summarize_arms`).
2. An arm is **eligible** when it ran on every set and, on validation, no label split of any set has it below the
   baseline by more than the spread (its mean paired difference over the split's seeds is at least minus the
   standard deviation of the baseline's mAP50-95 over that set's splits and seeds; a split with no pair with the
   baseline counts as harm), and, where it adds an augmentation, it beats that augmentation on labeled images alone
   (``supervised_continued_aug_<variant>``) on every set: a positive mean paired difference (a control that did not
   run is not beaten).
3. A set **ranks** arms only where its gap is real: its ceiling's mean mAP50-95 on validation (the mean over label
   splits of each split's ceiling minus the baseline's mean there) exceeds the baseline's spread. Where the labels
   a set lacks are worth less than the noise between runs, gap closed divides by noise: such a set still gates
   (rule 2) but does not rank.
4. Of the eligible arms, the default is the one with the highest **worst-set** mean gap closed on validation over
   the sets that rank (ties: the higher mean over them); with no set that ranks, the highest worst-set mean gain in
   mAP50-95 over the baseline. With none eligible, no arm is chosen and the defaults stay.

Only then are the chosen arm's figures read on the **test** images, against each set's validation-chosen baseline.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .arms import CONTINUED_AUG, ONLINE
from .control_report import paired_differences
from .held_out import TEST, TEST_METRICS, VAL, GainIntervals, rows_by_split
from .protocol import augmentation_control
from .report import PROTOCOL_COLUMNS, best_baseline, ceiling_runs_by_split, summarize_arms
from .rows import FED, MAP, arm_name, fed_hidden_labels, lr_scale, mean_std, number, pair
from .runs import ROW_FILE


def rows_under(folder: str | Path) -> list[dict[str, Any]]:
    """The protocol's rows of an ablation folder: every finished run (its ``ablation_row.json``) on validation,
    then on test where ``test_metrics.json`` holds its test figures. A run under ``split<k>/`` belongs to label
    split ``k``, any other to split 0; run names are relative to the split's folder."""
    folder = Path(folder)
    rows, tests = [], {}
    for row_file in sorted(folder.rglob(ROW_FILE)):
        run_dir = row_file.parent
        parts = run_dir.relative_to(folder).parts
        split = int(parts[0][5:]) if parts[0].startswith("split") and parts[0][5:].isdigit() else 0
        row = {**json.loads(row_file.read_text()), "label_split": split, "run": "/".join(parts)}
        rows.append(row)
        if (run_dir / TEST_METRICS).is_file():
            tests[row["run"]] = json.loads((run_dir / TEST_METRICS).read_text())
    return rows_by_split(rows, tests)


def rows_from_report(path: str | Path, fed: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The rows of a protocol report's ``ablation.csv`` (validation and test, as :func:`rows_under` gives them) for a
    set whose run folders are gone: columns back to the rows' keys and types (:data:`~.report.PROTOCOL_COLUMNS`),
    and, for a CSV older than its ``variant`` column, an online run's variant from its folder (``online_<variant>``).
    ``fed``: variants whose pseudo-labels were the hidden labels, needed for a CSV written before its
    ``oracle_pseudo_labels`` column (an error names the file otherwise). No per-image test statistics, so the test
    gains have no intervals."""
    path = Path(path)
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        table, headers = list(reader), set(reader.fieldnames or ())
    if FED not in headers and not fed:
        raise ConfigError(
            f"{path}: written before the {FED} column, so it cannot say which online arms were fed the hidden "
            "labels: name their variants (e.g. oracle_pl oracle_boxes)"
        )
    columns = {header: (key, kind) for header, key, kind in PROTOCOL_COLUMNS}
    rows = []
    for cells in table:
        row = {columns.get(h, (h, str))[0]: _cell_value(text, columns.get(h, (h, str))[1]) for h, text in cells.items()}
        if row["kind"] == ONLINE and "variant" not in headers:
            row["variant"] = str(row["run"]).rsplit("/", 1)[-1].removeprefix("online_")
        row[FED] = row.get(FED) == "True" or row.get("variant") in fed  # written as fed_hidden_labels' bool
        rows.append(row)
    return rows


def _cell_value(text: str, kind: type) -> Any:
    """A CSV cell as its column's ``kind`` (``str``, ``int`` or ``float``); an empty cell is ``None``, ``"nan"`` a
    NaN, and a cell of an integer column that is no number stays text (a label split named by its folder)."""
    if text == "" or kind is str:
        return text or None
    try:
        value = float(text)
    except ValueError:
        if kind is int:
            return text
        raise ValueError(f"expected a number, got {text!r}") from None
    return int(value) if kind is int and value.is_integer() else value


def harmful_splits(arm: Sequence[dict], baseline: Sequence[dict]) -> list[tuple[Any, float]]:
    """``(label split, mean paired difference)`` of the splits where ``arm`` falls below ``baseline`` by more than
    the spread (the standard deviation of the baseline's mAP50-95 over its splits and seeds). A split of either with
    no pair between them (the arm did not run there, or the baseline did not) counts, with a NaN difference."""
    spread = _spread(baseline)
    by_split: dict[Any, list[dict]] = {pair(row)[0]: [] for row in baseline}
    for row in arm:
        by_split.setdefault(pair(row)[0], []).append(row)
    found = []
    for split, members in sorted(by_split.items(), key=lambda item: str(item[0])):
        difference = _mean(paired_differences(members, baseline))
        if not difference >= -spread:  # NaN too: no pair with the baseline on the split shows it does no harm
            found.append((split, difference))
    return found


def _spread(baseline: Sequence[dict]) -> float:
    """The standard deviation of the baseline's mAP50-95 over its label splits and seeds."""
    return mean_std([number(r.get(MAP)) for r in baseline])[1]


def _mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else math.nan


def _by_arm(rows: Sequence[dict]) -> dict[str, list[dict]]:
    arms: dict[str, list[dict]] = {}
    for row in rows:
        arms.setdefault(arm_name(row), []).append(row)
    return arms


def labels_gap(val: Sequence[dict], baseline: Sequence[dict]) -> tuple[float, float]:
    """``(gap, spread)`` of one set on validation: the mean over label splits of the split's mean ceiling
    (:func:`~.report.ceiling_runs_by_split`) minus the baseline's mean there, and the standard deviation of the
    baseline's mAP50-95 over its splits and seeds. ``gap > spread`` is a gap an arm's share of can be ranked by. A
    split without a ceiling run is left out of the mean; a set with none has a NaN gap, and gates only."""
    by_split: dict[Any, list[float]] = {}
    for row in baseline:
        by_split.setdefault(row.get("label_split"), []).append(number(row.get(MAP)))
    ceilings = ceiling_runs_by_split(val)
    gaps = [  # mean_std leaves out a diverged (NaN) baseline run, and a split whose baseline all diverged
        statistics.fmean(ceilings[split]) - mean_std(values)[0]
        for split, values in by_split.items()
        if ceilings.get(split)
    ]
    return mean_std(gaps)[0], _spread(baseline)


def set_candidates(rows: Sequence[dict]) -> tuple[str | None, dict[str, dict[str, Any]], tuple[float, float]]:
    """On one set's validation rows: the baseline; per online arm its gap closed ``(mean, std)``, mean gain over
    the baseline, harmful splits, difference from its augmentation-only control and whether the set's gap is real;
    and the set's ``(gap, spread)`` (:func:`labels_gap`)."""
    val = [r for r in rows if r.get("eval_split", VAL) == VAL]
    arms = _by_arm(val)
    baseline = best_baseline(arms)
    baseline_rows = arms.get(baseline, [])
    gap, spread = labels_gap(val, baseline_rows)
    found = {}
    for entry in summarize_arms(val, baseline):
        if entry["kind"] != ONLINE or any(fed_hidden_labels(r) or lr_scale(r) != 1 for r in arms[entry["arm"]]):
            continue  # fed the hidden labels, or at another learning rate: a diagnostic, not a semi setting to ship
        members = arms[entry["arm"]]
        harm = harmful_splits(members, baseline_rows)
        control = arms.get(f"{CONTINUED_AUG}_{members[0].get('variant')}")
        settings = members[0].get("semi")  # a run's row holds its settings; hand-built rows may not
        adds = bool(augmentation_control(settings)) if settings else control is not None
        over_control = _mean(paired_differences(members, control)) if control and adds else None
        if adds and control is None:
            over_control = math.nan  # its augmentation-only control did not run: it cannot be shown to beat it
        found[entry["arm"]] = {
            "gap closed": entry["gap closed"],
            "gain": _mean(paired_differences(members, baseline_rows)),
            "harm": harm,
            "over control": over_control,
            "ranks": gap > spread,
        }
    return baseline, found, (gap, spread)


def choose_default(sets: Mapping[str, Sequence[dict]], folders: Mapping[str, Path] | None = None) -> dict[str, Any]:
    """The rule of this module over ``sets`` (set name -> its rows, :func:`rows_under`): ``{"baselines": set ->
    baseline, "gaps": set -> (gap, spread), "candidates": arm -> {set -> figures, "eligible", "worst", "mean",
    "ranked by"}, "chosen": arm or None, "test": set -> the chosen arm's test entry (:func:`~.report.summarize_arms`)
    or None}``. ``folders``: each set's ablation folder, for the test gains' bootstrap intervals
    (:class:`~.held_out.GainIntervals`)."""
    per_set = {name: set_candidates(rows) for name, rows in sets.items()}
    arms_seen = dict.fromkeys(arm for _, found, _ in per_set.values() for arm in found)
    candidates: dict[str, dict[str, Any]] = {}
    for arm in arms_seen:
        figures = {name: found.get(arm) for name, (_, found, _) in per_set.items()}
        everywhere = all(f is not None for f in figures.values())
        worst, mean, ranked_by = _rank(figures) if everywhere else (math.nan, math.nan, None)
        harmless = not math.isnan(worst) and not any(
            f["harm"] or _below_control(f["over control"]) for f in figures.values()
        )
        candidates[arm] = {**figures, "eligible": harmless, "worst": worst, "mean": mean, "ranked by": ranked_by}
    eligible = [arm for arm, c in candidates.items() if c["eligible"]]
    chosen = max(eligible, key=lambda arm: (candidates[arm]["worst"], candidates[arm]["mean"])) if eligible else None
    folders = folders or {}
    test = (
        {name: _test_entry(rows, per_set[name][0], chosen, folders.get(name)) for name, rows in sets.items()}
        if chosen
        else {}
    )
    baselines = {name: baseline for name, (baseline, _, _) in per_set.items()}
    gaps = {name: gap for name, (_, _, gap) in per_set.items()}
    return {"baselines": baselines, "gaps": gaps, "candidates": candidates, "chosen": chosen, "test": test}


def _rank(figures: Mapping[str, dict[str, Any]]) -> tuple[float, float, str | None]:
    """``(worst, mean, what)`` an arm is ranked by: gap closed over the sets whose gap is real, else the gain in
    mAP50-95 over every set; NaN where one is missing (a set with no pair with the baseline)."""
    ranking = [f["gap closed"][0] for f in figures.values() if f["ranks"]]
    what = "gap closed" if ranking else "gain"
    values = ranking or [f["gain"] for f in figures.values()]
    if not values or any(math.isnan(v) for v in values):
        return math.nan, math.nan, what
    return min(values), statistics.fmean(values), what


def _below_control(over_control: float | None) -> bool:
    """Whether an arm fails to beat its augmentation-only control (``None``: it adds no augmentation)."""
    return over_control is not None and not over_control > 0


def _test_entry(rows: Sequence[dict], baseline: str | None, arm: str, folder: Path | None) -> dict[str, Any] | None:
    test = [r for r in rows if r.get("eval_split") == TEST]
    if not test:
        return None
    intervals = GainIntervals(folder) if folder is not None else None
    entry = next((e for e in summarize_arms(test, baseline, intervals) if e["arm"] == arm), None)
    if entry is not None:
        arms = _by_arm(test)
        entry["gain"] = _mean(paired_differences(arms[arm], arms.get(baseline, [])))
    return entry


def _pm(pair_: tuple[float, float], scale: float = 1.0, unit: str = "") -> str:
    mean, std = pair_
    return "-" if math.isnan(mean) else f"{mean * scale:.0f}{unit} ± {std * scale:.0f}{unit}"


def default_choice_markdown(choice: dict[str, Any]) -> str:
    """The table that chose (validation), then the chosen arm on test."""
    sets = list(choice["baselines"])
    head = ["arm", *(f"{s}: gap closed (val)" for s in sets), "worst ranking set", "harm (split: mean difference)"]
    head += ["over its augmentation alone (val)", "eligible"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for arm, c in sorted(choice["candidates"].items(), key=lambda kv: -_sortable(kv[1]["worst"])):
        cells = [_set_cell(c.get(s)) for s in sets]
        harm = "; ".join(f"{s} split {k}: {d:+.3f}" for s in sets if c.get(s) for k, d in c[s]["harm"]) or "none"
        worst = "-" if math.isnan(c["worst"]) else _worst_cell(c["worst"], c["ranked by"])
        controls = [f"{s}: {c[s]['over control']:+.3f}" for s in sets if c.get(s) and c[s]["over control"] is not None]
        mark = "**chosen**" if arm == choice["chosen"] else ("yes" if c["eligible"] else "no")
        lines.append("| " + " | ".join([arm, *cells, worst, harm, "; ".join(controls) or "-", mark]) + " |")
    baselines = ", ".join(f"{s}: {b}" for s, b in choice["baselines"].items())
    gaps = "; ".join(
        f"{s}: no ceiling (gates only)"
        if math.isnan(gap)
        else f"{s}: {gap:+.3f} against a spread of {spread:.3f} ({'ranks' if gap > spread else 'gates only'})"
        for s, (gap, spread) in choice["gaps"].items()
    )
    text = [*lines, "", f"Baselines, chosen on validation: {baselines}.", f"The labels' gap (val): {gaps}.", ""]
    if choice["chosen"] is None:
        return "\n".join([*text, "No arm is eligible: the defaults stay as they are.", ""])
    text += [
        f"## `{choice['chosen']}` on the test images",
        "",
        "| set | mAP50-95 | gain [95 % interval] | gap closed |",
    ]
    text.append("|---|---|---|---|")
    for name, entry in choice["test"].items():
        if entry is None:
            text.append(f"| {name} | no test split | - | - |")
            continue
        gain = entry["gain interval"]
        interval = "-" if math.isnan(entry["gain"]) else f"{entry['gain']:+.3f} [no interval]"
        if not math.isnan(gain[0]):
            interval = f"{gain[0]:+.3f} [{gain[1]:+.3f}, {gain[2]:+.3f}]"
        text.append(
            f"| {name} | {entry['mAP50-95'][0]:.3f} ± {entry['mAP50-95'][1]:.3f} | {interval} | "
            f"{_pm(entry['gap closed'], 100, ' %')} |"
        )
    return "\n".join([*text, ""])


def _set_cell(figures: dict[str, Any] | None) -> str:
    if figures is None:
        return "not run"
    closed = _pm(figures["gap closed"], 100, " %")
    gain = "-" if math.isnan(figures["gain"]) else f"{figures['gain']:+.3f}"
    return closed if figures["ranks"] else f"{closed} (gap within spread; gain {gain})"


def _worst_cell(worst: float, ranked_by: str | None) -> str:
    return f"{100 * worst:.0f} %" if ranked_by == "gap closed" else f"gain {worst:+.3f}"


def _sortable(value: float) -> float:
    return -math.inf if math.isnan(value) else value


__all__ = ["choose_default", "default_choice_markdown", "harmful_splits", "rows_from_report", "rows_under"]
