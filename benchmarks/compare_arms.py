"""Arms of one controlled-protocol folder compared pair by pair (same label split and seed), from its ``ablation.csv``:
the figures docs/BENCHMARKS.md quotes beside the report's tables. Nothing trains.

    python benchmarks/compare_arms.py docs/ablation/shapes10_controlled/ablation.csv \
        --pair online_oracle_boxes online_default --pair online_no_regress online_default \
        --share online_oracle_boxes online_default online_oracle_pl --mean pl_precision pl_recall pl_iou minutes

``--pair A B``: mAP50-95 of A minus B per label split and seed, on test and validation (mean ± std, each pair).
``--share A LOW HIGH``: the mean of A - LOW over the mean of HIGH - LOW (paired), on test and validation.
``--mean COLUMN ...``: each arm's mean and std of those columns on validation (where the audit is measured), and the
sum of ``minutes`` over every run (each run counted once).
"""

from __future__ import annotations

import argparse
import csv
import math
from collections import defaultdict
from pathlib import Path

from semiyolo.experiments.control_report import paired_differences
from semiyolo.experiments.rows import MAP, mean_std, number

SPLITS = ("test", "val")


def _arms(rows: list[dict[str, str]], split: str) -> dict[str, list[dict]]:
    """``{arm (the run folder's name): its rows on split}``, each with its mAP50-95 where the report reads it."""
    out: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        if row["eval_split"] == split:
            out[row["run"].rsplit("/", 1)[-1]].append({**row, MAP: number(row["mAP50-95"])})
    return out


def _paired(arms: dict[str, list[dict]], a: str, b: str) -> list[float]:
    """``a - b`` per label split and seed (:func:`~semiyolo.experiments.control_report.paired_differences`)."""
    if a not in arms or b not in arms:
        raise SystemExit(f"no runs of {a if a not in arms else b} in this folder")
    return paired_differences(arms[a], arms[b])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("csv", type=Path)
    parser.add_argument("--pair", nargs=2, action="append", default=[], metavar=("A", "B"))
    parser.add_argument("--share", nargs=3, action="append", default=[], metavar=("A", "LOW", "HIGH"))
    parser.add_argument("--mean", nargs="+", default=[], metavar="COLUMN")
    args = parser.parse_args()
    with args.csv.open(newline="") as f:
        rows = list(csv.DictReader(f))
    for split in SPLITS:
        arms = _arms(rows, split)
        for a, b in args.pair:
            diffs = _paired(arms, a, b)
            mean, std = mean_std(diffs)
            each = ", ".join(f"{d:+.4f}" for d in diffs)
            print(f"{split}: {a} - {b}: {mean:+.4f} ± {std:.4f} over {len(diffs)} pairs ({each})")
        for a, low, high in args.share:
            gained, room = mean_std(_paired(arms, a, low))[0], mean_std(_paired(arms, high, low))[0]
            print(f"{split}: ({a} - {low}) / ({high} - {low}) = {gained:+.4f} / {room:+.4f} = {gained / room:.0%}")
    for column in args.mean:
        cells = {arm: mean_std([number(r[column]) for r in members]) for arm, members in _arms(rows, "val").items()}
        shown = "; ".join(f"{arm} {m:.3f} ± {s:.3f}" for arm, (m, s) in cells.items() if not math.isnan(m))
        print(f"val {column}: {shown}")
    minutes = [number(r["minutes"]) for r in rows if r["eval_split"] == "val"]
    total = sum(m for m in minutes if not math.isnan(m))
    print(f"minutes over every run: {total:.0f} ({total / 60:.1f} hours)")


if __name__ == "__main__":
    main()
