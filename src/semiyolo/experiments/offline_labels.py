"""The offline arms' pseudo-labels: made once per label split by the converged run's final weights, shared by
every seed, and waited for while another process makes them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..integrations.ultralytics.offline import pseudo_label_folder
from ..runfiles import RunLock, last_weights
from .runs import claim


def offline_pseudo_labels(out: Path, converged_dir: Path, run_cfg: dict[str, Any]) -> Path:
    """The offline arms' pseudo-labels: the converged run's final weights label the unlabeled folder once, with the
    config's teacher (``semi.teacher_flip``, ``semi.teacher_scale``); labels made with another teacher are made
    again. Another process making them is waited for."""
    target = out / "offline_pseudo_labels"
    lock = claim(RunLock(out, f".{target.name}.lock"), target.name, wait=True, busy="is making them")
    try:
        _make_pseudo_labels(target, converged_dir, run_cfg)
    finally:
        lock.release()
    return target


def _make_pseudo_labels(target: Path, converged_dir: Path, run_cfg: dict[str, Any]) -> None:
    semi = run_cfg["semi"]
    plain = {"flip": False, "scale": 1.0}  # what made summaries written before they recorded the teacher
    teacher = {"flip": bool(semi.get("teacher_flip", False)), "scale": float(semi.get("teacher_scale", 1.0))}
    summary = target / "summary.json"
    if not summary.is_file() or json.loads(summary.read_text()).get("teacher", plain) != teacher:
        pseudo_label_folder(
            last_weights(converged_dir),
            semi["unlabeled"],
            target,
            semi["filters"],
            imgsz=int(run_cfg["train"].get("imgsz", 640)),
            overwrite=True,  # no summary.json (an earlier attempt was cut short), or another teacher's labels
            teacher_flip=teacher["flip"],
            teacher_scale=teacher["scale"],
        )
