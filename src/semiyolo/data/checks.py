"""Checks of an Ultralytics detection dataset, run before any training starts."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from ..config import read_yaml
from ..errors import DataError

IMAGE_SUFFIXES = frozenset({".bmp", ".dng", ".jpeg", ".jpg", ".mpo", ".png", ".tif", ".tiff", ".webp", ".pfm", ".heic"})


def list_images(folder: str | Path) -> list[Path]:
    """Image files under ``folder`` (recursively), sorted."""
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def dataset_root(data: dict[str, Any], data_yaml: str | Path) -> Path:
    """The folder a data.yaml's relative entries start from: its ``path`` (itself relative to the file's folder)
    or, without one, the file's folder."""
    folder = Path(data_yaml).parent
    root = Path(data.get("path") or folder)
    return root if root.is_absolute() else (folder / root).resolve()


def split_entries(data: dict[str, Any], root: Path, split: str) -> list[Path]:
    """The entries (folders or list files) of ``data[split]``, absolute."""
    entries = data[split] if isinstance(data[split], list) else [data[split]]
    return [p if p.is_absolute() else root / p for p in (Path(str(e)) for e in entries)]


def _split_images(root: Path, entry: Any, data_yaml: Path, split: str) -> list[Path]:
    images: list[Path] = []
    for path in split_entries({split: entry}, root, split):
        if path.is_dir():
            images += list_images(path)
        elif path.is_file() and path.suffix == ".txt":
            images += [Path(line.strip()) for line in path.read_text().splitlines() if line.strip()]
        else:
            raise DataError(f"{data_yaml}: {split}: {path} does not exist (expected an image folder or a .txt list)")
    return images


def check_detection_dataset(data_yaml: str | Path) -> dict[str, Any]:
    """Read ``data_yaml`` and check that ``train`` and ``val`` name existing image folders with images and
    that ``names`` is given; returns the parsed mapping with ``nc``, the image counts (``n_train``, ``n_val``) and
    the images that are empty files (``empty_images``, which Ultralytics skips) added.

    Raises:
        DataError: naming the file, the key and the path at fault.
    """
    data_yaml = Path(data_yaml)
    if not data_yaml.is_file():
        raise DataError(f"{data_yaml}: dataset file not found")
    data = read_yaml(data_yaml)
    if not isinstance(data, dict):
        raise DataError(f"{data_yaml}: expected a mapping with train, val and names")
    missing = [k for k in ("train", "val", "names") if k not in data]
    if missing:
        raise DataError(f"{data_yaml}: missing key(s) {', '.join(missing)}")
    names = data["names"]
    if not isinstance(names, (dict, list)) or not names:
        raise DataError(f"{data_yaml}: names must be a non-empty list or mapping of class names")
    if "nc" in data and data["nc"] != len(names):
        raise DataError(f"{data_yaml}: nc is {data['nc']!r} but names lists {len(names)} classes; make them agree")
    root = dataset_root(data, data_yaml)
    data["empty_images"] = []
    for split in ("train", "val"):
        images = _split_images(root, data[split], data_yaml, split)
        if not images:
            raise DataError(f"{data_yaml}: {split}: no images found under {data[split]!r} (relative to {root})")
        for image in images:
            check_label_file(label_path(image), len(names))
        data[f"n_{split}"] = len(images)
        data["empty_images"] += [image for image in images if image.is_file() and image.stat().st_size == 0]
    data["nc"] = len(names)
    return data


def label_path(image: Path) -> Path:
    """Ultralytics' convention: the last ``images`` folder of the path becomes ``labels``, suffix ``.txt``."""
    parts = list(image.parts)
    if "images" in parts:
        i = len(parts) - 1 - parts[::-1].index("images")
        parts[i] = "labels"
    return Path(*parts).with_suffix(".txt")


def check_label_file(path: Path, nc: int) -> None:
    """:func:`read_label_file`, for its checks alone."""
    read_label_file(path, nc)


def read_label_file(path: Path, nc: int | None = None) -> np.ndarray:
    """The rows ``(class, cx, cy, w, h)`` of a YOLO detection label file, ``float32 [n, 5]``: each line has an
    integer class (in ``[0, nc)`` when ``nc`` is given) and coordinates in [0, 1]. A missing or empty file is an
    image without objects (``[0, 5]``).

    Raises:
        DataError: naming the file, the line and what is wrong with it.
    """
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
