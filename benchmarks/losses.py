"""Forward+backward time of semiyolo's focal, CIoU and DFL against torchvision.ops and Ultralytics.

One process, the implementations interleaved round by round on the same inputs, median of the rounds,
printed as ratios ``semiyolo / fastest other`` (<= 1.05 is the target). Shapes are a YOLOv8 batch:
B=16 images x 8400 anchors x 80 classes (focal), 134,400 box pairs (CIoU), 134,400 x 4 sides x 16 bins (DFL).

    python benchmarks/losses.py [--rounds 15] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable

import torch
import torchvision
import torchvision.ops as tvops
import ultralytics
from ultralytics.utils.loss import DFLoss, FocalLoss
from ultralytics.utils.metrics import bbox_iou

from semiyolo.losses import distribution_focal_loss, iou_loss, sigmoid_focal_loss

B, A, C, BINS = 16, 8400, 80, 16


def _focal_inputs(gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    logits = torch.randn(B, A, C, generator=gen) * 3 - 4
    targets = torch.zeros(B, A, C)
    pos = torch.randint(0, B * A, (B * A // 100,), generator=gen)
    targets.view(-1, C)[pos, torch.randint(0, C, pos.shape, generator=gen)] = 1.0
    return logits, targets


def _box_inputs(gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    def boxes() -> torch.Tensor:
        xy = torch.rand(B * A, 2, generator=gen) * 600
        return torch.cat((xy, xy + 4 + torch.rand(B * A, 2, generator=gen) * 200), dim=1)

    return boxes(), boxes()


def _dfl_inputs(gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(B * A * 4, BINS, generator=gen), torch.rand(B * A, 4, generator=gen) * (BINS - 1.02)


def cases(gen: torch.Generator) -> dict[str, dict[str, tuple[Callable, tuple]]]:
    """For each loss, name -> (function returning a scalar, inputs whose first entry gets a gradient)."""
    uly_focal, uly_dfl = FocalLoss(gamma=2.0, alpha=0.25), DFLoss(BINS)
    focal_in, box_in, dfl_in = _focal_inputs(gen), _box_inputs(gen), _dfl_inputs(gen)
    return {
        "focal": {
            "semiyolo": (lambda x, y: sigmoid_focal_loss(x, y, reduction="sum"), focal_in),
            "torchvision": (lambda x, y: tvops.sigmoid_focal_loss(x, y, reduction="sum"), focal_in),
            "ultralytics": (uly_focal, focal_in),
        },
        "ciou": {
            "semiyolo": (lambda p, t: iou_loss(p, t, "ciou", reduction="sum"), box_in),
            "torchvision": (lambda p, t: tvops.complete_box_iou_loss(p, t, reduction="sum"), box_in),
            "ultralytics": (lambda p, t: (1.0 - bbox_iou(p, t, xywh=False, CIoU=True)).sum(), box_in),
        },
        "dfl": {
            "semiyolo": (lambda d, t: distribution_focal_loss(d, t.view(-1), reduction="sum"), dfl_in),
            "ultralytics": (lambda d, t: uly_dfl(d, t).sum(), dfl_in),
        },
    }


def time_once(fn: Callable, inputs: tuple) -> float:
    first = inputs[0].detach().requires_grad_(True)
    start = time.perf_counter()
    fn(first, *inputs[1:]).backward()
    return time.perf_counter() - start


def run(rounds: int) -> dict[str, dict[str, float]]:
    gen = torch.Generator().manual_seed(0)
    medians: dict[str, dict[str, float]] = {}
    for loss_name, impls in cases(gen).items():
        for fn, inputs in impls.values():  # warm-up
            time_once(fn, inputs)
        samples: dict[str, list[float]] = {name: [] for name in impls}
        for _ in range(rounds):
            for name, (fn, inputs) in impls.items():
                samples[name].append(time_once(fn, inputs))
        medians[loss_name] = {name: statistics.median(ts) for name, ts in samples.items()}
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--json", help="also write the medians and ratios to this file")
    args = parser.parse_args()
    print(
        f"torch {torch.__version__}, torchvision {torchvision.__version__}, ultralytics {ultralytics.__version__}, "
        f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}"
    )
    medians = run(args.rounds)
    report = {}
    print(f"{'loss':<7}{'implementation':<14}{'median ms':>11}{'ratio':>8}")
    for loss_name, times in medians.items():
        fastest_other = min(t for name, t in times.items() if name != "semiyolo")
        for name, t in times.items():
            print(f"{loss_name:<7}{name:<14}{t * 1e3:>11.1f}{t / fastest_other:>8.2f}")
        report[loss_name] = {"median_s": times, "ratio": times["semiyolo"] / fastest_other}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
