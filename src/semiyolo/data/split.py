"""Seeded labeled / unlabeled splits of a YOLO dataset (the 1 %, 5 %, 10 % protocols), class-stratified.

The unlabeled images keep their label files next to them, under ``unlabeled/labels``: semi-supervised
training never reads them for a loss, only to audit the teacher's pseudo-labels (``semi/pl_precision``).
"""

from __future__ import annotations

import json
import math
import random
from collections import defaultdict
from pathlib import Path

import yaml

from ..errors import UserInputError
from .checks import check_detection_dataset
from .files import label_path, link, read_label_file
from .lists import dataset_root, split_entries, split_images, yaml_entries


def _classes_of(image: Path) -> set[int]:
    return {int(c) for c in read_label_file(label_path(image))[:, 0]}


def choose_labeled(images: list[Path], fraction: float, seed: int) -> list[Path]:
    """A seeded subset of ``round(fraction * N)`` images (at least one) in which every class has about
    ``fraction`` of its images: rarer classes pick first, the rest of the budget is drawn at random."""
    if not 0 < fraction < 1:
        raise UserInputError(f"--fraction must lie in (0, 1), got {fraction}")
    rng = random.Random(seed)
    order = images[:]
    rng.shuffle(order)
    budget = max(1, round(fraction * len(images)))
    by_class: dict[int, list[Path]] = defaultdict(list)
    for image in order:
        for c in _classes_of(image):
            by_class[c].append(image)
    chosen: dict[Path, None] = {}
    for c in sorted(by_class, key=lambda k: len(by_class[k])):
        wanted = max(1, math.ceil(fraction * len(by_class[c])))
        have = sum(1 for image in chosen if c in _classes_of(image))
        for image in by_class[c]:
            if have >= wanted or len(chosen) >= budget:
                break
            if image not in chosen:
                chosen[image] = None
                have += 1
    for image in order:
        if len(chosen) >= budget:
            break
        chosen.setdefault(image, None)
    return sorted(chosen)


def split_dataset(data_yaml: str | Path, fraction: float, seed: int, out: str | Path) -> Path:
    """Write ``out/labeled`` (images and labels), ``out/unlabeled`` (images, and their labels kept aside for
    auditing), ``out/data.yaml`` (train: the labeled images; val: the dataset's), ``out/config.yaml`` (an
    online run) and ``out/split.json``. Returns the config's path."""
    data = check_detection_dataset(data_yaml)
    root = dataset_root(data, data_yaml)
    images = split_images(data, "train", root, data_yaml)
    if len(images) < 2:
        raise UserInputError(f"{data_yaml}: train has {len(images)} image(s); a split needs at least 2")
    labeled = choose_labeled(images, fraction, seed)
    unlabeled = sorted(set(images) - set(labeled))
    out = Path(out).resolve()
    sources: dict[str, list[str]] = {}
    for part, members in (("labeled", labeled), ("unlabeled", unlabeled)):
        for i, image in enumerate(members):
            name = f"{i:06d}_{image.name}"
            sources.setdefault(part, []).append(str(image))
            link(image, out / part / "images" / name)
            if label_path(image).is_file():
                link(label_path(image), out / part / "labels" / f"{Path(name).stem}.txt")
    new_data = {
        "path": str(out),
        "train": "labeled/images",
        "val": yaml_entries(split_entries(data, root, "val")),
        **({"test": yaml_entries(split_entries(data, root, "test"))} if data.get("test") else {}),
        "names": data["names"],
    }
    (out / "data.yaml").write_text(yaml.safe_dump(new_data, sort_keys=False))
    config = {
        "model": "yolov8n.yaml",
        "data": str(out / "data.yaml"),
        "train": {},
        "semi": {"mode": "online", "unlabeled": str(out / "unlabeled" / "images")},
    }
    (out / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    counts = {part: _class_counts(members) for part, members in (("labeled", labeled), ("unlabeled", unlabeled))}
    manifest = {
        "source": str(Path(data_yaml).resolve()),
        "fraction": fraction,
        "seed": seed,
        **sources,
        "class_images": counts,
    }
    (out / "split.json").write_text(json.dumps(manifest, indent=2))
    return out / "config.yaml"


def _class_counts(images: list[Path]) -> dict[int, int]:
    counts: dict[int, int] = defaultdict(int)
    for image in images:
        for c in _classes_of(image):
            counts[c] += 1
    return dict(sorted(counts.items()))
