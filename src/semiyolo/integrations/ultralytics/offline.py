"""Offline pseudo-labelling: a trained model labels a folder of images once, in YOLO format.

``semiyolo pseudo-label --weights W --source DIR --out DIR`` writes ``DIR/images`` (links to the source
images, in the source's folders, under their own names), ``DIR/labels`` (one YOLO label file per image, empty when
nothing survives the filters, where Ultralytics looks for it) and ``DIR/manifest.jsonl`` (per image: the kept
boxes' classes and scores), then ``DIR/summary.json`` (the counts). A run with
``semi.mode: offline`` and ``semi.pseudo_labels: DIR`` then trains on the labeled and these images.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import Tensor
from torchvision.ops import box_convert
from ultralytics.data.utils import exif_size
from ultralytics.nn.modules.head import OBB, Classify, Detect, Pose, Segment, YOLOESegment
from ultralytics.nn.tasks import load_checkpoint
from ultralytics.utils import LOGGER, TQDM

from ...config import TEACHER_SCALE_RULE, valid_teacher_scale
from ...data import label_path, link, pseudo_labeled_train, write_atomically, write_label_file
from ...errors import ConfigError, DataError
from ...pixels import to_unit_range
from ...pseudo import DEFAULT_FILTERS, build_filters, nothing_kept_reason
from ...teacher import TeacherPseudoLabeler
from .unlabeled import UnlabeledImages, letterbox_geometry, unlabeled_batches

# a model's task by its head: Segment, Pose and OBB heads are Detect heads too, so they are asked first
HEAD_TASKS = ((Segment, "segment"), (YOLOESegment, "segment"), (Pose, "pose"), (OBB, "obb"), (Classify, "classify"))


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
    task = head_task(model)
    if task != "detect":
        raise DataError(f"--weights: {path} is a {task} model; pseudo-labels need a detection model")
    return model.float().eval()


def head_task(model) -> str:
    """The task of a model, by the class of its head (its last layer): a checkpoint without ``train_args.task``
    is 'detect' to Ultralytics, whatever its head."""
    layers = getattr(model, "model", None)
    head = layers[-1] if isinstance(layers, torch.nn.Sequential) and len(layers) else model
    for kind, task in HEAD_TASKS:
        if isinstance(head, kind):
            return task
    return "detect" if isinstance(head, Detect) else type(head).__name__


def pseudo_label_folder(
    weights: str | Path,
    source: str | Path,
    out: str | Path,
    filters: Sequence[Any] = DEFAULT_FILTERS,
    imgsz: int | None = None,
    batch: int = 8,
    min_score: float = 0.1,
    nms_iou: float = 0.7,
    overwrite: bool = False,
    teacher_flip: bool = False,
    teacher_scale: float = 1.0,
) -> dict:
    """Label every image under ``source`` at ``imgsz`` (default: the checkpoint's training size, as Ultralytics'
    ``predict`` does); returns the counts written to ``out/summary.json``.

    ``out`` must be new or empty, or hold an earlier output of this function and ``overwrite`` be set (its
    images, labels, manifest and summary are then removed first), so that a folder never mixes two runs' labels.
    When nothing survives the filters the summary says so under ``warning`` and the log warns: an offline run
    would then train every unlabeled image as background. An image that cannot be read or decoded is skipped with
    a warning and listed in the summary (``skipped_images``). Every refusal comes before ``out`` is touched."""
    check_numbers(imgsz, batch, min_score, teacher_scale)  # before anything in ``out`` is touched
    source, out = Path(source), Path(out)
    clear = check_output_folder(source, out, overwrite)
    model = load_detector(weights)
    imgsz = imgsz or training_imgsz(model)
    check_stride(model, imgsz)
    names = model.names
    has_dfl = getattr(model.model[-1], "reg_max", 1) > 1
    chain = build_filters(filters, num_classes=len(names), has_dfl=has_dfl, classes_from=f"--weights {weights}")
    if not filters:
        LOGGER.warning("no pseudo-label filter: every candidate above --min-score after NMS becomes a pseudo-label")
    labeler = TeacherPseudoLabeler(
        chain, min_score=min_score, nms_iou=nms_iou, mirror=teacher_flip, scale=teacher_scale
    )
    dataset = UnlabeledImages.from_folder(source, imgsz, key="--source")
    names_out = dict(zip(map(str, dataset.paths), output_names(dataset.paths, source, out), strict=True))
    if clear:
        clear_output_folder(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    total, labeled = _write_pseudo_labels(model, labeler, dataset, batch, imgsz, out, names_out)
    skipped = [*map(str, dataset.skipped), *sorted(set(names_out) - set(labeled))]
    summary = {"images": len(labeled), "skipped": len(skipped), "skipped_images": skipped, "pseudo_labels": total}
    summary["imgsz"] = imgsz
    summary |= {"filters": chain.stats(), "names": names, "teacher": {"flip": teacher_flip, "scale": teacher_scale}}
    if total == 0:
        min_score_knob = f"--min-score {min_score:g} (semi.pseudo_min_score for training)"
        reason = nothing_kept_reason(chain, chain.stats(), min_score_knob, "filter {}")
        summary["warning"] = (
            f"no pseudo-label survived the filters on {len(labeled)} images: {reason} (or train the teacher longer). "
            "Offline training on this folder would teach every unlabeled image as background."
        )
        LOGGER.warning(summary["warning"])
    write_atomically(out / "summary.json", lambda part: part.write_text(json.dumps(summary, indent=2)), sync=True)
    return summary


def _write_pseudo_labels(
    model, labeler: TeacherPseudoLabeler, dataset: UnlabeledImages, batch: int, imgsz: int, out: Path, names_out: dict
) -> tuple[int, list[str]]:
    """Label ``dataset`` batch by batch: each image linked under ``out/images`` by its name in ``names_out``, its
    label file, its manifest line. Returns the pseudo-labels written and the images labelled (an image the decoder
    cannot read is left out, with a warning)."""
    total, labeled = 0, []
    bar = TQDM(total=len(dataset.paths), desc="pseudo-label", unit="image")
    with open(out / "manifest.jsonl", "w") as manifest:
        batches = unlabeled_batches(dataset, batch, seed=0, max_passes=1, shuffle=False, keep_size=False)
        for images, _, paths in batches:
            bar.update(len(paths))
            if not paths:  # every image of the batch was unreadable
                continue
            for det, path in zip(labeler(model, to_unit_range(images)), paths, strict=True):
                rows, kept = _yolo_rows(det, Path(path), imgsz)
                total, name = total + len(rows), names_out[path]
                labeled.append(path)
                link(path, out / "images" / name)
                label = label_path(out / "images" / name)
                label.parent.mkdir(parents=True, exist_ok=True)
                write_label_file(label, rows)
                scores = [round(s, 5) for s in det.scores.cpu()[kept].tolist()]
                entry = {"image": path, "name": name, "classes": det.classes.cpu()[kept].tolist(), "scores": scores}
                manifest.write(json.dumps(entry) + "\n")
    bar.close()
    return total, labeled


def check_stride(model, imgsz: int) -> None:
    """Refuse an ``imgsz`` that is not a multiple of the model's largest stride, naming the next one that is."""
    stride = int(model.stride.max())
    if imgsz % stride:
        bigger = -(-imgsz // stride) * stride
        raise ConfigError(f"--imgsz: {imgsz} is not a multiple of the model's stride {stride}; try {bigger}")


def training_imgsz(model) -> int:
    """The image size a checkpoint was trained at (its ``train_args``; Ultralytics' default 640 without them)."""
    size = model.args.get("imgsz", 640) if isinstance(getattr(model, "args", None), dict) else 640
    return int(max(size) if isinstance(size, list | tuple) else size)


def check_numbers(imgsz: int | None, batch: int, min_score: float, teacher_scale: float) -> None:
    """Refuse, naming the option, a size or batch under 1, a score outside [0, 1] or a scale out of range."""
    for option, value in (("--imgsz", imgsz), ("--batch", batch)):
        if value is not None and value < 1:
            raise ConfigError(f"{option}: expected a whole number of at least 1, got {value}")
    if not 0 <= min_score <= 1:
        raise ConfigError(f"--min-score: expected a score in [0, 1], got {min_score}")
    if not valid_teacher_scale(teacher_scale):
        raise ConfigError(f"--teacher-scale: {TEACHER_SCALE_RULE}, got {teacher_scale}")


def output_names(images: Sequence[Path], source: Path, out: Path) -> list[str]:
    """The names under ``out/images`` of ``images`` (found under ``source``): their paths relative to ``source``,
    except that images which would share a label file (``x.jpg`` and ``x.png``) get their suffix folded into the
    stem (``x_jpg.jpg``, ``x_png.png``).

    Raises:
        DataError: two images would still share a label file (``x.png``, ``x.jpg`` and ``x_png.png``).
    """
    relative = [image.relative_to(source) for image in images]
    shared = Counter(label_path(out / "images" / name) for name in relative)
    names = [name if shared[label_path(out / "images" / name)] == 1 else _folded(name) for name in relative]
    owners: dict[Path, Path] = {}
    for image, name in zip(images, names, strict=True):
        label = label_path(out / "images" / name)
        if label in owners:
            raise DataError(
                f"--source: {owners[label]} and {image} would both be labelled in {label}; rename one of them"
            )
        owners[label] = image
    return [name.as_posix() for name in names]


def _folded(name: Path) -> Path:
    """``a/x.jpg -> a/x_jpg.jpg``."""
    return name.with_name(f"{name.stem}_{name.suffix[1:]}{name.suffix}")


OUTPUT_PARTS = ("images", "labels", "manifest.jsonl", "summary.json")


def check_output_folder(source: Path, out: Path, overwrite: bool) -> bool:
    """Refuse an ``out`` that holds ``source`` or lies inside it (it would label its own links, or overwrite the
    images), or one that holds anything, unless it is an earlier pseudo-label output (it has a ``summary.json`` or
    ``manifest.jsonl`` and nothing else of its own) and ``overwrite`` is set. Returns whether there is such an
    earlier output, to be removed (:func:`clear_output_folder`) once nothing else can refuse the work."""
    source, target = source.resolve(), out.resolve()
    if target == source or source in target.parents or target in source.parents:
        raise DataError(f"--out: {out} holds or lies inside --source {source}; write the pseudo-labels elsewhere")
    if not target.is_dir() or not any(target.iterdir()):
        return False
    foreign = sorted(p.name for p in target.iterdir() if p.name not in OUTPUT_PARTS)
    earlier = (target / "summary.json").is_file() or (target / "manifest.jsonl").is_file()
    if foreign or not earlier:
        listed = ", ".join(foreign[:5]) or ", ".join(sorted(p.name for p in target.iterdir()))
        raise DataError(f"--out: {out} holds files that are not a pseudo-label output ({listed}); choose a new folder")
    if not overwrite:
        raise DataError(f"--out: {out} holds an earlier pseudo-label output; choose a new folder or pass --overwrite")
    return True


def clear_output_folder(out: Path) -> None:
    """Remove an earlier pseudo-label output's parts from ``out``."""
    for name in OUTPUT_PARTS:
        part = out / name
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


def offline_train_entries(data: dict, pseudo_labels: str | Path) -> list[str]:
    """The ``train`` entries of a dataset with the pseudo-labeled images added
    (:func:`~semiyolo.data.pseudo_labeled_train`); a missing folder is a :class:`ConfigError` of
    ``semi.pseudo_labels``."""
    try:
        return pseudo_labeled_train(data, pseudo_labels)["train"]
    except DataError as err:
        raise ConfigError(f"semi.pseudo_labels: {err}") from None
