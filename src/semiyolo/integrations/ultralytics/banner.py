"""What a run is about to do and what it did, as lines of text (the trainers log them with a ``semi:`` prefix):
warnings where burn-in or a warm-up covers the whole run, the start banner and the closing summary. Pure functions
of the settings and figures they are given."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ...config import SemiConfig
from ...schedules import ramp_weight
from .online_teacher import teacher_half_life_steps

STUDENT_MAP, TEACHER_MAP = "metrics/mAP50-95(B)", "teacher/mAP50-95(B)"
PL_PRECISION, PL_RECALL = "semi/pl_precision", "semi/pl_recall"


def coverage_warnings(semi: SemiConfig, epochs: int) -> list[str]:
    """One line per setting that withholds part of the training from the whole ``epochs``-epoch run: a burn-in
    as long as the run, or a warm-up that leaves ``lambda_unsup`` / ``lambda_bg`` below its target at the end."""
    online = semi.mode == "online"
    if semi.burn_in >= epochs and (online or semi.lambda_bg > 0):
        withheld = [*(["the unlabeled images are never used"] if online else []), *_bg_withheld(semi)]
        return [
            f"semi.burn_in: {semi.burn_in} epochs cover the whole {epochs}-epoch run: {' and '.join(withheld)}; "
            f"lower semi.burn_in below {epochs}"
        ]
    found = []
    if online:
        found += _warmup_warning(semi, epochs, "lambda_unsup", semi.lambda_unsup_warmup, "linear")
    found += _warmup_warning(semi, epochs, "lambda_bg", semi.lambda_bg_warmup, semi.lambda_bg_schedule)
    return found


def _bg_withheld(semi: SemiConfig) -> list[str]:
    return ["lambda_bg stays 0 (no background penalty)"] if semi.lambda_bg > 0 else []


def _warmup_warning(semi: SemiConfig, epochs: int, weight: str, warmup: int, schedule: str) -> list[str]:
    target = getattr(semi, weight)
    reached = ramp_weight(epochs - 1, target, semi.burn_in, warmup, schedule)
    if target == 0 or reached >= target:
        return []
    longest = max(w for w in range(warmup) if ramp_weight(epochs - 1, target, semi.burn_in, w, schedule) >= target)
    return [
        f"semi.{weight}_warmup: {warmup} epochs after semi.burn_in {semi.burn_in} leave {weight} below {target:g} for "
        f"the whole {epochs}-epoch run (at most {reached:.3g}); lower semi.{weight}_warmup to {longest} or less"
    ]


def start_banner(
    semi: SemiConfig,
    epochs: int,
    labeled_batches: int,
    batch: int,
    unlabeled_images: int | None = None,
    teacher_decay: float | None = None,
    optimizer_steps: int | None = None,
    pseudo_label_summary: Mapping[str, Any] | None = None,
) -> list[str]:
    """The lines logged once before the first epoch: the data each epoch sees, burn-in and the loss weights'
    schedule, and online the teacher's pace, the pseudo-targets and the filters."""
    lines = [_data_line(semi, labeled_batches, batch, unlabeled_images, pseudo_label_summary)]
    lines += _schedule_lines(semi, epochs)
    if semi.mode == "online":
        lines.append(_teacher_line(semi, teacher_decay, optimizer_steps))
        lines.append(
            f"pseudo-targets: {semi.pseudo_targets}; candidates from score {semi.pseudo_min_score:g} "
            f"(semi.pseudo_min_score); filters: {describe_filters(semi)}"
        )
    return lines


def _data_line(
    semi: SemiConfig, labeled_batches: int, batch: int, unlabeled: int | None, pseudo: Mapping[str, Any] | None
) -> str:
    labeled = f"{labeled_batches} labeled batches of {batch} per epoch"
    if semi.mode == "online":
        size = max(1, round(batch * semi.unlabeled_ratio))
        seen = labeled_batches * size
        share = f", each image {seen / unlabeled:.2g} times" if unlabeled and seen > unlabeled else ""
        return (
            f"mode online (mean teacher): {labeled}; {unlabeled} unlabeled images in {semi.unlabeled}, {seen} per "
            f"epoch ({labeled_batches} batches of {size}: semi.unlabeled_ratio {semi.unlabeled_ratio:g} x batch "
            f"{batch}{share})"
        )
    if semi.mode == "offline":
        counts = pseudo or {}
        return (
            f"mode offline: {labeled} (pseudo-labeled images included); {semi.pseudo_labels}: "
            f"{counts.get('images', '?')} pseudo-labeled images, {counts.get('pseudo_labels', '?')} pseudo-labels "
            f"({counts.get('skipped', 0)} skipped)"
        )
    return f"mode supervised: {labeled}"


def _schedule_lines(semi: SemiConfig, epochs: int) -> list[str]:
    online = semi.mode == "online"
    if semi.burn_in == 0:
        burn = "burn-in: none"
    else:
        what = "labeled images only" if online else "no background penalty"
        burn = f"burn-in: {_epochs(semi.burn_in)} ({what})"
    if online:
        burn += f"; the unlabeled images join at epoch {semi.burn_in + 1} of {epochs}"
    lines = [burn]
    weights = [_ramp("lambda_bg", semi.lambda_bg, semi.burn_in, semi.lambda_bg_warmup, semi.lambda_bg_schedule)]
    if online:
        weights.insert(0, _ramp("lambda_unsup", semi.lambda_unsup, semi.burn_in, semi.lambda_unsup_warmup, "linear"))
    lines.append("; ".join(weights))
    return lines


def _ramp(name: str, target: float, burn_in: int, warmup: int, schedule: str) -> str:
    if target == 0:
        return f"{name} 0"
    if warmup == 0 or schedule == "constant":
        return f"{name} {target:g} from epoch {burn_in + 1}"
    return f"{name} {target:g}, reached over {_epochs(warmup)} ({schedule}) from epoch {burn_in + 1}"


def _teacher_line(semi: SemiConfig, decay: float | None, steps: int | None) -> str:
    decay = semi.teacher_decay if decay is None else decay
    if semi.teacher_half_life is not None and steps:
        pace = f"half-life {teacher_half_life_steps(semi, steps):g} optimizer steps (semi.teacher_half_life "
        pace += f"{semi.teacher_half_life:g} of {steps} steps"
        floor = semi.teacher_min_half_life
        pace += f", at least semi.teacher_min_half_life {floor:g})" if floor else ")"
    else:
        pace = f"half-life {math.log(0.5) / math.log(decay):.3g} optimizer steps"
    warmup = f", warm-up tau {semi.teacher_tau:g}" if semi.teacher_tau else ""
    return f"teacher: EMA of the student, decay {decay:.6g} per optimizer step, {pace}{warmup}"


def describe_filters(semi: SemiConfig) -> str:
    """``score(threshold=0.5) -> cap(max_per_image=100)``; ``none`` for an empty chain."""
    chain = [f"{f.name}({', '.join(f'{k}={v}' for k, v in f.params.items())})" for f in semi.filters]
    return " -> ".join(chain) or "none (every candidate above semi.pseudo_min_score after NMS)"


def closing_summary(last_row: Mapping[str, float], weights: str, removed: Sequence[str]) -> list[str]:
    """The lines logged at the end: the last validation of the student (and teacher), the pseudo-labels'
    precision and recall against the unlabeled images' hidden labels, the weights, and what state was removed."""
    student = last_row.get(STUDENT_MAP)
    line = f"finished: student mAP50-95 {_figure(student)} (last epoch's validation)"
    if TEACHER_MAP in last_row:
        line += f", teacher mAP50-95 {_figure(last_row[TEACHER_MAP])}"
    lines = [line]
    if PL_PRECISION in last_row or PL_RECALL in last_row:
        lines.append(_audit_line(last_row.get(PL_PRECISION, math.nan), last_row.get(PL_RECALL, math.nan)))
    lines.append(f"weights: {weights}; settings: semi.yaml, figures: results.csv and summary.json beside them")
    if removed:
        lines.append(
            f"removed the exact-resume state of the finished run ({', '.join(removed)}); set semi.keep_state: true "
            "to keep it (semiyolo ablate does, for its continuations)"
        )
    return lines


def _audit_line(precision: float, recall: float) -> str:
    if math.isnan(recall):
        return "pseudo-labels: no hidden labels beside the unlabeled images (or none seen), precision / recall unknown"
    prefix = "pseudo-labels against the unlabeled images' hidden labels (last epoch):"
    if math.isnan(precision):
        return f"{prefix} none kept, recall 0"
    return f"{prefix} precision {precision:.3g}, recall {recall:.3g}"


def _figure(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(float(value)) else f"{float(value):.4g}"


def _epochs(n: int) -> str:
    return f"{n} epoch{'s' if n != 1 else ''}"
