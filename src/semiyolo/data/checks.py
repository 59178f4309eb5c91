"""Checks of an Ultralytics detection dataset, run before any training starts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config_loading import read_yaml
from ..errors import DataError
from .files import label_path, read_label_file
from .lists import dataset_root, split_images


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
        images = split_images(data, split, root, data_yaml)
        if not images:
            raise DataError(f"{data_yaml}: {split}: no images found under {data[split]!r} (relative to {root})")
        for image in images:
            read_label_file(label_path(image), len(names))
        data[f"n_{split}"] = len(images)
        data["empty_images"] += [image for image in images if image.is_file() and image.stat().st_size == 0]
    data["nc"] = len(names)
    return data
