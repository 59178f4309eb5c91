"""Atomic checkpoints: a run killed mid-write keeps its previous ``last.pt`` / ``best.pt`` loadable."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ...runfiles import describe_write_error
from .exact_resume import write_state


def save_atomically(trainer, save: Callable[[], Any], states: Mapping[str, dict[str, Any]]) -> Any:
    """Run Ultralytics' ``save`` with ``trainer.last`` / ``trainer.best`` pointing at ``.part`` files, then rename
    them into place. ``states`` (file name -> state, e.g. ``train_state.pt``) are written first, in two
    generations (:func:`~.exact_resume.write_state`). A write that fails for want of space or permission removes
    its partial files and raises :class:`~semiyolo.runfiles.OutputError` (one line for the user).

    Ultralytics' ``save_model`` writes to the paths ``trainer.last`` and ``trainer.best`` name; pointing them
    elsewhere for the call is the only way to get its checkpoint format written atomically."""
    final = (trainer.last, trainer.best)
    parts = [p.with_name(p.name + ".part") for p in final]
    try:
        trainer.wdir.mkdir(parents=True, exist_ok=True)
        for name, state in states.items():
            write_state(trainer.wdir / name, state)
        for part in parts:
            part.unlink(missing_ok=True)  # left by a run killed mid-write
        trainer.last, trainer.best = parts
        try:
            saved = save()
        finally:
            trainer.last, trainer.best = final
    except (OSError, RuntimeError) as err:
        _remove_parts(trainer.wdir, parts)
        described = describe_write_error(err, trainer.wdir)
        if described is None:
            raise
        raise described from err
    for part, path in zip(parts, final, strict=True):
        if part.exists():
            os.replace(part, path)
    return saved


def _remove_parts(folder: Path, parts: list[Path]) -> None:
    for part in (*parts, *folder.glob("*.pt.part")):
        part.unlink(missing_ok=True)
