"""What the converged supervised model (the online arms' first teacher) gets wrong on the unlabeled images.

For every object of the unlabeled images (their hidden labels), the teacher's detections (conf >= 0.01, NMS at
0.7, Ultralytics' predictor) that overlap it by IoU >= 0.5 give two scores: the best of the object's own class,
and the best of any other class. The objects are binned by the first; in each bin, the share where another class
scores higher says whether the teacher misses the object (no box) or confuses its class (a box, the wrong class).
Then Ultralytics' validation of the same model on the same images, without and with its test-time augmentation
(``augment=True``: scales 1, 0.83, 0.67, the 0.83 one mirrored left-right), to see whether an ensemble of views
would label better than the teacher alone. On digits the mirrored view is a different picture of a digit (the
benchmark trains with Ultralytics' default ``fliplr`` 0.5, so the model has seen mirrored digits); the measure is
of Ultralytics' TTA as it is, not of the best ensemble possible.

    python benchmarks/teacher_anatomy.py /tmp/abl/digits [--imgsz 160]

The folder is one made by ``benchmarks/ssod_protocol.sh`` (``split/`` and ``ablation/supervised_converged``).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")

import torch
import yaml
from torchvision.ops import box_convert, box_iou
from ultralytics import YOLO

from semiyolo.data import label_path, list_images, read_label_file

BINS = ((0.5, 1.01), (0.3, 0.5), (0.1, 0.3), (0.01, 0.1), (0.0, 0.01))  # the object's own class, best score


def hidden_labels(image: Path, width: int, height: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(classes Tensor[M], xyxy pixels Tensor[M, 4])`` of ``image``'s label file (Ultralytics' path rule)."""
    table = torch.from_numpy(read_label_file(label_path(image)))
    boxes = box_convert(table[:, 1:] * torch.tensor([width, height] * 2), "cxcywh", "xyxy")
    return table[:, 0].long(), boxes


def object_scores(model: YOLO, images: list[Path], imgsz: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per object: the best score of a detection of its own class at IoU >= 0.5, and of any other class (0: none)."""
    own, other = [], []
    for start in range(0, len(images), 64):
        chunk = [str(p) for p in images[start : start + 64]]
        for result in model.predict(chunk, imgsz=imgsz, conf=0.01, iou=0.7, verbose=False, device="cpu"):
            height, width = result.orig_shape
            classes, boxes = hidden_labels(Path(result.path), width, height)
            det = result.boxes
            if len(det) == 0:
                own.append(torch.zeros(len(classes)))
                other.append(torch.zeros(len(classes)))
                continue
            overlap = box_iou(boxes, det.xyxy) >= 0.5
            same = overlap & (det.cls.long()[None] == classes[:, None])
            scores = det.conf[None].expand_as(overlap)
            own.append(torch.where(same, scores, 0).amax(1))
            other.append(torch.where(overlap & ~same, scores, 0).amax(1))
    return torch.cat(own), torch.cat(other)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="a folder made by benchmarks/ssod_protocol.sh")
    parser.add_argument("--imgsz", type=int, default=160)
    args = parser.parse_args()
    model = YOLO(args.root / "ablation" / "supervised_converged" / "weights" / "last.pt")
    images = list_images(args.root / "split" / "unlabeled" / "images")
    own, other = object_scores(model, images, args.imgsz)
    print(f"{args.root}: {len(own)} objects in {len(images)} unlabeled images")
    print("| own class's best score | share of objects | of them, another class scores higher |")
    print("|---|---|---|")
    for low, high in BINS:
        inside = (own >= low) & (own < high)
        confused = (other[inside] > own[inside]).float().mean().item() if inside.any() else 0.0
        print(f"| [{low}, {min(high, 1.0)}) | {inside.float().mean().item():.3f} | {confused:.3f} |")
    missed, located = own < 0.5, torch.maximum(own, other) >= 0.1
    print(f"below 0.5, localised (any class >= 0.1 at IoU >= 0.5): {(missed & located).float().mean().item():.3f}")
    confused = (missed & (other >= 0.5)).float().mean().item()
    print(f"below 0.5, another class >= 0.5 (a confident confusion): {confused:.3f}")
    names = yaml.safe_load((args.root / "split" / "data.yaml").read_text())["names"]
    data = args.root / "anatomy_unlabeled.yaml"  # the unlabeled images with their hidden labels, for validation
    data.write_text(
        yaml.safe_dump(
            {"path": str(args.root / "split"), "train": "unlabeled/images", "val": "unlabeled/images", "names": names}
        )
    )
    for augment in (False, True):
        box = model.val(
            data=str(data),
            imgsz=args.imgsz,
            batch=32,
            augment=augment,
            verbose=False,
            plots=False,
            device="cpu",
            workers=0,
        ).box
        print(
            f"val augment={augment}: precision {box.mp:.3f} recall {box.mr:.3f} mAP50 {box.map50:.3f} "
            f"mAP50-95 {box.map:.3f}"
        )


if __name__ == "__main__":
    main()
