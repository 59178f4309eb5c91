"""Forward+backward time of BackgroundPenaltyDetectionLoss against Ultralytics' v8DetectionLoss.

Real YOLOv8n outputs (B=8, 640 px, 80 classes: 8400 anchors), computed once; each round times the
criterion's forward and its backward into those outputs, for every variant on the same inputs,
interleaved. Reports median times and the median over rounds of each round's ratio to ``v8DetectionLoss``
(pairs measured back to back, so the shared machine's drift cancels). Variants:

- ``ultralytics``: ``v8DetectionLoss``;
- ``semiyolo lambda_bg=1``: the penalised criterion (fused classification pass, default ``max`` mode);
- ``naive``: ``v8DetectionLoss`` plus a separate autograd pass of the penalty (what the fused pass avoids).

    python benchmarks/bg_penalty_overhead.py [--rounds 40]

glibc returns large freed blocks to the system, so every fresh 20 MB tensor costs page faults, and how many
depends on the allocator's history: the same loop then swings by 50 % between runs. The script re-executes
itself with glibc's mmap and trim thresholds raised (freed memory is reused), which both criteria enjoy alike.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

STABLE_MALLOC = {"MALLOC_MMAP_THRESHOLD_": "4294967296", "MALLOC_TRIM_THRESHOLD_": "4294967296"}
if __name__ == "__main__" and any(os.environ.get(k) != v for k, v in STABLE_MALLOC.items()):
    # before importing ultralytics, which sets OMP_NUM_THREADS=1 in the environment a child would inherit
    os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **STABLE_MALLOC})
os.environ.setdefault("YOLO_OFFLINE", "1")

import torch
import ultralytics
from ultralytics.cfg import get_cfg
from ultralytics.nn.tasks import DetectionModel
from ultralytics.utils.loss import v8DetectionLoss

from semiyolo.integrations.ultralytics import BackgroundPenaltyDetectionLoss
from semiyolo.losses import background_penalty

B, IMGSZ, NC = 8, 640, 80


class NaivePenalty(v8DetectionLoss):
    """The penalty bolted on after Ultralytics' loss: a second dense pass with autograd."""

    def loss(self, preds, batch):
        (fg_mask, *_), loss, items = self.get_assigned_targets_and_loss(preds, batch)
        scores = preds["scores"].permute(0, 2, 1)
        bg = background_penalty(scores, ~fg_mask, reduction="mean") * self.hyp.cls
        return torch.cat((loss, bg[None])) * scores.shape[0], items


def make_inputs() -> tuple[DetectionModel, dict, dict]:
    torch.manual_seed(0)
    model = DetectionModel("yolov8n.yaml", nc=NC, verbose=False).train()
    model.args = get_cfg()
    gen = torch.Generator().manual_seed(0)
    n_obj = 6
    xy = torch.rand(B * n_obj, 2, generator=gen) * 0.7 + 0.15
    wh = torch.rand(B * n_obj, 2, generator=gen) * 0.25 + 0.05
    batch = {
        "batch_idx": torch.arange(B).repeat_interleave(n_obj).float(),
        "cls": torch.randint(0, NC, (B * n_obj, 1), generator=gen).float(),
        "bboxes": torch.cat((xy, wh), 1),
    }
    with torch.no_grad():
        preds = model(torch.rand(B, 3, IMGSZ, IMGSZ, generator=gen))
    return model, preds, batch


def time_once(criterion, preds: dict, batch: dict) -> float:
    leaves = {k: v.detach().requires_grad_(True) for k, v in preds.items() if k in ("boxes", "scores")}
    inputs = {**preds, **leaves}
    start = time.perf_counter()
    loss, _ = criterion(inputs, batch)
    loss.sum().backward()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    model, preds, batch = make_inputs()
    variants = {
        "ultralytics": v8DetectionLoss(model),
        "semiyolo lambda_bg=1": BackgroundPenaltyDetectionLoss(model, lambda_bg=1.0),
        "naive": NaivePenalty(model),
    }
    for crit in variants.values():  # warm-up
        time_once(crit, preds, batch)
    samples = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, crit in variants.items():
            samples[name].append(time_once(crit, preds, batch))
    print(
        f"torch {torch.__version__}, ultralytics {ultralytics.__version__}, {torch.get_num_threads()} threads; "
        f"B={B}, {IMGSZ} px, {NC} classes, {args.rounds} rounds, glibc thresholds raised"
    )
    base = samples["ultralytics"]
    print(f"{'criterion':<24}{'median ms':>10}{'ratio':>8}")
    for name, ts in samples.items():
        ratio = statistics.median(t / b for t, b in zip(ts, base, strict=True))
        print(f"{name:<24}{statistics.median(ts) * 1e3:>10.1f}{ratio:>8.3f}")


if __name__ == "__main__":
    main()
