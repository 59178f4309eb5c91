"""The end-of-run report: Ultralytics' final metrics, the step counters and background false positives per
validation image, in ``summary.json`` in the run folder."""

from __future__ import annotations

import json
import math
from typing import Any

from ultralytics.utils import LOGGER

from ...data import list_images
from .evaluate import background_false_positives

SUMMARY_FILE = "summary.json"
METRICS_PREFIX, TEACHER_PREFIX = "metrics/", "teacher/"  # results.csv's student and teacher validation columns


def write_run_summary(trainer) -> None:
    """``summary.json`` for a finished run: the weights ``semi.report_weights`` names (``best.pt``, or ``last.pt``
    and the last epoch's metrics), their background false positives, the step counters, the semi settings. Where
    the weights reported hold an online run's teacher (``semi.ship: better``): the teacher's last validation."""
    last = trainer.semi.report_weights == "last" or not trainer.best.exists()
    weights = trainer.last if last else trainer.best
    metrics = final_row(trainer) if trainer.semi.report_weights == "last" else trainer.metrics
    teacher_in = getattr(trainer, "teacher_in", [])
    if weights.name in teacher_in:
        metrics = final_row(trainer, TEACHER_PREFIX)
    summary: dict[str, Any] = {k: _number(v) for k, v in (metrics or {}).items()}
    summary.update(
        {
            "weights": weights.name,
            "optimizer_steps": trainer.steps.optimizer_steps,
            "images_seen": trainer.steps.images_seen,
            "update_norm": _number(trainer.steps.mean_update_norm),
        }
    )
    images = list_images(trainer.data["val"]) if isinstance(trainer.data["val"], str) else []
    if weights.exists() and images:
        bg = background_false_positives(weights, images, conf=trainer.semi.bg_fp_conf, imgsz=trainer.args.imgsz)
        summary.update({f"bg_fp/{k}": v for k, v in bg.items()})
        LOGGER.info(
            f"Background false positives (conf > {bg['conf']}, IoU < {bg['iou']} with every object): "
            f"{bg['background_fp_per_image']:.3f} per image over {bg['images']} validation images; at the "
            f"F1-optimal confidence {bg['f1_conf']:.3f}: {bg['background_fp_per_image_at_f1']:.3f}"
        )
    summary["shipped"] = "teacher" if weights.name in teacher_in else "student"  # what the reported weights hold
    summary["semi"] = trainer.semi.model_dump()
    (trainer.save_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2))


def _number(value: Any) -> float | None:
    """A metric for strict JSON: rounded, ``None`` for NaN (no hidden labels, say)."""
    value = float(value)
    return None if math.isnan(value) else round(value, 5)


def final_row(trainer, prefix: str = METRICS_PREFIX) -> dict[str, float]:
    """The validation metrics of the last epoch (the final weights), from results.csv; with ``prefix`` ``teacher/``
    the teacher's, named as the student's (``metrics/...``)."""
    columns = trainer.read_results_csv()
    return {METRICS_PREFIX + k.removeprefix(prefix): v[-1] for k, v in columns.items() if k.startswith(prefix) and v}
