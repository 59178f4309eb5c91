"""The protocol's rows (one dict per run and evaluation split, as in ``ablation.csv``) read as arms and numbers:
what the report's tables share."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

from .arms import CONTROLS, ONLINE, REVIEWED, VARIANT_LR_SCALE

MAP = "metrics/mAP50-95(B)"
FED = "oracle_pseudo_labels"  # the semi key that feeds an online run the hidden labels as its pseudo-labels


def fed_hidden_labels(row: dict[str, Any]) -> bool:
    """Whether an online run's pseudo-labels were the hidden labels (``semi.oracle_pseudo_labels``, a diagnostic):
    from its row's settings, or from the :data:`FED` column of an ``ablation.csv`` read back."""
    return bool((row.get("semi") or {}).get(FED, row.get(FED)))


def arm_name(row: dict[str, Any]) -> str:
    """The arm a run belongs to: its kind, and for online runs the variant's name (``--variant``) or the penalty
    weight and mode."""
    if row["kind"] in (*CONTROLS, REVIEWED):
        return str(row["run"]).rsplit("/", 1)[-1]  # supervised_continued_lr2, _bg1, _aug_<variant>, reviewed_k5_page
    if row["kind"] != ONLINE:
        return row["kind"]
    if row.get("variant"):
        return f"online {row['variant']}"
    mode = row.get("bg_mode") or "max"
    return f"online bg{row['lambda_bg']:g}" + ("" if mode == "max" else f" {mode}")


def lr_scale(row: dict[str, Any]) -> float:
    """The learning rate a continuation took, in multiples of ``--continue-lr``: its row's ``lr_scale`` (a
    ``--variant``'s), 1 where it has none (every other arm, and rows written before the fact)."""
    scale = number(row.get(VARIANT_LR_SCALE))
    return 1.0 if math.isnan(scale) else scale


def number(value: Any) -> float:
    """``value`` as a float; NaN where it is none (an empty cell, a missing figure)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value) of the finite ``values``; NaN for none."""
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return math.nan, math.nan
    return statistics.fmean(finite), statistics.stdev(finite) if len(finite) > 1 else 0.0


Pair = tuple[Any, Any]  # (label_split, seed): the runs one continuation is paired within


def pair(row: dict[str, Any]) -> Pair:
    """The run's label split and seed."""
    return row.get("label_split"), row["seed"]
