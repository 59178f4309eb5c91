"""Scenes of handwritten digits (scikit-learn's bundled 8x8 digits, 10 classes) on paper-like backgrounds,
with distractor strokes: confusable pairs (1/7, 3/8, 5/9) and stroke clutter make pseudo-labels err the way
they do on real data. Deterministic in ``(seed, index)``."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np

from ..errors import UserInputError
from .synth import check_layout, write_yolo_dataset

DIGIT_NAMES = tuple(str(d) for d in range(10))


@dataclass(frozen=True)
class DigitsSpec:
    images: int = 300
    imgsz: int = 160
    val_fraction: float = 0.2
    max_digits: int = 5
    max_strokes: int = 4
    min_size: float = 0.14  # digit height as a fraction of the image side
    max_size: float = 0.32
    seed: int = 0
    test_images: int = 0  # a test split besides train and val (see write_yolo_dataset)

    def __post_init__(self) -> None:
        check_layout(self.images, self.val_fraction, self.imgsz, self.min_size, self.max_size, self.test_images)
        if self.max_digits < 1 or self.max_strokes < 0:
            raise UserInputError("need max_digits >= 1 and max_strokes >= 0")


@cache
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return (bunch.images / 16.0).astype(np.float32), bunch.target.astype(np.int64)


def _paper(rng: np.random.Generator, size: int) -> np.ndarray:
    tone = rng.uniform(170, 235)
    coarse = rng.normal(tone, 12, (5, 5, 1)).astype(np.float32).repeat(3, axis=2)
    paper = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    return paper + rng.normal(0, 6, (size, size, 3)).astype(np.float32)


def _ink(rng: np.random.Generator) -> np.ndarray:
    return np.array([rng.uniform(0, 90), rng.uniform(0, 90), rng.uniform(0, 120)], np.float32)


def _stroke(image: np.ndarray, rng: np.random.Generator, size: int) -> None:
    """A distractor: a pen stroke (a polyline or an arc) of digit-like size, unlabeled."""
    mask = np.zeros((size, size), np.float32)
    scale = rng.uniform(0.08, 0.25) * size
    start = rng.uniform(scale, size - scale, 2)
    if rng.random() < 0.5:
        points = start + np.cumsum(rng.normal(0, scale / 2, (int(rng.integers(2, 5)), 2)), axis=0)
        cv2.polylines(mask, [np.round(points).astype(np.int32)], False, 1.0, max(1, round(scale / 8)), cv2.LINE_AA)
    else:
        axes = (max(2, round(scale / 2)), max(2, round(scale / 3)))
        arc = float(rng.uniform(120, 300))
        cv2.ellipse(
            mask,
            tuple(np.round(start).astype(int)),
            axes,
            float(rng.uniform(0, 360)),
            0,
            arc,
            1.0,
            max(1, round(scale / 8)),
            cv2.LINE_AA,
        )
    image[:] = image * (1 - mask[..., None]) + _ink(rng) * mask[..., None]


def render_digits(spec: DigitsSpec, index: int):
    """Image ``index``: ``(uint8 BGR image, [(class, cx, cy, w, h), ...])`` normalised."""
    rng = np.random.default_rng([spec.seed, index])
    size = spec.imgsz
    images, targets = _digits()
    canvas = _paper(rng, size)
    placed: list[tuple[int, int, int, int]] = []
    labels = []
    for _ in range(int(rng.integers(1, spec.max_digits + 1))):
        k = int(rng.integers(len(images)))
        side = int(rng.uniform(spec.min_size, spec.max_size) * size)
        glyph = cv2.resize(images[k], (max(4, int(side * rng.uniform(0.7, 0.95))), side), interpolation=cv2.INTER_CUBIC)
        glyph = np.clip(glyph, 0, 1) ** 0.8
        h, w = glyph.shape
        for _ in range(20):
            x, y = int(rng.integers(0, size - w)), int(rng.integers(0, size - h))
            if all(x + w <= a or a + c <= x or y + h <= b or b + d <= y for a, b, c, d in placed):
                break
        else:
            continue
        placed.append((x, y, w, h))
        region = canvas[y : y + h, x : x + w]
        region[:] = region * (1 - glyph[..., None]) + _ink(rng) * glyph[..., None]
        ys, xs = np.nonzero(glyph > 0.25)
        if xs.size:
            x1, y1, x2, y2 = x + xs.min(), y + ys.min(), x + xs.max() + 1, y + ys.max() + 1
            labels.append(
                (int(targets[k]), (x1 + x2) / 2 / size, (y1 + y2) / 2 / size, (x2 - x1) / size, (y2 - y1) / size)
            )
    for _ in range(int(rng.integers(0, spec.max_strokes + 1))):
        _stroke(canvas, rng, size)
    return np.clip(canvas, 0, 255).astype(np.uint8), labels


def write_digits_dataset(out: str | Path, spec: DigitsSpec = DigitsSpec()) -> Path:
    """The digits dataset of ``spec``; layout as :func:`semiyolo.data.synth.write_yolo_dataset`."""
    return write_yolo_dataset(
        out,
        spec.images,
        spec.val_fraction,
        lambda i: render_digits(spec, i),
        DIGIT_NAMES,
        {"digits": asdict(spec)},
        spec.test_images,
    )
