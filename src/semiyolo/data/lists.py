"""A dataset's splits as image lists, and the list files a run trains from.

An Ultralytics data dict names each split (``train``, ``val``) by an entry or a list of entries; an entry is an
image folder (searched recursively) or a list file (:func:`~semiyolo.data.files.read_image_list`). The trainers
rewrite ``train`` through the pure functions below, each returning a new dict and writing its list files
atomically (:func:`~semiyolo.data.files.write_image_list`):

- :func:`repeated_train`: the labeled images ``times`` over (oversampling);
- :func:`held_out_train`: a slice held out for DSAT's threshold estimates (:func:`split_holdout`);
- :func:`pseudo_labeled_train`: an offline run's pseudo-labeled images added.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import DataError
from .files import list_images, read_image_list, write_image_list

REPEATED_LIST = "labeled_repeated.txt"
KEPT_LIST, HELD_LIST = "semi_train.txt", "dsat_holdout.txt"


def dataset_root(data: Mapping[str, Any], data_yaml: str | Path) -> Path:
    """The folder a data.yaml's relative entries start from: its ``path`` (itself relative to the file's folder)
    or, without one, the file's folder."""
    folder = Path(data_yaml).parent
    root = Path(data.get("path") or folder)
    return root if root.is_absolute() else (folder / root).resolve()


def split_entries(data: Mapping[str, Any], root: Path, split: str) -> list[Path]:
    """The entries (folders or list files) of ``data[split]``, relative ones joined to ``root``."""
    entries = data[split] if isinstance(data[split], list) else [data[split]]
    return [p if p.is_absolute() else root / p for p in (Path(str(e)) for e in entries)]


def yaml_entries(entries: Sequence[Path | str]) -> str | list[str]:
    """``entries`` as a ``data.yaml`` split: one path as a string, several as a list."""
    return str(entries[0]) if len(entries) == 1 else [str(e) for e in entries]


def split_images(
    data: Mapping[str, Any], split: str, root: Path | None = None, source: str | Path = "data"
) -> list[Path]:
    """The images of ``data[split]``, entry by entry: a folder's images sorted, a list file's in its order.
    Relative entries start from ``root`` (the working folder if None, as in Ultralytics).

    Raises:
        DataError: naming ``source`` and ``split``, for an entry that is neither a folder nor a list file.
    """
    images: list[Path] = []
    for path in split_entries(data, root or Path(), split):
        if path.is_dir():
            images += list_images(path)
        elif path.is_file():  # a list file, whatever its suffix, as in Ultralytics
            images += read_image_list(path)
        else:
            raise DataError(f"{source}: {split}: {path} does not exist (expected an image folder or a list file)")
    return images


def train_images(data: Mapping[str, Any]) -> list[Path]:
    """The training images of an Ultralytics data dict (whose entries Ultralytics has made absolute)."""
    return split_images(data, "train")


def split_holdout(images: Sequence[Path], fraction: float, max_held: int = 200) -> tuple[list[Path], list[Path]]:
    """``(kept, held)``: ``n = min(max_held, max(1, round(len(images) * fraction)))`` images held out, at the evenly
    spaced positions ``int(i * len(images) / n)`` for ``i < n``; both keep the order of ``images``.

    Raises:
        ValueError: when holding out ``n`` images leaves none to train on.
    """
    n_held = min(max_held, max(1, round(len(images) * fraction)))
    if len(images) - n_held < 1:
        raise ValueError(f"holding out {n_held} of {len(images)} labeled train images leaves none to train on")
    step = len(images) / n_held
    held = {int(i * step) for i in range(n_held)}
    return [p for i, p in enumerate(images) if i not in held], [p for i, p in enumerate(images) if i in held]


def repeated_train(data: Mapping[str, Any], times: int, folder: Path) -> dict[str, Any]:
    """``data`` training on ``folder/labeled_repeated.txt``: its training images, the whole list ``times`` over."""
    listing = write_image_list(folder / REPEATED_LIST, train_images(data) * times)
    return {**data, "train": str(listing)}


def held_out_train(
    data: Mapping[str, Any], fraction: float, folder: Path, max_held: int = 200
) -> tuple[dict[str, Any], list[Path]]:
    """``(data training on folder/semi_train.txt, the held-out images)``: :func:`split_holdout` of its training
    images; the held-out ones are listed in ``folder/dsat_holdout.txt``.

    Raises:
        ValueError: as :func:`split_holdout`.
    """
    kept, held = split_holdout(train_images(data), fraction, max_held)
    write_image_list(folder / HELD_LIST, held)
    return {**data, "train": str(write_image_list(folder / KEPT_LIST, kept))}, held


def pseudo_labeled_train(data: Mapping[str, Any], pseudo_labels: str | Path) -> dict[str, Any]:
    """``data`` with ``pseudo_labels/images`` (an output of ``semiyolo pseudo-label``) after its train entries.

    Raises:
        DataError: the folder has no ``images``.
    """
    folder = Path(pseudo_labels) / "images"
    if not folder.is_dir():
        raise DataError(f"{folder} not found (write it with 'semiyolo pseudo-label')")
    train = data["train"] if isinstance(data["train"], list) else [data["train"]]
    return {**data, "train": [*map(str, train), str(folder)]}
