"""An ablation's results without its weights: the files the report reads of each finished run, copied to a folder
small enough to commit, and back.

A finished run's report needs its row (``ablation_row.json``), its training arguments (``args.yaml``), its history
(``results.csv``) and, where the data has a test split, its cached test metrics and per-image statistics; a reviewed
arm adds the names of its images, a label split the review orders. Checkpoints (tens of MB a run) stay behind, so an
archive can be reported (``semiyolo ablate ... --report-only``) but not continued: a split restored from one is
finished, or is trained again in a new folder.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from .held_out import TEST_IMAGE_STATS, TEST_METRICS
from .review_arms import CHOSEN_FILE, ORDER_FILE
from .runs import ROW_FILE

RUN_RESULTS = (ROW_FILE, "args.yaml", "results.csv", TEST_METRICS, TEST_IMAGE_STATS, CHOSEN_FILE)
FOLDER_RESULTS = (ORDER_FILE,)  # written once for a label split, beside its runs


def copy_results(source: Path, target: Path) -> list[Path]:
    """Copy the report's files (:data:`RUN_RESULTS`) of every finished run under ``source`` (a folder holding
    ``ablation_row.json``) and :data:`FOLDER_RESULTS` to the same places under ``target``; a file ``target``
    already has is kept, never overwritten. Returns the files copied (paths under ``target``)."""
    source, target = Path(source), Path(target)
    if not source.is_dir():
        raise FileNotFoundError(f"{source}: no such folder of ablation results")
    wanted = [f for run in sorted(source.glob(f"**/{ROW_FILE}")) for f in _existing(run.parent, RUN_RESULTS)]
    wanted += [f for name in FOLDER_RESULTS for f in sorted(source.glob(f"**/{name}"))]
    copied = []
    for path in wanted:
        destination = target / path.relative_to(source)
        if destination.exists():
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        partial = destination.with_name(destination.name + ".part")
        shutil.copyfile(path, partial)
        partial.replace(destination)  # a copy cut short never passes for a finished one
        copied.append(destination)
    return copied


def _existing(folder: Path, names: tuple[str, ...]) -> list[Path]:
    return [folder / name for name in names if (folder / name).is_file()]
