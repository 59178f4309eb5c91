"""Per-image detection statistics from Ultralytics' validator, and a paired bootstrap over images of an mAP gain.

Ultralytics' :class:`DetectionValidator` matches each image's detections to its labels (``tp``: ``(n, 10)`` bool, a
true positive at each IoU of 0.50:0.05:0.95) and pools the images into ``ap_per_class``. :class:`PerImageValidator`
keeps the per-image lists it pools, so the same mAP50-95 can be recomputed on any resample of the images.
:func:`bootstrap_gain` resamples the test images (with replacement, the same resample for every run) and gives the
mean gain of several (arm, baseline) pairs on each resample: the spread that choosing other test images of the same
kind would give (Efron and Tibshirani, *An Introduction to the Bootstrap*, 1993, ch. 13: percentile intervals).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ultralytics.models.yolo.detect import DetectionValidator
from ultralytics.utils.metrics import ap_per_class

from ...data import write_atomically

STAT_KEYS = ("tp", "conf", "pred_cls", "target_cls")  # what ap_per_class reads, per image


class PerImageValidator(DetectionValidator):
    """Ultralytics' detection validator that leaves the per-image statistics it pooled on its metrics object, as
    ``metrics.per_image`` (:class:`ImageStats`), before it clears them."""

    def get_stats(self):
        self.metrics.per_image = ImageStats(*(list(self.metrics.stats[k]) for k in STAT_KEYS))
        return super().get_stats()


@dataclass
class ImageStats:
    """One run's matching statistics on a list of images, one entry per image (Ultralytics' layout):
    ``tp[i]``: ``(n_i, 10)`` bool; ``conf[i]``, ``pred_cls[i]``: ``(n_i,)``; ``target_cls[i]``: ``(m_i,)``."""

    tp: list[np.ndarray]
    conf: list[np.ndarray]
    pred_cls: list[np.ndarray]
    target_cls: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.target_cls)

    def save(self, path: Path) -> None:
        """``path`` (``.npz``), written atomically: each key's arrays concatenated, with each image's count."""
        arrays = {}
        for key in STAT_KEYS:
            parts = getattr(self, key)
            arrays[key] = np.concatenate(parts, 0) if parts else np.zeros(0)
            arrays[f"{key}_counts"] = np.array([len(p) for p in parts], dtype=np.int64)

        def write(part: Path) -> None:
            with part.open("wb") as file:  # a file object: numpy would add ".npz" to a path without it
                np.savez_compressed(file, **arrays)

        write_atomically(path, write)

    @classmethod
    def load(cls, path: Path) -> ImageStats:
        with np.load(path) as found:
            return cls(*(np.split(found[k], np.cumsum(found[f"{k}_counts"])[:-1]) for k in STAT_KEYS))

    def map50_95(self, images: np.ndarray | None = None) -> float:
        """mAP50-95 as Ultralytics' validator computes it, on ``images`` (indices, repeats allowed; all by default)."""
        chosen = np.arange(len(self)) if images is None else images
        pooled = [np.concatenate([getattr(self, k)[i] for i in chosen], 0) for k in STAT_KEYS]
        tp, conf, pred_cls, target_cls = pooled
        if not len(target_cls):
            return 0.0
        ap = ap_per_class(tp.reshape(-1, 10), conf, pred_cls, target_cls)[5]
        return float(ap.mean()) if len(ap) else 0.0

    def resampled_map50_95(self, resamples: np.ndarray) -> np.ndarray:
        """``Tensor[R]``-like array: :meth:`map50_95` on each row of ``resamples`` (``(R, n)`` image indices)."""
        return np.array([self.map50_95(images) for images in resamples])


def image_resamples(images: int, replicates: int, seed: int = 0) -> np.ndarray:
    """``(replicates, images)`` indices drawn with replacement: the bootstrap's resamples of the images."""
    return np.random.default_rng(seed).integers(0, images, (replicates, images))


def percentile_interval(draws: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The ``level`` percentile interval of the bootstrap ``draws``."""
    low, high = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def bootstrap_gain(
    pairs: Sequence[tuple[ImageStats, ImageStats]], replicates: int = 500, seed: int = 0, level: float = 0.95
) -> tuple[float, float, float]:
    """``(gain, low, high)``: the mean over ``pairs`` of ``mAP50-95(arm) - mAP50-95(baseline)`` on all the images,
    and the ``level`` percentile interval of that mean over ``replicates`` resamples of the images (each resample
    shared by every run, so the pairs stay paired). Every run must hold the same images, in the same order."""
    sizes = {len(s) for pair in pairs for s in pair}
    if len(sizes) != 1:
        raise ValueError(f"bootstrap_gain: the runs were measured on different numbers of images: {sorted(sizes)}")
    resamples = image_resamples(sizes.pop(), replicates, seed)
    gain = float(np.mean([arm.map50_95() - base.map50_95() for arm, base in pairs]))
    draws = np.mean([a.resampled_map50_95(resamples) - b.resampled_map50_95(resamples) for a, b in pairs], axis=0)
    return (gain, *percentile_interval(draws, level))
