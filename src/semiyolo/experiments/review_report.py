"""The reviewed arms' table (:mod:`.review_arms`): is the review page's order worth a person's time?

Per number of reviewed images ``k`` and order: mAP50-95 (mean ± standard deviation over label splits and seeds)
and the **gain per reviewed image over random**, ``(arm - random) / k`` on mAP50-95, paired by label split and seed
with the ``random`` arm of the same ``k``, then mean ± standard deviation over the pairs (the spread). An order beats
random only where its mean gain is above that spread; the notes say, for each ``k``, where it is not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .arms import REVIEW_ORDERS, REVIEWED
from .held_out import TEST, VAL

PAGE, RANDOM, SPREAD = REVIEW_ORDERS
MAP = "metrics/mAP50-95(B)"
Pair = tuple[Any, Any]  # (label_split, seed)


def _map(row: dict[str, Any]) -> float:
    try:
        return float(row.get(MAP))
    except (TypeError, ValueError):
        return math.nan


def _mean_std(values: Sequence[float]) -> tuple[float, float, int]:
    """``(mean, sample standard deviation, count)`` of the finite ``values`` (std 0 for one, NaN for none)."""
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return math.nan, math.nan, 0
    mean = sum(finite) / len(finite)
    std = math.sqrt(sum((v - mean) ** 2 for v in finite) / (len(finite) - 1)) if len(finite) > 1 else 0.0
    return mean, std, len(finite)


def reviewed_by_arm(rows: Sequence[dict[str, Any]]) -> dict[tuple[int, str], dict[Pair, float]]:
    """The reviewed runs' mAP50-95 by ``(k, order)`` and ``(label_split, seed)``, ``k`` ascending, orders as
    :data:`~.arms.REVIEW_ORDERS`."""
    found: dict[tuple[int, str], dict[Pair, float]] = {}
    for row in rows:
        if row["kind"] == REVIEWED:
            arm = (int(row["review_k"]), str(row["review_order"]))
            found.setdefault(arm, {})[(row.get("label_split"), row["seed"])] = _map(row)
    rank = {order: i for i, order in enumerate(REVIEW_ORDERS)}
    return dict(sorted(found.items(), key=lambda item: (item[0][0], rank.get(item[0][1], len(rank)))))


def gains_per_image(arm: dict[Pair, float], random: dict[Pair, float], k: int) -> tuple[float, float, int]:
    """``(mean, std, pairs)`` of ``(arm - random) / k`` over the ``(label_split, seed)`` pairs both have."""
    return _mean_std([(arm[pair] - random[pair]) / k for pair in arm if pair in random])


def _pm(found: tuple[float, float, int], digits: int = 3) -> str:
    mean, std, count = found
    if count == 0:
        return "-"
    return f"{mean:+.{digits}f}" if count < 2 else f"{mean:+.{digits}f} ± {std:.{digits}f}"


MIN_VERDICT_PAIRS = 3  # a standard deviation of two differences can be near 0 by chance: no verdict rests on it


def verdict(order: str, k: int, gain: tuple[float, float, int]) -> str:
    """One line: whether ``order`` beats random at ``k`` by more than the spread of its gain per image, given at
    least :data:`MIN_VERDICT_PAIRS` pairs."""
    mean, std, count = gain
    said = f"{order} at k={k}: {_pm(gain, 4)} mAP50-95 per reviewed image over random ({count} pairs)"
    if count < MIN_VERDICT_PAIRS:
        return f"{said}; too few pairs for a spread to trust (at least {MIN_VERDICT_PAIRS}), no verdict"
    if mean > std:
        return f"{said}: beats random by more than the spread"
    return f"{said}: does NOT beat random by more than the spread"


def review_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """The reviewed arms' table and its verdicts, for the rows of one evaluation split; empty without any."""
    arms = reviewed_by_arm(rows)
    if not arms:
        return ""
    lines = [
        "| k | order | runs | mAP50-95 | gain per reviewed image over random |",
        "|---|---|---|---|---|",
    ]
    verdicts = []
    for (k, order), runs in arms.items():
        value = _mean_std(list(runs.values()))
        shown = "-" if value[2] == 0 else _pm(value).lstrip("+")
        random = arms.get((k, RANDOM))
        gain = (math.nan, math.nan, 0) if order == RANDOM or random is None else gains_per_image(runs, random, k)
        lines.append(f"| {k} | {order} | {len(runs)} | {shown} | {'-' if order == RANDOM else _pm(gain, 4)} |")
        if order != RANDOM and random is not None:
            verdicts.append(verdict(order, k, gain))
    return "\n".join([*lines, "", *verdicts])


def review_sections(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The report's lines on the reviewed arms: a table per evaluation split (test first, where there is one; rows
    without ``eval_split`` are validation rows) and how the gain is taken; none without reviewed runs."""
    lines = []
    for split, where in ((TEST, "the test split"), (VAL, "the validation split")):
        table = review_markdown([r for r in rows if r.get("eval_split", VAL) == split])
        lines += [f"## What to label next, on {where}: simulated review of k images", "", table, ""] if table else []
    if lines:
        lines += [
            "A simulated reviewer corrects k unlabeled images with their hidden labels, chosen in the review page's "
            "order (page), at random (random, seeded) or in the page's order with near-duplicates counted once "
            "(spread); the run then continues online for the same budget. Gain per reviewed image = (arm - random) "
            "/ k on mAP50-95, paired by label split and seed with random at the same k; ± is its standard "
            "deviation over the pairs (the spread).",
            "",
        ]
    return lines
