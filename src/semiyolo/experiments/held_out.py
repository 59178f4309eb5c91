"""The protocol's test split: every finished run evaluated once on images that never chose anything.

Arms, thresholds, budgets and the baseline's learning rate are chosen on the validation images (the figures in
each run's ``ablation_row.json``); the same runs are then measured on the dataset's ``test`` split, cached in
``test_metrics.json`` beside the row. ``ablation.csv`` carries both, one row per run and split, with
``eval_split`` saying which.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..data import write_atomically
from ..integrations.ultralytics.image_stats import ImageStats, image_resamples, percentile_interval
from ..runfiles import last_weights

TEST_METRICS = "test_metrics.json"
TEST_IMAGE_STATS = "test_image_stats.npz"  # each test image's matching statistics, for the bootstrap over images
VAL, TEST = "val", "test"
METRIC_PREFIX = "metrics/"
VAL_ONLY = ("bg_fp/", "semi/pl_")  # measured on the validation images alone: blank in a test row


def has_test_split(data_yaml: str | Path) -> bool:
    """Whether ``data_yaml`` names a ``test`` split."""
    return bool((yaml.safe_load(Path(data_yaml).read_text()) or {}).get(TEST))


def measured_on_test(run_dir: Path, evaluate: Callable[[Path, Path], dict[str, float]]) -> dict[str, float] | None:
    """The final weights' metrics on the test split: ``test_metrics.json`` if an earlier call wrote it beside the
    per-image statistics (``test_image_stats.npz``), else ``evaluate(weights, image_stats_path)``, which writes the
    statistics, with its metrics written (atomically) for the next call. Without the weights (results restored from
    an archive) the cached metrics alone, statistics or not; ``None`` (said) without those either."""
    cached = _cached_metrics(run_dir / TEST_METRICS)
    if cached is not None and (run_dir / TEST_IMAGE_STATS).is_file():
        return cached
    if not last_weights(run_dir).is_file():
        if cached is None:
            print(
                f"WARNING: {run_dir}: no test metrics and no weights to measure them with; left out of the test table"
            )
        return cached
    metrics = evaluate(last_weights(run_dir), run_dir / TEST_IMAGE_STATS)
    write_atomically(run_dir / TEST_METRICS, lambda part: part.write_text(json.dumps(metrics)))
    return metrics


def _cached_metrics(path: Path) -> dict[str, float] | None:
    """``test_metrics.json``'s metrics; ``None`` where it is missing, or empty, cut short or not UTF-8 (written by
    an older version, not atomically: measured again)."""
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return None


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


BOOTSTRAP_REPLICATES = 300  # resamples of the test images behind each interval


class GainIntervals:
    """The test gains' bootstrap intervals over the test images, for the runs under ``out``: called with the
    ``(arm run, baseline run)`` pairs of one arm (run names relative to ``out``), it gives ``(gain, low, high)``, the
    mean mAP50-95 gain over the pairs and its 95 % interval when other test images of the same kind had been drawn
    (:func:`~semiyolo.integrations.ultralytics.image_stats.bootstrap_gain`; every run shares each resample). NaNs
    where a run has no ``test_image_stats.npz``."""

    def __init__(self, out: Path, replicates: int = BOOTSTRAP_REPLICATES, seed: int = 0) -> None:
        self.out, self.replicates, self.seed = out, replicates, seed
        self.resamples = None  # drawn once the number of test images is known
        self.maps: dict[str, tuple[float, np.ndarray]] = {}  # run -> (mAP50-95, mAP50-95 per resample)

    def _maps(self, run: str) -> tuple[float, np.ndarray]:
        if run not in self.maps:
            stats = ImageStats.load(self.out / run / TEST_IMAGE_STATS)
            if self.resamples is None:
                self.resamples = image_resamples(len(stats), self.replicates, self.seed)
            if self.resamples.shape[1] != len(stats):
                raise ValueError(f"{run}: measured on {len(stats)} test images, others on {self.resamples.shape[1]}")
            self.maps[run] = stats.map50_95(), stats.resampled_map50_95(self.resamples)
        return self.maps[run]

    def __call__(self, pairs: Sequence[tuple[str, str]]) -> tuple[float, float, float]:
        if not pairs or not all((self.out / r / TEST_IMAGE_STATS).is_file() for pair in pairs for r in pair):
            return math.nan, math.nan, math.nan
        found = [(self._maps(arm), self._maps(base)) for arm, base in pairs]
        gain = float(np.mean([a[0] - b[0] for a, b in found]))
        return (gain, *percentile_interval(np.mean([a[1] - b[1] for a, b in found], axis=0)))
