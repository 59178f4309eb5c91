"""The flip ensemble (``semi.teacher_flip``) as a labeler and at test time.

1. The converged supervised model (the online arms' first teacher) on the unlabeled images, with their hidden
   labels: Ultralytics' validation of its outputs alone and of the flip ensemble (its outputs averaged anchor by
   anchor with those on the mirrored image, :func:`semiyolo.teacher.mirror.mirror_average`): how much better the
   ensemble labels.
   Then the pseudo-labels the online arms would start from: precision and recall (IoU >= 0.5, the class right)
   of the detections above a score threshold, for each threshold, alone and as a flip ensemble.
2. For each run folder named (``supervised_continued``, ``online_tiered_flip``, ...), each seed's final weights on
   the validation images, alone and as a flip ensemble: what the ensemble would give at test time, which the
   protocol's figures (single model, no test-time augmentation) leave out.

    python benchmarks/flip_ensemble.py /tmp/abl/digits [--arms supervised_continued online_tiered_flip]

The folder is one made by ``benchmarks/ssod_protocol.sh``.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")

import torch
from ultralytics import YOLO
from ultralytics.nn.tasks import BaseModel, DetectionModel

from semiyolo.integrations.ultralytics.unlabeled import UnlabeledImages, unlabeled_batches
from semiyolo.pseudo import FilterChain
from semiyolo.teacher import PseudoLabelAudit, TeacherPseudoLabeler
from semiyolo.teacher.mirror import mirror_average

THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7)


class FlipEnsembleModel(DetectionModel):
    """A ``DetectionModel`` whose augmented forward (``augment=True`` in validation) is the flip ensemble."""

    def _predict_augment(self, x: torch.Tensor):
        decoded, raw = BaseModel.predict(self, torch.cat([x, x.flip(-1)]))
        return mirror_average(decoded, raw, x.shape[-1])[0], None


def validate(weights: Path, data: Path, imgsz: int, flip: bool) -> tuple[float, float, float]:
    """``(mAP50-95, mAP50, recall)`` of ``weights`` on ``data``'s validation images, alone or as a flip ensemble."""
    model = YOLO(weights)
    if flip:
        model.model.__class__ = FlipEnsembleModel  # the same module, validated through the ensemble's forward
    box = model.val(
        data=str(data), imgsz=imgsz, batch=32, augment=flip, verbose=False, plots=False, device="cpu", workers=0
    ).box
    return box.map, box.map50, box.mr


def pseudo_label_quality(
    weights: Path, folder: Path, imgsz: int, thresholds: Sequence[float] = THRESHOLDS, scale: float = 1.0
) -> dict[bool, list[tuple[float, float]]]:
    """Per ``flip`` (alone, ensemble): ``(precision, recall)`` of the labeler's detections (at ``scale``) scoring at
    least each of ``thresholds`` against the label files of the images under ``folder``
    (:class:`~semiyolo.teacher.PseudoLabelAudit`, the online runs' measure)."""
    model = YOLO(weights).model.float().eval()
    dataset = UnlabeledImages.from_folder(folder, imgsz)
    audits = {(flip, t): PseudoLabelAudit() for flip in (False, True) for t in thresholds}
    labelers = {
        flip: TeacherPseudoLabeler(FilterChain([]), min_score=min(0.1, *thresholds), mirror=flip, scale=scale)
        for flip in (False, True)
    }
    for images, hidden, _ in unlabeled_batches(dataset, 32, seed=0, max_passes=1, shuffle=False):
        for flip, labeler in labelers.items():
            detections = labeler.detect(model, images.float() / 255)
            for t in thresholds:
                audits[flip, t].observe([d.select(d.scores >= t) for d in detections], hidden)
    quality = {}
    for flip in (False, True):
        figures = [audits[flip, t].metrics() for t in thresholds]
        quality[flip] = [(f["semi/pl_precision"], f["semi/pl_recall"]) for f in figures]
    return quality


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="a folder made by benchmarks/ssod_protocol.sh")
    parser.add_argument("--arms", nargs="*", default=[], help="run folders under ablation/seed<k>/")
    parser.add_argument("--imgsz", type=int, default=160)
    args = parser.parse_args()
    ablation = args.root / "ablation"
    unlabeled = args.root / "anatomy_unlabeled.yaml"  # written by benchmarks/teacher_anatomy.py
    converged = ablation / "supervised_converged" / "weights" / "last.pt"
    quality = pseudo_label_quality(converged, args.root / "split" / "unlabeled" / "images", args.imgsz)
    print(f"{args.root}: the first teacher's pseudo-labels on the unlabeled images, precision / recall")
    print("| score threshold | alone | flip ensemble |")
    print("|---|---|---|")
    for i, t in enumerate(THRESHOLDS):
        cells = [f"{precision:.3f} / {recall:.3f}" for precision, recall in (quality[f][i] for f in (False, True))]
        print(f"| {t} | {cells[0]} | {cells[1]} |")
    print("\nmAP50-95 / mAP50 / recall, alone and as a flip ensemble")
    print("| model | images | alone | flip ensemble |")
    print("|---|---|---|---|")
    rows = [("supervised_converged (the first teacher)", converged, unlabeled, "unlabeled")]
    for arm in args.arms:
        for seed in sorted(ablation.glob("seed*")):
            if (seed / arm / "ablation_row.json").is_file():  # finished
                rows.append((f"{seed.name}/{arm}", seed / arm / "weights" / "last.pt", None, "validation"))
    for name, weights, data, images in rows:
        data = data or args.root / "split" / "data.yaml"
        cells = [" / ".join(f"{v:.3f}" for v in validate(weights, data, args.imgsz, flip)) for flip in (False, True)]
        print(f"| {name} | {images} | {cells[0]} | {cells[1]} |", flush=True)


if __name__ == "__main__":
    main()
