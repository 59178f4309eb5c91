"""Which size should the teacher label at? (``semi.teacher_scale``, ``semi.teacher_flip``)

A detector can find small objects better on an enlarged image than at the size it was trained and is validated
at. The teacher's pseudo-labels need not come from that size: ``semi.teacher_scale`` has it label the unlabeled
images resized by a factor, its boxes mapped back. This measures, for each factor, alone and as a flip ensemble,
the teacher's mAP through the labeler's forward that the online trainer uses
(:meth:`semiyolo.teacher.TeacherPseudoLabeler.forward`; the NMS and the mAP are Ultralytics' validator's, in
float32, the teacher not folded), on the images a user can choose with: the labeled
training images (``--split train``); and, for a folder made by ``benchmarks/ssod_protocol.sh``, on the unlabeled
images with their hidden labels (``--split unlabeled``, a diagnostic the user cannot run) or the validation images.

    python benchmarks/teacher_scale.py /tmp/abl/digits --split train unlabeled --scales 1 1.2 1.4

The weights are the protocol's converged supervised model (the online arms' first teacher) unless ``--weights``.
Besides the mAP, each row gives the precision and recall (IoU >= 0.5, the class right) of the detections at or
above ``--threshold`` (the pseudo-label score threshold, 0.5 by default) on the same images: mAP integrates over
every threshold, the pseudo-labels are cut at one, and on shapes the scale with the best mAP taught the worst
student (docs/BENCHMARKS.md, "A teacher that labels larger images").
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")

import torch
import yaml
from ultralytics import YOLO
from ultralytics.nn.tasks import DetectionModel

from flip_ensemble import pseudo_label_quality  # this folder: scripts run as ``python benchmarks/...``
from semiyolo.pseudo import FilterChain
from semiyolo.teacher import TeacherPseudoLabeler


class LabelerModel(DetectionModel):
    """A ``DetectionModel`` whose augmented forward (``augment=True`` in validation) is the labeler's forward."""

    labeler: TeacherPseudoLabeler

    def _predict_augment(self, x: torch.Tensor):
        return self.labeler.forward(self, x)[0], None  # the labeler calls the model's plain forward


def validate(weights: Path, data: Path, imgsz: int, scale: float, flip: bool) -> tuple[float, float]:
    """``(mAP50-95, mAP50)`` of the labeler at ``scale`` (and ``flip``) on ``data``'s validation images."""
    model = YOLO(weights)
    model.model.__class__ = LabelerModel
    model.model.labeler = TeacherPseudoLabeler(FilterChain([]), fold=False, mirror=flip, scale=scale)
    box = model.val(
        data=str(data), imgsz=imgsz, batch=32, augment=True, verbose=False, plots=False, device="cpu", workers=0
    ).box
    return box.map, box.map50


def split_yaml(root: Path, split: str, folder: Path) -> tuple[Path, Path]:
    """A data YAML whose validation images are ``split``'s (train: the labeled training images; unlabeled: the
    unlabeled images, labels hidden from training; val: the validation images), and those images' folder."""
    data = yaml.safe_load((root / "split" / "data.yaml").read_text())
    images = {"train": data["train"], "unlabeled": "unlabeled/images", "val": data["val"]}[split]
    data.update(path=str(root / "split"), val=images)
    out = folder / f"{split}.yaml"
    out.write_text(yaml.safe_dump(data))
    return out, root / "split" / images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="a folder made by benchmarks/ssod_protocol.sh")
    parser.add_argument("--weights", type=Path, help="default: ROOT/ablation/supervised_converged/weights/last.pt")
    parser.add_argument("--split", nargs="+", default=["train"], choices=["train", "unlabeled", "val"])
    parser.add_argument("--scales", nargs="+", type=float, default=[1.0, 1.2, 1.4])
    parser.add_argument("--imgsz", type=int, default=160)
    parser.add_argument("--threshold", type=float, default=0.5, help="the pseudo-label score threshold (0.5)")
    args = parser.parse_args()
    weights = args.weights or args.root / "ablation" / "supervised_converged" / "weights" / "last.pt"
    print(
        f"{weights}: the labeler by teacher_scale, alone and as a flip ensemble: mAP50-95 / mAP50, and precision / "
        f"recall at score >= {args.threshold:g}"
    )
    print("| images | teacher_scale | alone: mAP | alone: P / R | flip ensemble: mAP | flip ensemble: P / R |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for split in args.split:
            data, images = split_yaml(args.root, split, Path(folder))
            for scale in args.scales:
                quality = pseudo_label_quality(weights, images, args.imgsz, (args.threshold,), scale)
                cells = []
                for flip in (False, True):
                    cells.append(" / ".join(f"{v:.3f}" for v in validate(weights, data, args.imgsz, scale, flip)))
                    cells.append(" / ".join(f"{v:.3f}" for v in quality[flip][0]))
                print(f"| {split} | {scale:g} | {' | '.join(cells)} |", flush=True)


if __name__ == "__main__":
    main()
