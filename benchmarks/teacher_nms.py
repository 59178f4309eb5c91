"""The teacher's NMS stage per image, one NMS per image against one for the whole batch, at several batch sizes.

``TeacherPseudoLabeler.postprocess`` (the candidates gathered, class-aware NMS with cluster spread, DFL logits
kept) on the outputs of one forward of an untrained YOLOv8n on random images, as ``benchmarks/ssod_step.py`` sets
it up: its ``--candidates`` best anchors per image (100 there) go to NMS. The two paths are timed interleaved in
one process on the same outputs (the first images of the one forward); medians and minima per image, their
ratio (batched / per image) of the medians.

    python benchmarks/teacher_nms.py [--batches 1 4 16 32] [--imgsz 256] [--candidates 100] [--rounds 30]
                                     [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("YOLO_OFFLINE", "1")

import torch
from ultralytics.nn.tasks import DetectionModel

from semiyolo.pseudo import FilterChain
from semiyolo.teacher import TeacherPseudoLabeler
from semiyolo.teacher.labeler import per_anchor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4, 16, 32])
    parser.add_argument("--imgsz", type=int, default=256)
    parser.add_argument("--candidates", type=int, default=100, help="max_candidates (min_score 0)")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    teacher = DetectionModel("yolov8n.yaml", nc=3, verbose=False).to(device)
    labeler = TeacherPseudoLabeler(FilterChain([]), min_score=0.0, max_candidates=args.candidates, fold=False)
    images = torch.rand(max(args.batches), 3, args.imgsz, args.imgsz, device=device)
    decoded, raw = labeler.forward(teacher, images)
    probs, boxes = per_anchor(decoded)

    def now() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter()

    header = ("B", "per image ms/img: median", "min", "batched: median", "min", "ratio", "kept/img")
    print(" ".join(f"{h:>{w}}" for h, w in zip(header, (3, 24, 6, 16, 6, 6, 9), strict=True)))
    for b in args.batches:
        inputs = (probs[:b], boxes[:b], {k: v[:b] for k, v in raw.items() if k == "boxes"})
        times: dict[bool, list[float]] = {False: [], True: []}
        for batched in (False, True):  # warm-up, untimed
            labeler.postprocess(*inputs, batched=batched)
        for _ in range(args.rounds):
            for batched in (False, True):
                start = now()
                detections = labeler.postprocess(*inputs, batched=batched)
                times[batched].append((now() - start) / b * 1e3)
        before, after = statistics.median(times[False]), statistics.median(times[True])
        fastest = min(times[False]), min(times[True])
        kept = sum(len(d) for d in detections) / b
        print(
            f"{b:>3} {before:>24.3f} {fastest[0]:>6.3f} {after:>16.3f} {fastest[1]:>6.3f} {after / before:>6.2f} "
            f"{kept:>9.1f}"
        )


if __name__ == "__main__":
    main()
