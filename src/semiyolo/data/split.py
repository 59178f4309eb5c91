"""Seeded labeled / unlabeled splits of a YOLO dataset (the 1 %, 5 %, 10 % protocols), class-stratified.

The unlabeled images keep their label files next to them, under ``unlabeled/labels``: semi-supervised
training never reads them for a loss, only to audit the teacher's pseudo-labels (``semi/pl_precision``).
"""

from __future__ import annotations

import json
import math
import random
from collections import Counter, defaultdict
from pathlib import Path

import yaml
from PIL import Image

from ..errors import UserInputError
from .checks import check_detection_dataset
from .files import label_path, link, read_label_file, write_atomically
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
    online run sized to the data: :func:`train_settings`) and ``out/split.json``, written last. Images keep their
    names (:func:`link_names`). Returns the config's path."""
    data = check_detection_dataset(data_yaml)
    root = dataset_root(data, data_yaml)
    images = split_images(data, "train", root, data_yaml)
    if len(images) < 2:
        raise UserInputError(f"{data_yaml}: train has {len(images)} image(s); a split needs at least 2")
    labeled = choose_labeled(images, fraction, seed)
    unlabeled = sorted(set(images) - set(labeled))
    out = Path(out).resolve()
    link_name = dict(zip(images, link_names(images), strict=True))
    sources: dict[str, list[str]] = {}
    for part, members in (("labeled", labeled), ("unlabeled", unlabeled)):
        for image in members:
            sources.setdefault(part, []).append(str(image))
            link(image, out / part / "images" / link_name[image])
            if label_path(image).is_file():
                link(label_path(image), label_path(out / part / "images" / link_name[image]))
    new_data = {
        "path": str(out),
        "train": "labeled/images",
        "val": yaml_entries(split_entries(data, root, "val")),
        **({"test": yaml_entries(split_entries(data, root, "test"))} if data.get("test") else {}),
        "names": data["names"],
    }
    _write_text(out / "data.yaml", yaml.safe_dump(new_data, sort_keys=False))
    train, why = train_settings(images, len(labeled))
    config = {
        "model": "yolov8n.yaml",
        "data": str(out / "data.yaml"),
        "train": train,
        "semi": {"mode": "online", "unlabeled": str(out / "unlabeled" / "images")},
    }
    comment = "".join(f"# {line}\n" for line in why)
    _write_text(out / "config.yaml", comment + yaml.safe_dump(config, sort_keys=False))
    parts = {"labeled": labeled, "unlabeled": unlabeled}
    names = data["names"] if isinstance(data["names"], dict) else dict(enumerate(data["names"]))
    manifest = {
        "source": str(Path(data_yaml).resolve()),
        "fraction": fraction,
        "seed": seed,
        **sources,
        "class_images": {part: _class_counts(members) for part, members in parts.items()},
        "class_boxes": {part: _box_counts(members) for part, members in parts.items()},
        "names": {str(index): str(name) for index, name in names.items()},
        "train_notes": why,
    }
    _write_text(out / "split.json", json.dumps(manifest, indent=2))
    return out / "config.yaml"


def _write_text(path: Path, text: str) -> None:
    write_atomically(path, lambda part: part.write_text(text))


def link_names(images: list[Path]) -> list[str]:
    """The names ``images`` get in one folder: their own, except where two would share a label file (the same
    stem): the folders that tell those apart are folded into the name (``a/x.png``, ``b/x.png`` -> ``a_x.png``,
    ``b_x.png``), and the suffix too where they lie in one folder (``x.png``, ``x.jpg`` -> ``x_png.png``,
    ``x_jpg.jpg``). A name still shared after that gets the image's number in front."""
    by_stem: dict[str, list[Path]] = defaultdict(list)
    for image in images:
        by_stem[image.stem].append(image)
    names: dict[Path, str] = {}
    for group in by_stem.values():
        names.update(_told_apart(group) if len(group) > 1 else {group[0]: group[0].name})
    taken = Counter(Path(name).stem for name in names.values())
    return [
        names[image] if taken[Path(names[image]).stem] == 1 else f"{i:06d}_{names[image]}"
        for i, image in enumerate(images)
    ]


def _told_apart(group: list[Path]) -> dict[Path, str]:
    """Names for images of one stem: the folders in which their paths differ, then the suffix if still shared."""
    folders = [image.parent.parts for image in group]
    common_head = _shared_length(folders)
    common_tail = _shared_length([f[common_head:][::-1] for f in folders])
    differing = [f[common_head : len(f) - common_tail] for f in folders]
    stems = Counter(differing)
    return {
        image: "_".join([*parts, image.stem if stems[parts] == 1 else f"{image.stem}_{image.suffix[1:]}"])
        + image.suffix
        for image, parts in zip(group, differing, strict=True)
    }


def _class_counts(images: list[Path]) -> dict[int, int]:
    counts: dict[int, int] = defaultdict(int)
    for image in images:
        for c in _classes_of(image):
            counts[c] += 1
    return dict(sorted(counts.items()))


def _shared_length(sequences: list[tuple[str, ...]]) -> int:
    """How many leading items all ``sequences`` share."""
    shared = 0
    for items in zip(*sequences, strict=False):  # up to the shortest
        if len(set(items)) > 1:
            break
        shared += 1
    return shared


def _box_counts(images: list[Path]) -> dict[int, int]:
    counts: Counter[int] = Counter()
    for image in images:
        counts.update(int(c) for c in read_label_file(label_path(image))[:, 0])
    return dict(sorted(counts.items()))


MAX_IMGSZ = 640  # Ultralytics' default size: larger images train at it, as they do in Ultralytics
EPOCHS_RANGE = (30, 60)
TARGET_STEPS = 1000  # optimizer steps a split's run aims at, at Ultralytics' default batch
DEFAULT_BATCH = 16
SIZE_SAMPLE = 200  # images whose size is read


def train_settings(images: list[Path], n_labeled: int) -> tuple[dict[str, int], list[str]]:
    """``({"epochs": ..., "imgsz": ...}, the reasons, one a line)`` for an online run on ``n_labeled`` of
    ``images``: the images' median longer side rounded down to a multiple of 32 (32 to 640), and about
    :data:`TARGET_STEPS` optimizer steps at batch 16, within :data:`EPOCHS_RANGE` epochs."""
    sides = sorted(_longer_sides(images[:: max(1, len(images) // SIZE_SAMPLE)]))
    if sides:
        median = sides[len(sides) // 2]
        imgsz = min(MAX_IMGSZ, max(32, median // 32 * 32))
        size_note = (
            f"train.imgsz {imgsz}: the images' longer side ({median} px, the median of {len(sides)}) rounded down "
            f"to a multiple of 32, within 32 to {MAX_IMGSZ}"
        )
    else:
        imgsz, size_note = MAX_IMGSZ, f"train.imgsz {MAX_IMGSZ}: no image size could be read; Ultralytics' default"
    steps = math.ceil(n_labeled / DEFAULT_BATCH)
    low, high = EPOCHS_RANGE
    epochs = min(high, max(low, round(TARGET_STEPS / steps)))
    epoch_note = (
        f"train.epochs {epochs}: about {TARGET_STEPS} optimizer steps at batch {DEFAULT_BATCH} ({steps} per epoch on "
        f"{n_labeled} labeled images), within {low} to {high} epochs; the unlabeled images join after semi.burn_in"
    )
    return {"epochs": epochs, "imgsz": imgsz}, [size_note, epoch_note]


def _longer_sides(images: list[Path]) -> list[int]:
    sides = []
    for image in images:
        try:
            with Image.open(image) as opened:  # reads the header only
                sides.append(max(opened.size))
        except OSError:  # an unreadable image: training skips it, and so does the estimate
            continue
    return sides


def split_report(out: str | Path) -> list[str]:
    """What the split in ``out`` holds, as lines: images and boxes per part, for all classes and for each, then
    the reasons for its config's ``train`` settings."""
    manifest = json.loads((Path(out) / "split.json").read_text())
    images, boxes = manifest["class_images"], manifest["class_boxes"]  # by part, then by class (a JSON string)
    total = [len(manifest.get(part, [])) for part in ("labeled", "unlabeled")]
    lines = [
        f"{'Class':>22}{'labeled images':>16}{'boxes':>8}{'unlabeled images':>18}{'boxes':>8}",
        _row("all", total[0], sum(boxes["labeled"].values()), total[1], sum(boxes["unlabeled"].values())),
    ]
    for index, name in manifest["names"].items():
        counts = [
            manifest_part.get(index, 0)
            for part in ("labeled", "unlabeled")
            for manifest_part in (images[part], boxes[part])
        ]
        lines.append(_row(name, *counts))
    return [*lines, *manifest["train_notes"]]


def _row(name: str, labeled_images: int, labeled_boxes: int, unlabeled_images: int, unlabeled_boxes: int) -> str:
    return f"{name:>22}{labeled_images:>16}{labeled_boxes:>8}{unlabeled_images:>18}{unlabeled_boxes:>8}"
