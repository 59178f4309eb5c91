"""What an online run leaves behind besides Ultralytics' weights: the teacher as a checkpoint of its own
(``weights/teacher.pt``), and with ``semi.ship: better`` the better of teacher and student on the last validation
as the run's ``last.pt`` (and ``best.pt`` where the teacher beats the student's best epoch too).

Peers report the teacher (Unbiased Teacher, Soft Teacher, Efficient Teacher evaluate the EMA teacher), while
Ultralytics ships the student's own EMA; which is better depends on the run's length and the teacher's pace, so
it is measured, on the validation images, not assumed.
"""

from __future__ import annotations

import shutil
from copy import deepcopy
from pathlib import Path

import torch
from ultralytics.utils import LOGGER

from ...data import write_atomically
from .banner import STUDENT_MAP, TEACHER_MAP

TEACHER_WEIGHTS = "teacher.pt"


def save_teacher_checkpoint(teacher: torch.nn.Module, last: Path) -> Path:
    """``teacher.pt`` beside ``last``: ``last``'s checkpoint (stripped by Ultralytics' final evaluation) holding
    ``teacher``'s weights instead, half precision like Ultralytics' own, so that ``YOLO(teacher.pt)`` loads it."""
    checkpoint = torch.load(last, map_location="cpu", weights_only=False)
    criterion, teacher.criterion = getattr(teacher, "criterion", None), None  # the student's, shared: not copied
    try:
        model = deepcopy(teacher).cpu().half().to(memory_format=torch.contiguous_format)
    finally:
        teacher.criterion = criterion
    checkpoint.update(model=model, ema=None, updates=None, optimizer=None)
    path = last.with_name(TEACHER_WEIGHTS)
    write_atomically(path, lambda part: torch.save(checkpoint, part))
    return path


def teacher_is_better(history: dict[str, list[float]]) -> tuple[bool, bool]:
    """``(beats the last epoch, beats every epoch)``: the teacher's last validation mAP50-95 against the student's
    (its EMA, Ultralytics' metrics) at the last epoch, and at its best epoch; ``history`` holds results.csv's
    columns."""
    teacher = [float(v) for v in history.get(TEACHER_MAP) or []]
    student = [float(v) for v in history.get(STUDENT_MAP) or []]
    if not teacher or not student or teacher[-1] == 0:  # 0: the teacher was not validated (columns start at 0)
        return False, False
    return teacher[-1] > student[-1], teacher[-1] > max(student)


def ship_better(teacher_weights: Path, last: Path, best: Path, history: dict[str, list[float]]) -> list[str]:
    """With ``semi.ship: better``: ``teacher_weights`` copied over ``last`` where the teacher beat the student at
    the last validation, and over ``best`` too where it beat every epoch's student; returns the names of the
    weights that now hold the teacher (none: the student stays everywhere)."""
    beats_last, beats_best = teacher_is_better(history)
    if not beats_last:
        return []
    targets = [last, *([best] if beats_best and best.exists() else [])]
    for target in targets:
        write_atomically(target, lambda part: shutil.copyfile(teacher_weights, part))
    names = " and ".join(t.name for t in targets)
    LOGGER.info(
        f"semi.ship better: the teacher's mAP50-95 {history[TEACHER_MAP][-1]:.4g} beat the student's "
        f"{history[STUDENT_MAP][-1]:.4g} at the last validation: {names} {'hold' if len(targets) > 1 else 'holds'} "
        "the teacher now (the student's EMA stays in the results' metrics/ columns)"
    )
    return [t.name for t in targets]
