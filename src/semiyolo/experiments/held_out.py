"""The protocol's test split: every finished run evaluated once on images that never chose anything.

Arms, thresholds, budgets and the baseline's learning rate are chosen on the validation images (the figures in
each run's ``ablation_row.json``); the same runs are then measured on the dataset's ``test`` split, cached in
``test_metrics.json`` beside the row. ``ablation.csv`` carries both, one row per run and split, with
``eval_split`` saying which.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from ..data import write_atomically
from ..runfiles import last_weights

TEST_METRICS = "test_metrics.json"
VAL, TEST = "val", "test"
METRIC_PREFIX = "metrics/"
VAL_ONLY = ("bg_fp/", "semi/pl_")  # measured on the validation images alone: blank in a test row


def has_test_split(data_yaml: str | Path) -> bool:
    """Whether ``data_yaml`` names a ``test`` split."""
    return bool((yaml.safe_load(Path(data_yaml).read_text()) or {}).get(TEST))


def measured_on_test(run_dir: Path, evaluate: Callable[[Path], dict[str, float]]) -> dict[str, float]:
    """The final weights' metrics on the test split: ``test_metrics.json`` if an earlier call wrote it, else
    ``evaluate(weights)``, written there (atomically) for the next call."""
    cached = run_dir / TEST_METRICS
    if cached.is_file():
        try:
            return json.loads(cached.read_text())
        except ValueError:  # empty, cut short or not UTF-8 (JSONDecodeError and UnicodeDecodeError are ValueErrors)
            pass  # cut short while written by an older version: measured again
    metrics = evaluate(last_weights(run_dir))
    write_atomically(cached, lambda part: part.write_text(json.dumps(metrics)))
    return metrics


def rows_by_split(rows: Sequence[dict[str, Any]], tests: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    """Each run's row on the validation images (``eval_split: val``), then, for runs in ``tests`` (run name ->
    test metrics), the same row with the test split's metrics in place of the validation ones and the
    validation-only figures (background false positives, pseudo-label audit) blanked (``eval_split: test``)."""
    out = [{**row, "eval_split": VAL} for row in rows]
    for row in rows:
        if row["run"] not in tests:
            continue
        test = {k: v for k, v in row.items() if not k.startswith((METRIC_PREFIX, *VAL_ONLY))}
        out.append({**test, **tests[row["run"]], "eval_split": TEST})
    return out
