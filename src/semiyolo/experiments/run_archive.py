"""An ablation's results without its weights: the files a finished run's report and reuse need, copied to a folder
small enough to commit, and back.

A finished run is its row (``ablation_row.json``, written last), its training arguments (``args.yaml``), its history
(``results.csv``) and, where the data has a test split, its cached test metrics and per-image statistics; a label
split adds its review orders. Checkpoints (tens of MB a run) stay behind, so an archive can be reported
(``semiyolo ablate ... --report-only``, over a folder whose datasets exist: ``benchmarks/ssod_controls.sh`` makes
them again) but not continued: a split restored from one is finished, or is trained again in a new folder.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ..data import write_atomically
from .held_out import TEST_IMAGE_STATS, TEST_METRICS
from .review_arms import ORDER_FILE
from .run_folder import ARGS_FILE, HISTORY_FILE
from .runs import ROW_FILE

RUN_RESULTS = (ARGS_FILE, HISTORY_FILE, TEST_METRICS, TEST_IMAGE_STATS, ROW_FILE)  # the row last: it says "finished"
FOLDER_RESULTS = (ORDER_FILE,)  # written once for a label split, beside its runs


def copy_results(source: Path, target: Path) -> list[Path]:
    """Copy the files of :data:`RUN_RESULTS` of every finished run under ``source`` (a folder holding
    ``ablation_row.json``), its row last, and :data:`FOLDER_RESULTS`, to the same places under ``target``, each
    written atomically; a file ``target`` already has is kept (a run whose row there differs is said). Returns the
    files copied (paths under ``target``).

    Raises:
        FileNotFoundError: ``source`` is not a folder.
        ValueError: one folder lies inside the other (each call would copy the last one's copies again).
    """
    source, target = Path(source).resolve(), Path(target).resolve()
    if not source.is_dir():
        raise FileNotFoundError(f"{source}: no such folder of ablation results")
    if source in target.parents or target in source.parents or source == target:
        raise ValueError(f"{source} and {target}: one lies inside the other; copy to a folder apart")
    wanted = []
    for row in sorted(source.glob(f"**/{ROW_FILE}")):
        _say_if_differs(row, target / row.relative_to(source))
        wanted += [row.parent / name for name in RUN_RESULTS if (row.parent / name).is_file()]
    wanted += [f for name in FOLDER_RESULTS for f in sorted(source.glob(f"**/{name}"))]
    copied = []
    for path in wanted:
        destination = target / path.relative_to(source)
        if not destination.exists():
            copied.append(write_atomically(destination, lambda part, path=path: shutil.copyfile(path, part)))
    return copied


def _say_if_differs(row: Path, kept: Path) -> None:
    if kept.is_file() and kept.read_bytes() != row.read_bytes():
        print(f"WARNING: {kept.parent} holds another result of this run than {row.parent}; kept, not overwritten")
