"""The pseudo-labelling cost per image against the batch size: ``MeanTeacher.extend`` for the whole batch at once
against image by image (``extend(..., batched=False)``), with the default pseudo-label settings.

A teacher (a run's weights, or an untrained YOLOv8n) labels unlabeled images (a folder's, letterboxed as the
trainer's weak view, or random pixels) with the defaults of ``SemiConfig()`` (the filter chain, tiered targets,
uncertain ones ignored, the candidates' floor) and the default strong view; ``extend`` appends them to a labeled
batch of as many random images. For each batch size both paths run on the same images from the same generator
state, interleaved, ``--rounds`` times; the table gives ms per unlabeled image, median (minimum), and the ratio of
the medians (batched / per image), and the mean pseudo-labels kept per image.

    python benchmarks/extend_batch.py [--weights RUN/weights/last.pt] [--images FOLDER] [--imgsz 160]
                                      [--batches 1 4 16 32] [--rounds 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")

import torch
from ultralytics.nn.tasks import DetectionModel, load_checkpoint

from semiyolo.config import SemiConfig
from semiyolo.integrations.ultralytics.unlabeled import UnlabeledImages, unlabeled_batches
from semiyolo.pseudo import build_filters
from semiyolo.pseudo.augment import StrongAugment
from semiyolo.teacher import MeanTeacher, TeacherPseudoLabeler


def _teacher(weights: Path | None) -> DetectionModel:
    if weights is None:
        return DetectionModel("yolov8n.yaml", nc=3, verbose=False)
    model, _ = load_checkpoint(weights)
    return model.float()


def _mean_teacher(model: DetectionModel) -> MeanTeacher:
    semi = SemiConfig()
    filters = build_filters([f.model_dump() for f in semi.filters], num_classes=len(model.names), has_dfl=True)
    labeler = TeacherPseudoLabeler(filters, min_score=semi.pseudo_min_score, nms_iou=semi.pseudo_nms_iou)
    return MeanTeacher(
        model,
        labeler,
        StrongAugment(),
        pseudo_targets=semi.pseudo_targets,
        uncertain_targets=semi.uncertain_targets,
        cut_objects=semi.cut_objects,
    )


def _weak_images(folder: Path | None, count: int, imgsz: int) -> torch.Tensor:
    """``Tensor[count, 3, imgsz, imgsz]`` in [0, 1]: a folder's images letterboxed (the trainer's weak view), or
    random pixels."""
    if folder is None:
        return torch.rand(count, 3, imgsz, imgsz, generator=torch.Generator().manual_seed(0))
    images, _, _ = next(unlabeled_batches(UnlabeledImages.from_folder(folder, imgsz), count, seed=0))
    return images.float() / 255


def _labeled(n: int, imgsz: int) -> dict:
    return {
        "img": torch.rand(n, 3, imgsz, imgsz),
        "batch_idx": torch.arange(n).float(),
        "cls": torch.zeros(n, 1),
        "bboxes": torch.tensor([[0.5, 0.5, 0.2, 0.2]]).repeat(n, 1),
    }


def _time(teacher: MeanTeacher, weak: torch.Tensor, batched: bool, state: torch.Tensor) -> tuple[float, int]:
    teacher.generator.set_state(state)
    labeled = _labeled(weak.shape[0], weak.shape[-1])
    start = time.perf_counter()
    _, reliable = teacher.extend(labeled, weak, batched=batched)
    return (time.perf_counter() - start) * 1000 / weak.shape[0], sum(len(d) for d in reliable)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", type=Path, help="a run's weights (default: an untrained YOLOv8n)")
    parser.add_argument("--images", type=Path, help="a folder of unlabeled images (default: random pixels)")
    parser.add_argument("--imgsz", type=int, default=160)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4, 16, 32])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    torch.manual_seed(0)
    teacher = _mean_teacher(_teacher(args.weights))
    pool = _weak_images(args.images, max(args.batches), args.imgsz)
    print("| B | per image, ms | batched, ms | ratio of medians | pseudo-labels per image |")
    print("|---:|---:|---:|---:|---:|")
    for size in args.batches:
        weak, times, kept = pool[:size], {True: [], False: []}, 0
        for round_ in range(args.rounds):
            state = teacher.generator.get_state()
            for batched in (round_ % 2 == 0, round_ % 2 == 1):  # alternate which path runs first
                ms, kept = _time(teacher, weak, batched, state)
                times[batched].append(ms)
        plain, fast = times[False], times[True]
        ratio = statistics.median(fast) / statistics.median(plain)
        print(
            f"| {size} | {statistics.median(plain):.2f} ({min(plain):.2f}) | {statistics.median(fast):.2f} "
            f"({min(fast):.2f}) | {ratio:.2f} | {kept / size:.1f} |"
        )


if __name__ == "__main__":
    main()
