"""How far a model's boxes sit from the labelled ones, edge by edge: is a detector's box error a bias (a mapping
or rounding fault would shift every box the same way) or scatter (what a better model, not a fix, removes)?

    python benchmarks/box_errors.py WEIGHTS IMAGES [IMAGES ...] [--imgsz 160] [--conf 0.5] [--limit 300]

Each IMAGES is a folder of images under an Ultralytics ``images`` folder, its labels where Ultralytics looks (the
last ``/images/`` becomes ``/labels/``), e.g. an ablation split's ``unlabeled/images`` with its hidden labels.
Predictions come from Ultralytics' own predictor (its letterbox and its scaling back), kept above ``--conf`` (the
default filter chain's score), each matched to the labelled box it overlaps most at IoU >= 0.5, class ignored and a
label free to match twice (as ``exact_boxes`` does; ``semi/pl_iou`` matches one to one by score within a class, so
its figures are close but not the same). Prints, in pixels of the original image: the matched boxes' mean IoU, each
edge's mean signed offset (x1, y1, x2, y2; prediction minus label) and mean absolute offset, and the mean width and
height error.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")  # before Ultralytics is imported

import torch
from torchvision.ops import box_convert, box_iou
from ultralytics.data.utils import IMG_FORMATS, img2label_paths


def labelled_boxes(image: Path, width: int, height: int) -> torch.Tensor:
    """``Tensor[N, 4]`` xyxy pixels of an image's YOLO label file (none: an empty tensor)."""
    if "images" not in image.parent.parts:
        raise SystemExit(f"{image}: expected an image under an 'images' folder, beside its 'labels' folder")
    label = Path(img2label_paths([image])[0])  # Ultralytics' own rule: the last /images/ becomes /labels/
    rows = [line.split() for line in label.read_text().splitlines() if line.strip()] if label.is_file() else []
    if not rows:
        return torch.zeros((0, 4))
    cxcywh = torch.tensor([[float(v) for v in row[1:5]] for row in rows]) * torch.tensor([width, height] * 2)
    return box_convert(cxcywh, "cxcywh", "xyxy")


def matched_offsets(predicted: torch.Tensor, labelled: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ious Tensor[M], offsets Tensor[M, 4])``: each prediction's best IoU with a labelled box where it is >= 0.5,
    and its xyxy edges minus that box's."""
    if len(predicted) == 0 or len(labelled) == 0:
        return torch.zeros(0), torch.zeros((0, 4))
    best, index = box_iou(predicted, labelled).max(dim=1)
    keep = best >= 0.5
    return best[keep], predicted[keep] - labelled[index[keep]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("weights", type=Path)
    parser.add_argument("images", type=Path, nargs="+")
    parser.add_argument("--imgsz", type=int, default=160)
    parser.add_argument("--conf", type=float, default=0.5)
    parser.add_argument("--limit", type=int, default=300, help="images per folder (sorted by name)")
    args = parser.parse_args()
    from ultralytics import YOLO

    model = YOLO(args.weights)
    ious, offsets = [], []
    for folder in args.images:
        images = sorted(p for p in folder.iterdir() if p.suffix[1:].lower() in IMG_FORMATS)[: args.limit]
        for image in images:
            result = model.predict(image, imgsz=args.imgsz, conf=args.conf, verbose=False)[0]
            height, width = result.orig_shape
            found = matched_offsets(result.boxes.xyxy.float().cpu(), labelled_boxes(image, width, height))
            ious.append(found[0])
            offsets.append(found[1])
    if not ious or sum(len(i) for i in ious) == 0:
        raise SystemExit("no prediction matched a labelled box at IoU >= 0.5 (or no image in the folders)")
    iou, offset = torch.cat(ious), torch.cat(offsets)
    sizes = offset[:, 2:] - offset[:, :2]
    print(f"{args.weights}: {len(iou)} matched boxes, mean IoU {iou.mean():.4f}")
    print("edge offset, px (x1 y1 x2 y2): mean " + " ".join(f"{v:+.3f}" for v in offset.mean(0).tolist()))
    print("                     mean |offset| " + " ".join(f"{v:.3f}" for v in offset.abs().mean(0).tolist()))
    print(f"width error {sizes[:, 0].mean():+.3f} px, height error {sizes[:, 1].mean():+.3f} px (mean)")


if __name__ == "__main__":
    main()
