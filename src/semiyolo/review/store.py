"""The reviewed folder: what a person accepted, as a YOLO dataset, and a log of who did what.

Layout (``semi.reviewed`` names the folder)::

    reviewed/images/<name>       a link to the source image (a copy where the file system cannot link)
    reviewed/labels/<stem>.txt   its YOLO labels (Ultralytics' images/ -> labels/ rule), empty for "no objects"
    reviewed/review_log.jsonl    one JSON object a line: image, action, user, UTC time, boxes before and after

A save links the image, writes the new label file to a temporary file in the same folder (synced), appends its
log line (one ``os.write`` of the whole line, synced) and only then renames the temporary file over the old one
(``os.replace``): a reader never sees half a file, and an image counts as reviewed only once its label file is in
place. If anything fails (a full disk), the log is cut back to its previous length and the old label file stays:
the label file and its log line are written together or not at all.

A save may name the **version** of the label file it was made from (:func:`version_of`, given with the labels);
one made from another version (another tab saved first, or a program changed the file) raises
:class:`SaveConflict` and writes nothing. The version check, the ``before`` of the log and the write happen under
one lock.
"""

from __future__ import annotations

import errno
import getpass
import hashlib
import json
import os
import threading
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ..data import label_path, link, list_images, read_label_file, write_atomically, write_label_file
from ..data.files import fsync_path

LOG_NAME = "review_log.jsonl"
NOT_REVIEWED = "none"  # the version of a label file that does not exist


class SaveConflict(Exception):
    """A save made from a version of the label file that is no longer the one on disk; nothing was written."""

    def __init__(self, name: str, on_disk: str, sent: str, rows: np.ndarray | None) -> None:
        super().__init__(
            f"{name!r}: its reviewed labels changed since this page read it (another tab or program saved them): "
            f"version {on_disk} on disk, {sent} sent; nothing was written"
        )
        self.on_disk, self.sent, self.rows = on_disk, sent, rows


def version_of(content: bytes | None) -> str:
    """The version of a label file's ``content`` (``None``: no file): a hash, so equal contents are one version."""
    return NOT_REVIEWED if content is None else hashlib.sha256(content).hexdigest()[:16]


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


def append_log(path: str | Path, entry: dict[str, Any]) -> int:
    """Append ``entry`` as one JSON line to ``path`` in one write, synced before returning; returns the log's length
    before it. If the line cannot be written whole, the log is cut back to that length and the error raised."""
    line = (json.dumps(entry, ensure_ascii=False) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        length = os.fstat(fd).st_size
        try:
            if os.write(fd, line) != len(line):
                raise OSError(errno.ENOSPC, f"only part of a line could be appended to {path}")
            os.fsync(fd)
        except BaseException:
            os.ftruncate(fd, length)
            raise
    finally:
        os.close(fd)
    return length


def cut_log(path: str | Path, length: int) -> None:
    """Cut the log at ``path`` back to ``length`` bytes (undo :func:`append_log`), synced."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.ftruncate(fd, length)
        os.fsync(fd)
    finally:
        os.close(fd)


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
        return self.read_versioned(name, nc)[0]

    def read_versioned(self, name: str, nc: int | None = None) -> tuple[np.ndarray | None, str]:
        """``(rows or None, version)`` of ``name``'s reviewed label file, read at once under the lock.

        Raises:
            DataError: the file is malformed (naming it and the line).
        """
        with self.lock:
            return self._read_unlocked(name, nc)

    def _read_unlocked(self, name: str, nc: int | None) -> tuple[np.ndarray | None, str]:
        label = self.label_file(name)
        try:
            content = label.read_bytes()
        except FileNotFoundError:
            return None, NOT_REVIEWED
        return read_label_file(label, nc), version_of(content)

    def last_actions(self) -> dict[str, str]:
        """Each logged image's last action (``accept``, ``edit`` or ``no_objects``), by image name; a line that is
        not a log entry (not JSON, or without a string ``image`` and ``action``) is skipped."""
        with self.lock:
            try:
                text = self.log_path.read_text(encoding="utf-8", errors="replace")
            except FileNotFoundError:
                return {}
        actions = {}
        for line in text.splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(entry, dict) and isinstance(entry.get("image"), str) and isinstance(entry.get("action"), str):
                actions[entry["image"]] = entry["action"]
        return actions

    def save(
        self,
        name: str,
        image: Path,
        rows: Sequence[Sequence[float]],
        action: str,
        proposed: Sequence[Sequence[float]],
        version: str | None = None,
        nc: int | None = None,
    ) -> dict[str, Any]:
        """Link ``image`` as ``name``, write its label file and log the action, together or not at all; returns the
        log entry with the new ``version``. ``before`` is the reviewed label file, else ``proposed``; an ``accept``
        that changes it is logged as ``edit``.

        Raises:
            SaveConflict: ``version`` is given and is not the label file's on disk.
            OSError: the folder cannot be written; the label file and the log are as they were.
        """
        after = [_row(r) for r in rows]
        with self.lock:
            reviewed, on_disk = self._read_unlocked(name, nc)
            if version is not None and version != on_disk:
                raise SaveConflict(name, on_disk, version, reviewed)
            before = [_row(r) for r in (proposed if reviewed is None else reviewed.tolist())]
            entry = {
                "image": name,
                "action": "edit" if action == "accept" and after != before else action,
                "user": self.user,
                "time": utc_now(),
                "source": str(Path(image).resolve()),
                "before": before,
                "after": after,
            }
            linked = self.image_path(name)
            if not linked.is_file() or linked.resolve() != Path(image).resolve():
                link(image, linked)  # a re-review keeps its link: a reader never misses the image
            self._write_label_and_log(self.label_file(name), rows, entry)
            entry["version"] = version_of(self.label_file(name).read_bytes())
        return entry

    def _write_label_and_log(self, label: Path, rows: Sequence[Sequence[float]], entry: dict[str, Any]) -> None:
        """The label file's new content synced to a temporary file, the log line appended, then the rename; on any
        failure the log is cut back and the old label file kept."""
        logged: list[int] = []

        def write_then_log(part: Path) -> None:
            write_label_file(part, rows)
            fsync_path(part)  # the label is on disk before the log says it was written
            logged.append(append_log(self.log_path, entry))

        try:
            write_atomically(label, write_then_log, sync=True)
        except BaseException:
            if logged:
                cut_log(self.log_path, logged[0])
            raise


def _row(row: Sequence[float]) -> list[float]:
    """A label row for the log: the class as an integer, the box rounded as the label file writes it."""
    return [int(row[0]), *(round(float(v), 6) for v in row[1:5])]
