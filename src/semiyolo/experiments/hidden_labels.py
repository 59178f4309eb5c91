"""The unlabeled images' hidden labels (``semiyolo split`` keeps them): the fully labeled dataset the oracle and the
ceilings train on, and a note when some images have none."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import yaml

from ..data import dataset_root, label_path, list_images, split_entries, write_atomically, yaml_entries


def hidden_labels_dataset(data_yaml: str, unlabeled: str, out: Path) -> Path | None:
    """A ``data.yaml`` whose training images are the labeled and the unlabeled ones with their hidden labels
    (as ``semiyolo split`` keeps them), or ``None`` when the unlabeled images have no label files."""
    if not any(label_path(image).is_file() for image in list_images(unlabeled)):
        return None
    data = yaml.safe_load(Path(data_yaml).read_text())
    root = dataset_root(data, data_yaml)
    full = {
        **data,
        "path": str(root),
        "train": [*map(str, split_entries(data, root, "train")), str(Path(unlabeled).resolve())],
        "val": yaml_entries(split_entries(data, root, "val")),
    }
    text = yaml.safe_dump(full, sort_keys=False)
    return write_atomically(out / "fully_labeled.yaml", lambda part: part.write_text(text))  # others may read it


def missing_hidden_labels(images: Sequence[Path], unlabeled: str) -> str:
    """A note when some of ``images``, the unlabeled folder ``unlabeled``'s, have no label file: the oracle and the
    ceiling train them as background."""
    missing = sum(not label_path(image).is_file() for image in images)
    if not missing:
        return ""
    if missing == len(images):
        return f"the unlabeled images ({unlabeled}) have no label files"
    return f"{missing} of {len(images)} unlabeled images ({unlabeled}) have no label file: trained as background there"
