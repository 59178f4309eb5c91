"""A deterministic synthetic YOLO dataset: filled shapes on textured backgrounds, with look-alike clutter.

Three classes (circle, square, triangle) drawn in class-typical colours with jitter; unlabeled
*distractors* that resemble them (rings, outlined squares, chevrons, ellipses, elongated bars) make false
positives likely, which is what the background penalty is for. Every image is a function of
``(seed, index)`` alone, so a dataset is reproducible byte for byte.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import yaml

from ..errors import UserInputError
from ..pixels import PIXEL_MAX
from .files import write_label_file

CLASSES = ("circle", "square", "triangle")
_CLASS_HUES = ((40, 90, 220), (60, 190, 70), (210, 120, 40))  # BGR base colours per class
IMAGE_SUFFIX = ".png"


def check_layout(
    images: int, val_fraction: float, imgsz: int, min_size: float, max_size: float, test_images: int = 0
) -> None:
    """The checks every generated dataset's spec shares; :class:`UserInputError` names the bad value."""
    if test_images < 0:
        raise UserInputError(f"test_images must be >= 0, got {test_images}")
    if images < 2:
        raise UserInputError(f"images must be >= 2 (one train, one val), got {images}")
    if not 0 < val_fraction < 1:
        raise UserInputError(f"val_fraction must lie in (0, 1), got {val_fraction}")
    if imgsz < 32:
        raise UserInputError(f"imgsz must be >= 32, got {imgsz}")
    if not 0 < min_size <= max_size < 1:
        raise UserInputError(f"need 0 < min_size <= max_size < 1, got {min_size}, {max_size}")


@dataclass(frozen=True)
class SynthSpec:
    """What to generate. Sizes are fractions of the image side."""

    images: int = 300
    imgsz: int = 160
    val_fraction: float = 0.2
    max_objects: int = 4
    max_distractors: int = 4
    min_size: float = 0.1
    max_size: float = 0.3
    background_only: float = 0.1  # share of images with no object at all
    seed: int = 0
    test_images: int = 0  # a test split besides train and val, from the same generator, never shown to training

    def __post_init__(self) -> None:
        check_layout(self.images, self.val_fraction, self.imgsz, self.min_size, self.max_size, self.test_images)
        if not 0 <= self.background_only <= 1:
            raise UserInputError(f"background_only must lie in [0, 1], got {self.background_only}")
        if self.max_objects < 1 or self.max_distractors < 0:
            raise UserInputError("max_objects must be >= 1 and max_distractors >= 0")


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    coarse = rng.normal(128, 40, (6, 6, 3)).astype(np.float32)
    image = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    image += rng.normal(0, 10, (size, size, 3)).astype(np.float32)
    for _ in range(rng.integers(2, 6)):  # faint straight streaks
        p1, p2 = rng.integers(0, size, 2), rng.integers(0, size, 2)
        colour = tuple(float(c) for c in rng.uniform(60, 200, 3))
        cv2.line(image, tuple(map(int, p1)), tuple(map(int, p2)), colour, int(rng.integers(1, 3)), cv2.LINE_AA)
    return image


def _colour(rng: np.random.Generator, cls: int, jitter: float = 35) -> tuple[float, ...]:
    return tuple(float(np.clip(c + rng.normal(0, jitter), 0, 255)) for c in _CLASS_HUES[cls])


def _shape_mask(cls: int, centre: np.ndarray, side: float, size: int, rng: np.random.Generator) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    cx, cy, r = float(centre[0]), float(centre[1]), side / 2
    if cls == 0:
        cv2.circle(mask, (round(cx), round(cy)), max(2, round(r)), 255, -1, cv2.LINE_AA)
    else:
        angle = rng.uniform(0, 2 * np.pi)
        corners = 4 if cls == 1 else 3
        radius = r * (np.sqrt(2) if cls == 1 else 1.15)
        theta = angle + np.arange(corners) * 2 * np.pi / corners
        pts = np.stack((cx + radius * np.cos(theta), cy + radius * np.sin(theta)), 1)
        cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 255, cv2.LINE_AA)
    return mask


def _distractor_mask(kind: int, centre: np.ndarray, side: float, size: int, rng: np.random.Generator) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    c, r = (round(float(centre[0])), round(float(centre[1]))), max(3, round(side / 2))
    thickness = max(1, round(side / 8))
    if kind == 0:  # ring: a circle's outline
        cv2.circle(mask, c, r, 255, thickness, cv2.LINE_AA)
    elif kind == 1:  # outlined square
        cv2.rectangle(mask, (c[0] - r, c[1] - r), (c[0] + r, c[1] + r), 255, thickness, cv2.LINE_AA)
    elif kind == 2:  # chevron: two sides of a triangle
        pts = np.array([[c[0] - r, c[1] + r], [c[0], c[1] - r], [c[0] + r, c[1] + r]], np.int32)
        cv2.polylines(mask, [pts], False, 255, thickness, cv2.LINE_AA)
    elif kind == 3:  # ellipse, clearly not round
        axes = (r, max(2, round(r * rng.uniform(0.35, 0.6))))
        cv2.ellipse(mask, c, axes, float(rng.uniform(0, 180)), 0, 360, 255, -1, cv2.LINE_AA)
    else:  # elongated bar
        cv2.rectangle(mask, (c[0] - r, c[1] - max(1, r // 4)), (c[0] + r, c[1] + max(1, r // 4)), 255, -1)
    return mask


def _box_of(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    ys, xs = np.nonzero(mask > 127)
    if xs.size == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def _overlaps(box: tuple[int, int, int, int], others: list[tuple[int, int, int, int]], limit: float) -> bool:
    for o in others:
        iw = min(box[2], o[2]) - max(box[0], o[0])
        ih = min(box[3], o[3]) - max(box[1], o[1])
        if iw > 0 and ih > 0:
            inter = iw * ih
            union = (box[2] - box[0]) * (box[3] - box[1]) + (o[2] - o[0]) * (o[3] - o[1]) - inter
            if inter / union > limit:
                return True
    return False


def _paint(image: np.ndarray, mask: np.ndarray, colour: tuple[float, ...]) -> None:
    alpha = (mask.astype(np.float32) / PIXEL_MAX)[..., None]
    image[:] = image * (1 - alpha) + np.asarray(colour, np.float32) * alpha


def render(spec: SynthSpec, index: int) -> tuple[np.ndarray, list[tuple[int, float, float, float, float]]]:
    """Image ``index`` of the dataset: ``(uint8 HxWx3 BGR image, [(class, cx, cy, w, h), ...])`` normalised."""
    rng = np.random.default_rng([spec.seed, index])
    size = spec.imgsz
    image = _background(rng, size)
    placed: list[tuple[int, int, int, int]] = []
    labels = []
    n_objects = 0 if rng.random() < spec.background_only else int(rng.integers(1, spec.max_objects + 1))
    n_distractors = int(rng.integers(0, spec.max_distractors + 1))
    jobs = [("object", int(rng.integers(len(CLASSES)))) for _ in range(n_objects)]
    jobs += [("distractor", int(rng.integers(5))) for _ in range(n_distractors)]
    for role, kind in jobs:
        for _ in range(20):  # a few tries to find a free spot
            side = rng.uniform(spec.min_size, spec.max_size) * size
            centre = rng.uniform(side / 2 + 1, size - side / 2 - 1, 2)
            draw = _shape_mask if role == "object" else _distractor_mask
            mask = draw(kind, centre, side, size, rng)
            box = _box_of(mask)
            if box is None or _overlaps(box, placed, 0.15 if role == "object" else 0.05):
                continue
            placed.append(box)
            colour = _colour(rng, kind % len(CLASSES), jitter=35 if role == "object" else 60)
            _paint(image, mask, colour)
            if role == "object":
                x1, y1, x2, y2 = box
                labels.append((kind, (x1 + x2) / 2 / size, (y1 + y2) / 2 / size, (x2 - x1) / size, (y2 - y1) / size))
            break
    return np.clip(image, 0, 255).astype(np.uint8), labels


def write_yolo_dataset(
    out: str | Path,
    images: int,
    val_fraction: float,
    render_image,
    names: Sequence[str],
    meta: dict,
    test_images: int = 0,
) -> Path:
    """Write ``images/{train,val}``, ``labels/{train,val}`` and ``data.yaml`` under ``out``; returns data.yaml.

    ``render_image(index) -> (uint8 BGR image, [(class, cx, cy, w, h), ...])``. Images without objects get an
    empty label file. The last ``round(images * val_fraction)`` images (at least one) are the validation split;
    ``test_images`` more (indices ``images`` on, so none equals a training or validation image) are the test split
    (``images/test``), which ``semiyolo ablate`` reports on and never chooses with.
    """
    out = Path(out).resolve()
    n_val = max(1, round(images * val_fraction))
    for index in range(images + test_images):
        split = "test" if index >= images else "val" if index >= images - n_val else "train"
        image, labels = render_image(index)
        for sub in ("images", "labels"):
            (out / sub / split).mkdir(parents=True, exist_ok=True)
        stem = f"{index:06d}"
        if not cv2.imwrite(str(out / "images" / split / f"{stem}{IMAGE_SUFFIX}"), image):
            raise OSError(f"could not write {out / 'images' / split / stem}{IMAGE_SUFFIX}")
        write_label_file(out / "labels" / split / f"{stem}.txt", labels)
    data_yaml = out / "data.yaml"
    data = {"path": str(out), "train": "images/train", "val": "images/val", "names": dict(enumerate(names)), **meta}
    if test_images:
        data = {**data, "test": "images/test"}
    data_yaml.write_text(yaml.safe_dump(data, sort_keys=False))
    return data_yaml


def write_dataset(out: str | Path, spec: SynthSpec = SynthSpec()) -> Path:
    """The shapes dataset of ``spec`` (see :func:`write_yolo_dataset` for the layout)."""
    return write_yolo_dataset(
        out,
        spec.images,
        spec.val_fraction,
        lambda i: render(spec, i),
        CLASSES,
        {"synth": asdict(spec)},
        spec.test_images,
    )
