"""Background false positives per image, next to Ultralytics' precision, recall and mAP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from ultralytics import YOLO
from ultralytics.data.utils import img2label_paths

from ...metrics import count_background_false_positives


def _label_boxes(image: Path, shape: tuple[int, int]) -> torch.Tensor:
    """Ground-truth xyxy pixel boxes of ``image`` from its YOLO label file (none if it has no file)."""
    label = Path(img2label_paths([str(image)])[0])
    rows = np.loadtxt(label, ndmin=2, dtype=np.float32) if label.is_file() and label.stat().st_size else None
    if rows is None or rows.size == 0:
        return torch.zeros(0, 4)
    height, width = shape
    cx, cy, w, h = (torch.from_numpy(rows[:, i]) for i in range(1, 5))
    return torch.stack(((cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height), 1)


def background_false_positives(
    weights: str | Path | Any,
    images: list[Path],
    conf: float = 0.25,
    iou_match: float = 0.5,
    imgsz: int = 640,
    batch: int = 16,
) -> dict[str, float]:
    """Detections above ``conf`` that match no ground truth at IoU ``iou_match``, per image.

    Args:
        weights: a checkpoint path or an Ultralytics ``YOLO`` model.
        images: validation images; labels are found the Ultralytics way (``images/`` -> ``labels/``).

    Returns:
        ``{"images", "detections", "background_fp", "background_fp_per_image", "conf", "iou"}``.
    """
    model = weights if isinstance(weights, YOLO) else YOLO(str(weights))
    detections = background_fp = 0
    for start in range(0, len(images), batch):
        chunk = [str(p) for p in images[start : start + batch]]
        for path, result in zip(chunk, model.predict(chunk, conf=conf, imgsz=imgsz, verbose=False), strict=True):
            pred = result.boxes.xyxy.cpu()
            detections += pred.shape[0]
            background_fp += count_background_false_positives(
                pred, _label_boxes(Path(path), result.orig_shape), iou_match
            )
    n = max(len(images), 1)
    return {
        "images": len(images),
        "detections": detections,
        "background_fp": background_fp,
        "background_fp_per_image": background_fp / n,
        "conf": conf,
        "iou": iou_match,
    }
