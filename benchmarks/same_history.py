"""Whether a run trained again reproduced an archived one: two Ultralytics ``results.csv`` compared column by column,
epoch by epoch, every figure but the wall-clock ``time``. Exit 0 and one line when they agree, 1 and the first
differences when they do not.

    python benchmarks/same_history.py docs/ablation/digits10_controlled/runs/split1/supervised_converged/results.csv \
        /tmp/abl/c_digits/controls/split1/supervised_converged/results.csv

A label split's continuations need its converged run's weights, which an archive does not keep (80 MB). With
deterministic settings (``train.deterministic``, ``train.workers`` 0, one thread) the converged run can be trained
again on a machine of the same kind; when its history is the archived one figure for figure, the continuations
trained from the lost run and those trained from the new one share a start, and the split can be completed.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

IGNORED = ("time",)  # wall-clock seconds: differ between any two runs


def _rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        sys.exit(f"{path}: no such file")
    with path.open(newline="") as handle:
        return [{key.strip(): value.strip() for key, value in row.items()} for row in csv.DictReader(handle)]


def differences(archived: list[dict[str, str]], again: list[dict[str, str]], tolerance: float = 0.0) -> list[str]:
    """Each figure that differs by more than ``tolerance`` (``epoch E: column: archived -> again``), a column one
    history lacks, or a different number of epochs."""
    found = []
    if len(archived) != len(again):
        found.append(f"{len(archived)} epochs archived, {len(again)} trained again")
    for archived_row, again_row in zip(archived, again, strict=False):
        for column in sorted(set(archived_row) | set(again_row)):
            if column in IGNORED:
                continue
            old, new = archived_row.get(column), again_row.get(column)
            if old is None or new is None:
                found.append(f"epoch {archived_row.get('epoch')}: {column}: only in one history")
            elif abs(float(old) - float(new)) > tolerance:
                found.append(f"epoch {archived_row.get('epoch')}: {column}: {old} -> {new}")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("archived", type=Path, help="the archived run's results.csv")
    parser.add_argument("again", type=Path, help="results.csv of the run trained again")
    parser.add_argument("--tolerance", type=float, default=0.0, help="largest difference allowed (default: 0)")
    args = parser.parse_args()
    again = _rows(args.again)
    found = differences(_rows(args.archived), again, args.tolerance)
    if found:
        print(f"{len(found)} differences; the first: " + "; ".join(found[:5]))
        sys.exit(1)
    print(f"the same history: {len(again)} epochs, every figure (time aside) equal")


if __name__ == "__main__":
    main()
