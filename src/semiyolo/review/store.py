"""The reviewed folder: what a person accepted, as a YOLO dataset, and a log of who did what.

Layout (``semi.reviewed`` names the folder)::

    reviewed/images/<name>       a link to the source image (a copy where the file system cannot link)
    reviewed/labels/<stem>.txt   its YOLO labels (Ultralytics' images/ -> labels/ rule), empty for "no objects"
    reviewed/review_log.jsonl    one JSON object a line: image, action, user, UTC time, boxes before and after

A label file is written to a temporary file in the same folder, flushed to disk and renamed over the old one
(``os.replace``), after the image link: a reader never sees half a file, and an image counts as reviewed only once
its label file is in place. The log is appended after the rename, one line at a time, flushed and synced.
"""

from __future__ import annotations

import getpass
import json
import os
import threading
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ..data import label_path, link, list_images, read_label_file, write_atomically, write_label_file

LOG_NAME = "review_log.jsonl"


def reviewed_images(folder: str | Path) -> list[Path]:
    """The images of a reviewed ``folder`` whose label file is written, sorted; ``[]`` when the folder does not
    exist yet. Each path is ``folder/images/<name>``, a link whose ``resolve()`` is the original image; its labels
    are at :func:`semiyolo.data.label_path` of it (``folder/labels/<stem>.txt``). Reads nothing but the folder."""
    images = Path(folder) / "images"
    if not images.is_dir():
        return []
    return [image for image in list_images(images) if label_path(image).is_file()]


def write_label_atomically(path: str | Path, rows: Iterable[Sequence[float]]) -> Path:
    """Write YOLO rows to ``path`` (:func:`semiyolo.data.write_label_file`'s format) with
    :func:`semiyolo.data.write_atomically`, synced: if anything fails the old file is untouched. Returns ``path``."""
    return write_atomically(path, lambda part: write_label_file(part, rows), sync=True)


def append_log(path: str | Path, entry: dict[str, Any]) -> None:
    """Append ``entry`` as one JSON line to ``path``, flushed and synced before returning."""
    with open(path, "a", encoding="utf-8") as log:
        log.write(json.dumps(entry, ensure_ascii=False) + "\n")
        log.flush()
        os.fsync(log.fileno())


def utc_now() -> str:
    """The current UTC time, ISO 8601 with a ``Z``, to the millisecond."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ReviewStore:
    """Reads and writes one reviewed folder; one write at a time (the server's handlers run in threads).

    Image names are paths relative to the source's image folder, with ``/`` (already checked by the caller)."""

    def __init__(self, folder: str | Path, user: str | None = None) -> None:
        self.folder = Path(folder)
        self.user = user or getpass.getuser()
        self.lock = threading.Lock()

    @property
    def log_path(self) -> Path:
        return self.folder / LOG_NAME

    def image_path(self, name: str) -> Path:
        return self.folder / "images" / name

    def label_file(self, name: str) -> Path:
        return label_path(self.image_path(name))

    def is_reviewed(self, name: str) -> bool:
        return self.label_file(name).is_file()

    def read(self, name: str, nc: int | None = None) -> np.ndarray | None:
        """The reviewed rows ``(class, cx, cy, w, h)`` of ``name``, or ``None`` if it was not reviewed."""
        label = self.label_file(name)
        return read_label_file(label, nc) if label.is_file() else None

    def save(
        self, name: str, image: Path, rows: Sequence[Sequence[float]], action: str, before: Sequence[Sequence[float]]
    ) -> dict[str, Any]:
        """Link ``image`` as ``name``, write its label file atomically, then log the action; returns the log entry."""
        with self.lock:
            linked = self.image_path(name)
            if not linked.is_file() or linked.resolve() != Path(image).resolve():
                link(image, linked)  # a re-review keeps its link: a reader never misses the image
            write_label_atomically(self.label_file(name), rows)
            entry = {
                "image": name,
                "action": action,
                "user": self.user,
                "time": utc_now(),
                "source": str(Path(image).resolve()),
                "before": [_row(r) for r in before],
                "after": [_row(r) for r in rows],
            }
            append_log(self.log_path, entry)
        return entry


def _row(row: Sequence[float]) -> list[float]:
    """A label row for the log: the class as an integer, the box rounded as the label file writes it."""
    return [int(row[0]), *(round(float(v), 6) for v in row[1:5])]
