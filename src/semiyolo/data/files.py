"""The files of a YOLO dataset, read and written one way: image folders, label files, list files, links.

Conventions are Ultralytics' (``ultralytics.data.utils.img2label_paths``, ``BaseDataset.get_img_files``), so that
what is read here is what Ultralytics trains on; the tests compare the two.

- A **label file** has one row ``class cx cy w h`` per object, the box normalised to [0, 1] of the image.
- A **list file** has one image path per line; a line starting with ``./`` is relative to the list file's
  folder, any other is taken as written.
"""

from __future__ import annotations

import math
import os
import secrets
import shutil
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from ..errors import DataError

IMAGE_SUFFIXES = frozenset({".bmp", ".dng", ".jpeg", ".jpg", ".mpo", ".png", ".tif", ".tiff", ".webp", ".pfm", ".heic"})


def list_images(folder: str | Path) -> list[Path]:
    """Image files under ``folder`` (recursively, by suffix in any case), sorted."""
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def label_path(image: str | Path) -> Path:
    """The label file of ``image``, by Ultralytics' rule: the last ``/images/`` folder of the path becomes
    ``/labels/`` and everything from the last ``.`` becomes ``.txt``.

    ``/d/images/train/a.JPG -> /d/labels/train/a.txt``; a path without an ``images`` folder keeps its folder:
    ``/d/a.png -> /d/a.txt``.
    """
    images, labels = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    return Path(labels.join(os.fspath(image).rsplit(images, 1)).rsplit(".", 1)[0] + ".txt")


def read_label_file(path: str | Path, nc: int | None = None) -> np.ndarray:
    """The rows ``(class, cx, cy, w, h)`` of a YOLO detection label file, ``float32 [n, 5]``: each line has an
    integer class (in ``[0, nc)`` when ``nc`` is given) and coordinates in [0, 1]. A missing or empty file is an
    image without objects (``[0, 5]``).

    Raises:
        DataError: naming the file, the line and what is wrong with it.
    """
    path = Path(path)
    rows: list[list[float]] = []
    if not path.is_file():
        return np.zeros((0, 5), np.float32)
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        where = f"{path}:{number}"
        if number == 1 and line.startswith("\ufeff"):
            raise DataError(f"{where}: the file starts with a byte-order mark (BOM); save it as UTF-8 without BOM")
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 5:
            raise DataError(f"{where}: expected 5 values 'class cx cy w h', got {len(fields)}: {line.strip()!r}")
        try:
            cls, *box = (float(v) for v in fields)
        except ValueError:
            raise DataError(f"{where}: not numbers: {line.strip()!r}") from None
        if not all(math.isfinite(v) for v in (cls, *box)):
            raise DataError(f"{where}: not finite numbers: {line.strip()!r}")
        if cls != int(cls) or cls < 0 or (nc is not None and cls >= nc):
            known = f": the dataset has {nc} classes (0 to {nc - 1})" if nc is not None else ""
            raise DataError(f"{where}: class {fields[0]} out of range{known}")
        if not all(0 <= v <= 1 for v in box):
            raise DataError(f"{where}: box {' '.join(fields[1:])} is not normalised to [0, 1]")
        rows.append([cls, *box])
    return np.array(rows, np.float32).reshape(-1, 5)


def write_label_file(path: str | Path, rows: Iterable[Sequence[float]]) -> None:
    """Write YOLO rows ``(class, cx, cy, w, h)`` (box normalised to [0, 1]) with six decimals, one line each;
    no rows: an empty file (an image of background only)."""
    Path(path).write_text("".join(f"{int(c)} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}\n" for c, cx, cy, w, h in rows))


def read_image_list(path: str | Path) -> list[Path]:
    """The image paths of a dataset list file, in file order: one a line (UTF-8, a byte-order mark allowed,
    blank lines skipped); ``./x.jpg`` is ``<the list's folder>/x.jpg``, as in Ultralytics; any other line is
    taken as written (Ultralytics reads a relative one from the working folder).

    Raises:
        OSError: the file cannot be read.
    """
    path = Path(path)
    lines = (line.strip() for line in path.read_text(encoding="utf-8-sig").splitlines())
    return [path.parent / line[2:] if line.startswith("./") else Path(line) for line in lines if line]


def write_image_list(path: str | Path, images: Iterable[str | Path]) -> Path:
    """Write a list file of ``images`` (one path a line, in order) with :func:`write_atomically`, so that a reader
    (another DDP rank, a killed run's successor) sees the old list or the new one. Returns ``path``."""

    def write(part: Path) -> None:
        with open(part, "x") as f:
            f.writelines(f"{image}\n" for image in images)

    return write_atomically(path, write)


def write_atomically(path: str | Path, write: Callable[[Path], object], sync: bool = False) -> Path:
    """Write ``path`` by calling ``write`` on a new file in the same folder, then renaming it over ``path``: a
    reader sees the old file or the new one, never half of one; if anything fails the old file is untouched and
    the new one removed. ``sync``: the file is flushed to disk before the rename and the folder's entry after.
    Creates the folder. Returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.part")
    try:
        write(part)
        if sync:
            fsync_path(part)
        os.replace(part, path)
    finally:
        part.unlink(missing_ok=True)
    if sync:
        fsync_path(path.parent)
    return path


def fsync_path(path: Path) -> None:
    """Flush a file (or a folder's entries) to disk; folders cannot be opened on every system."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def link(src: str | Path, dst: str | Path) -> None:
    """Make ``dst`` a symbolic link to ``src`` (resolved), replacing what was at ``dst`` and creating its folder;
    a copy where the file system cannot link."""
    src, dst = Path(src), Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists() or dst.is_symlink():
        dst.unlink()
    try:
        os.symlink(src.resolve(), dst)
    except OSError:
        shutil.copy2(src, dst)
