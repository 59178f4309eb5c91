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
from collections import defaultdict
from pathlib import Path

from semiyolo.experiments.rows import mean_std, number

SPLITS = ("test", "val")


def _arm(row: dict[str, str]) -> str:
    return row["run"].rsplit("/", 1)[-1]


def _by_arm(rows: list[dict[str, str]], split: str, column: str = "mAP50-95") -> dict[str, dict[tuple, float]]:
    """``{arm: {(label_split, seed): value}}`` on ``split``."""
    out: dict[str, dict[tuple, float]] = defaultdict(dict)
    for row in rows:
        if row["eval_split"] == split:
            out[_arm(row)][(row["label_split"], row["seed"])] = number(row[column])
    return out


def _paired(values: dict[str, dict[tuple, float]], a: str, b: str) -> list[float]:
    if a not in values or b not in values:
        raise SystemExit(f"no runs of {a if a not in values else b} in this folder")
    return [values[a][k] - values[b][k] for k in sorted(values[a].keys() & values[b].keys())]


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
        values = _by_arm(rows, split)
        for a, b in args.pair:
            diffs = _paired(values, a, b)
            mean, std = mean_std(diffs)
            each = ", ".join(f"{d:+.4f}" for d in diffs)
            print(f"{split}: {a} - {b}: {mean:+.4f} ± {std:.4f} over {len(diffs)} pairs ({each})")
        for a, low, high in args.share:
            gained, room = mean_std(_paired(values, a, low))[0], mean_std(_paired(values, high, low))[0]
            print(f"{split}: ({a} - {low}) / ({high} - {low}) = {gained:+.4f} / {room:+.4f} = {gained / room:.0%}")
    for column in args.mean:
        by_arm = _by_arm(rows, "val", column)
        cells = {arm: mean_std(list(v.values())) for arm, v in by_arm.items()}
        print(f"val {column}: " + "; ".join(f"{arm} {m:.3f} ± {s:.3f}" for arm, (m, s) in cells.items() if m == m))
    total = sum(
        number(r["minutes"]) for r in rows if r["eval_split"] == "val" and number(r["minutes"]) == number(r["minutes"])
    )
    print(f"minutes over every run: {total:.0f} ({total / 60:.1f} hours)")


if __name__ == "__main__":
    main()
