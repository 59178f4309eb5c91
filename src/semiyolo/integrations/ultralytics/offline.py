"""Offline pseudo-labelling: a trained model labels a folder of images once, in YOLO format.

``semiyolo pseudo-label --weights W --source DIR --out DIR`` writes ``DIR/images`` (links to the source
images), ``DIR/labels`` (one YOLO label file per image, empty when nothing survives the filters) and
``DIR/manifest.jsonl`` (per image: the kept boxes' classes and scores, and the filters' counts). A run with
``semi.mode: offline`` and ``semi.pseudo_labels: DIR`` then trains on the labeled and these images.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import Tensor
from torchvision.ops import box_convert
from ultralytics.data.utils import exif_size
from ultralytics.nn.tasks import load_checkpoint
from ultralytics.utils import LOGGER

from ...config import MAX_TEACHER_SCALE
from ...data import link, pseudo_labeled_train, write_label_file
from ...errors import ConfigError, DataError
from ...pseudo import DEFAULT_FILTERS, build_filters
from ...teacher import TeacherPseudoLabeler
from .unlabeled import UnlabeledImages, letterbox_geometry, unlabeled_batches


def load_detector(weights: str | Path):
    """An Ultralytics detection checkpoint as an eval-mode float32 model; a clear error otherwise."""
    path = Path(weights)
    if not path.is_file():
        raise DataError(f"--weights: {path} not found")
    try:
        model, _ = load_checkpoint(str(path))
    except Exception as err:  # torch.load raises many kinds on a file that is not a checkpoint
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(f"--weights: {path} is not an Ultralytics checkpoint ({reason})") from None
    if getattr(model, "task", "detect") != "detect" or not hasattr(model.model[-1], "stride"):
        raise DataError(f"--weights: {path} is not a detection model (task {getattr(model, 'task', '?')!r})")
    return model.float().eval()


def pseudo_label_folder(
    weights: str | Path,
    source: str | Path,
    out: str | Path,
    filters: Sequence[Any] = DEFAULT_FILTERS,
    imgsz: int = 640,
    batch: int = 8,
    min_score: float = 0.1,
    nms_iou: float = 0.7,
    overwrite: bool = False,
    teacher_flip: bool = False,
    teacher_scale: float = 1.0,
) -> dict:
    """Label every image under ``source``; returns the counts written to ``out/summary.json``.

    ``out`` must be new or empty, or hold an earlier output of this function and ``overwrite`` be set (its
    images, labels, manifest and summary are then removed first), so that a folder never mixes two runs' labels.
    When nothing survives the filters the summary says so under ``warning`` and the log warns: an offline run
    would then train every unlabeled image as background."""
    if not 0 < teacher_scale <= MAX_TEACHER_SCALE:  # before anything in ``out`` is touched
        raise ConfigError(f"--teacher-scale: expected a factor in (0, {MAX_TEACHER_SCALE:g}], got {teacher_scale}")
    prepare_output_folder(Path(source), Path(out), overwrite)
    model = load_detector(weights)
    names = model.names
    has_dfl = getattr(model.model[-1], "reg_max", 1) > 1
    chain = build_filters(filters, num_classes=len(names), has_dfl=has_dfl, classes_from=f"--weights {weights}")
    if not filters:
        LOGGER.warning("no pseudo-label filter: every candidate above --min-score after NMS becomes a pseudo-label")
    labeler = TeacherPseudoLabeler(
        chain, min_score=min_score, nms_iou=nms_iou, mirror=teacher_flip, scale=teacher_scale
    )
    dataset = UnlabeledImages.from_folder(source, imgsz, key="--source")
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    total = 0
    with open(out / "manifest.jsonl", "w") as manifest:
        for images, _, paths in unlabeled_batches(dataset, batch, seed=0, max_passes=1, shuffle=False):
            for det, path in zip(labeler(model, images.float() / 255), paths, strict=True):
                rows, kept = _yolo_rows(det, Path(path), imgsz)
                total += len(rows)
                name = _flat_name(Path(path), Path(source))
                link(path, out / "images" / name)
                write_label_file(out / "labels" / f"{Path(name).stem}.txt", rows)
                scores = [round(s, 5) for s in det.scores.cpu()[kept].tolist()]
                entry = {"image": path, "name": name, "classes": det.classes.cpu()[kept].tolist(), "scores": scores}
                manifest.write(json.dumps(entry) + "\n")
    summary = {"images": len(dataset), "pseudo_labels": total, "filters": chain.stats(), "names": names}
    summary["teacher"] = {"flip": teacher_flip, "scale": teacher_scale}
    if total == 0:
        summary["warning"] = (
            f"no pseudo-label survived the filters on {len(dataset)} images; offline training on this folder would "
            "teach every unlabeled image as background. Train the teacher longer or lower the thresholds."
        )
        LOGGER.warning(summary["warning"])
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


OUTPUT_PARTS = ("images", "labels", "manifest.jsonl", "summary.json")


def prepare_output_folder(source: Path, out: Path, overwrite: bool) -> None:
    """Refuse an ``out`` that holds ``source`` or lies inside it (it would label its own links, or overwrite the
    images), or one that holds anything, unless it is an earlier pseudo-label output (it has a ``summary.json`` or
    ``manifest.jsonl`` and nothing else of its own) and ``overwrite`` is set; that output is then removed."""
    source, target = source.resolve(), out.resolve()
    if target == source or source in target.parents or target in source.parents:
        raise DataError(f"--out: {out} holds or lies inside --source {source}; write the pseudo-labels elsewhere")
    if not target.is_dir() or not any(target.iterdir()):
        return
    foreign = sorted(p.name for p in target.iterdir() if p.name not in OUTPUT_PARTS)
    earlier = (target / "summary.json").is_file() or (target / "manifest.jsonl").is_file()
    if foreign or not earlier:
        listed = ", ".join(foreign[:5]) or ", ".join(sorted(p.name for p in target.iterdir()))
        raise DataError(f"--out: {out} holds files that are not a pseudo-label output ({listed}); choose a new folder")
    if not overwrite:
        raise DataError(f"--out: {out} holds an earlier pseudo-label output; choose a new folder or pass --overwrite")
    for name in OUTPUT_PARTS:
        part = target / name
        if part.is_dir():
            shutil.rmtree(part)
        else:
            part.unlink(missing_ok=True)


def _yolo_rows(det, path: Path, imgsz: int) -> tuple[list[list[float]], Tensor]:
    """Kept boxes, from the letterboxed frame back to the image (clipped to it; those not over 1 px wide and high
    dropped), as YOLO label rows ``(class, cx, cy, w, h)`` normalised to the image, float64 throughout; and the
    ``Tensor[n] bool`` of the detections that became rows."""
    with Image.open(path) as image:
        w, h = exif_size(image)  # cv2.imread applies EXIF rotation: so must the size
    _, ratio, (px, py) = letterbox_geometry(w, h, imgsz)
    boxes = (det.boxes.cpu().double() - torch.tensor([px, py, px, py], dtype=torch.float64)) / ratio
    boxes = torch.minimum(boxes.clamp(min=0), torch.tensor([w, h, w, h], dtype=torch.float64))
    cxcywh = box_convert(boxes, "xyxy", "cxcywh")
    keep = (cxcywh[:, 2] > 1) & (cxcywh[:, 3] > 1)
    normalised = cxcywh[keep] / torch.tensor([w, h, w, h], dtype=torch.float64)
    return torch.cat((det.classes.cpu()[keep, None].double(), normalised), 1).tolist(), keep


def _flat_name(path: Path, source: Path) -> str:
    """A unique file name for an image found anywhere under ``source``: its relative path joined by ``__``,
    the suffix folded into the stem (``a/x.jpg`` and ``b/x.jpg``, or ``x.jpg`` and ``x.png``, stay apart)."""
    relative = path.relative_to(source)
    return "__".join((*relative.parent.parts, f"{relative.stem}_{relative.suffix.lstrip('.')}")) + relative.suffix


def offline_train_entries(data: dict, pseudo_labels: str | Path) -> list[str]:
    """The ``train`` entries of a dataset with the pseudo-labeled images added
    (:func:`~semiyolo.data.pseudo_labeled_train`); a missing folder is a :class:`ConfigError` of
    ``semi.pseudo_labels``."""
    try:
        return pseudo_labeled_train(data, pseudo_labels)["train"]
    except DataError as err:
        raise ConfigError(f"semi.pseudo_labels: {err}") from None
