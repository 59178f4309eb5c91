"""Background false positives per image, next to Ultralytics' precision, recall and mAP."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import torch
from torchvision.ops import box_convert
from ultralytics import YOLO
from ultralytics.utils import LOGGER

from ...data import label_path, read_label_file
from ...metrics import background_flags, match_detections
from ...pseudo.dsat import f1_optimal_threshold
from .image_stats import PerImageValidator

CANDIDATE_CONF = 0.001  # every detection Ultralytics' validator would score, for the F1-optimal confidence


def _labels(image: Path, shape: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Ground truth of ``image`` from its YOLO label file: ``(classes Tensor[M], xyxy pixel boxes Tensor[M, 4])``
    (empty if it has no file)."""
    rows = torch.from_numpy(read_label_file(label_path(image)))
    height, width = shape
    boxes = box_convert(rows[:, 1:], "cxcywh", "xyxy") * rows.new_tensor([width, height, width, height])
    return rows[:, 0].long(), boxes


def _predict(model: YOLO, paths: list[str], conf: float, imgsz: int, skipped: list[str]) -> list[tuple[str, Any]]:
    """``(path, result)`` for each image Ultralytics can read; an unreadable one (truncated, empty) is listed in
    ``skipped`` with a warning instead of ending the evaluation."""
    try:
        return list(zip(paths, model.predict(paths, conf=conf, imgsz=imgsz, verbose=False), strict=True))
    except Exception:  # one bad file fails the whole batch: find it
        if len(paths) > 1:
            return [pair for path in paths for pair in _predict(model, [path], conf, imgsz, skipped)]
        skipped.append(paths[0])
        LOGGER.warning(f"background false positives: {paths[0]} cannot be read, skipped")
        return []


def background_false_positives(
    weights: str | Path | Any,
    images: list[Path],
    conf: float = 0.25,
    iou_match: float = 0.5,
    imgsz: int = 640,
    batch: int = 16,
) -> dict[str, float]:
    """Detections that match no ground truth at IoU ``iou_match``, per image, at confidence ``conf`` and at the
    confidence where the model's F1 peaks (class-aware matching at ``iou_match``), so that the figure means
    something for a model whose scores are too low, or too high, for a fixed ``conf``.

    Args:
        weights: a checkpoint path or an Ultralytics ``YOLO`` model.
        images: validation images; labels are found the Ultralytics way (``images/`` -> ``labels/``).

    Returns:
        ``{"images", "skipped_images", "detections", "background_fp", "background_fp_per_image", "conf", "iou",
        "f1_conf", "f1", "background_fp_per_image_at_f1"}``; ``images`` counts the images read.
    """
    model = weights if isinstance(weights, YOLO) else YOLO(str(weights))
    scores, is_tp, is_bg, n_gt, skipped = [], [], [], 0, []
    for start in range(0, len(images), batch):
        chunk = [str(p) for p in images[start : start + batch]]
        for path, result in _predict(model, chunk, min(conf, CANDIDATE_CONF), imgsz, skipped):
            boxes, det_scores = result.boxes.xyxy.cpu(), result.boxes.conf.cpu()
            gt_classes, gt_boxes = _labels(Path(path), result.orig_shape)
            n_gt += gt_boxes.shape[0]
            scores.append(det_scores)
            classes = result.boxes.cls.cpu().long()
            is_tp.append(match_detections(boxes, det_scores, classes, gt_boxes, gt_classes, iou_match))
            is_bg.append(background_flags(boxes, gt_boxes, iou_match))
    scores_all = torch.cat(scores) if scores else torch.zeros(0)
    tp_all = torch.cat(is_tp) if is_tp else torch.zeros(0, dtype=torch.bool)
    bg_all = torch.cat(is_bg) if is_bg else torch.zeros(0, dtype=torch.bool)
    f1_conf = (f1_optimal_threshold(scores_all, tp_all, n_gt) if n_gt else None) or 1.0
    kept = scores_all >= f1_conf
    tp_at_f1 = int(tp_all[kept].sum())
    n = len(images) - len(skipped) or math.nan  # no image read: the figures are unknown, not zero
    above = scores_all > conf
    background_fp = int(bg_all[above].sum())
    return {
        "images": len(images) - len(skipped),
        "skipped_images": len(skipped),
        "detections": int(above.sum()),
        "background_fp": background_fp,
        "background_fp_per_image": background_fp / n,
        "conf": conf,
        "iou": iou_match,
        "f1_conf": f1_conf,
        "f1": 2 * tp_at_f1 / (int(kept.sum()) + n_gt) if n_gt else 0.0,
        "background_fp_per_image_at_f1": int(bg_all[kept].sum()) / n,
    }


def split_metrics(
    weights: str | Path,
    data_yaml: str | Path,
    split: str,
    imgsz: int,
    batch: int = 16,
    image_stats: Path | None = None,
) -> dict:
    """Ultralytics' validation of ``weights`` on ``data_yaml``'s ``split`` (``test``, say): precision, recall,
    mAP50 and mAP50-95 under Ultralytics' own keys (``metrics/mAP50-95(B)``), on the CPU unless a GPU is there,
    without plots; ``image_stats``: also each image's matching statistics written there
    (:class:`~.image_stats.ImageStats`, for a bootstrap over the images)."""
    model = YOLO(str(weights))
    with tempfile.TemporaryDirectory() as scratch:  # Ultralytics' validator always makes a save folder
        results = model.val(
            validator=PerImageValidator,
            data=str(data_yaml),
            split=split,
            imgsz=imgsz,
            batch=batch,
            plots=False,
            save_json=False,
            verbose=False,
            project=scratch,
            name=split,
            exist_ok=True,
        )
    if image_stats is not None:
        results.per_image.save(image_stats)
    return {k: float(v) for k, v in results.results_dict.items() if k.startswith("metrics/")}
