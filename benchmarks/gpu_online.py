"""Online training on a GPU: does unlabeled loading starve the step, what does AMP do to the teacher, and what
batch does ``batch: -1`` choose?

Trains on a split made by ``semiyolo split`` (10 % labeled) for a few epochs, without validation, and times every
optimizer step from Ultralytics' own callbacks. Arms:

- ``supervised``: labeled images only (``semi.mode: supervised``), the same labeled batches, ``--warm-epochs``
  epochs from scratch; its ``last.pt`` is the model every online arm starts from, so that its teacher labels
  something;
- ``online_in_process``: online, the letterboxed unlabeled images decoded in the training process (how the
  letterbox view read them before this script's issue: ``unlabeled workers 0``);
- ``online``: online, the unlabeled images decoded in ``train.workers`` loader processes (the default now);
- ``online_ultralytics_view``: ``semi.unlabeled_view: ultralytics`` (mosaic / affine / flip in loader workers);
- ``online_dense``: ``online`` with ``semi.pseudo_targets: dense``;
- ``online_autobatch``: ``online`` with ``train.batch: -1``, one epoch.

For each: median seconds per optimizer step (steps after the first 5), the share of the training time spent
waiting for the next unlabeled batch, the peak GPU memory, and the batch size.

    python benchmarks/gpu_online.py SPLIT/config.yaml [--epochs 2] [--batch 32] [--imgsz 640] [--workers 8]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")

import torch

from semiyolo.config import SemiConfig
from semiyolo.config_loading import load_config
from semiyolo.integrations.ultralytics.online import OnlineTrainer
from semiyolo.integrations.ultralytics.supervised import SupervisedTrainer

CUDA = torch.cuda.is_available()


def sync() -> None:
    if CUDA:
        torch.cuda.synchronize()


class StepClock:
    """Ultralytics callbacks timing each optimizer step (batch) and each epoch's training part."""

    def __init__(self) -> None:
        self.steps: list[float] = []
        self.train_seconds = 0.0
        self.last = 0.0
        self.epoch_start = 0.0

    def attach(self, trainer) -> None:
        trainer.add_callback("on_train_epoch_start", self.on_epoch_start)
        trainer.add_callback("on_train_batch_end", self.on_batch_end)

    def on_epoch_start(self, trainer) -> None:
        sync()
        self.epoch_start = self.last = time.perf_counter()

    def on_batch_end(self, trainer) -> None:
        sync()
        now = time.perf_counter()
        self.steps.append(now - self.last)
        self.train_seconds += now - self.last
        self.last = now


def timed(stream: Iterator, waits: list[float]) -> Iterator:
    """``stream``, recording how long each ``next`` blocked."""
    while True:
        start = time.perf_counter()
        try:
            item = next(stream)
        except StopIteration:
            return
        waits.append(time.perf_counter() - start)
        yield item


class TimedOnline(OnlineTrainer):
    def open_unlabeled_stream(self) -> None:
        super().open_unlabeled_stream()
        self.unlabeled = timed(self.unlabeled, self.unlabeled_waits)


class InProcessOnline(TimedOnline):
    """The unlabeled images decoded in the training process, as the letterbox view read them before."""

    def unlabeled_workers(self, world: int) -> int:
        return 0


def run_arm(name: str, config: Path, overrides: dict, semi: dict, out: Path) -> dict:
    cfg = load_config(config)
    settings = SemiConfig(**{**cfg.semi.model_dump(), **semi})
    trainer_type = {"supervised": SupervisedTrainer, "online_in_process": InProcessOnline}.get(name, TimedOnline)
    warm = out / "supervised" / "weights" / "last.pt"
    model = cfg.model if name == "supervised" else str(warm)
    args = {**overrides, "model": model, "data": cfg.data, "project": str(out), "name": name, "exist_ok": True}
    trainer = trainer_type(overrides=args, semi=settings)
    trainer.unlabeled_waits = []
    clock = StepClock()
    clock.attach(trainer)
    if CUDA:
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    trainer.train()
    waits = trainer.unlabeled_waits
    semi_on = name != "supervised"
    steady = clock.steps[5:] or clock.steps
    result = {
        "arm": name,
        "batch": trainer.batch_size,
        "steps": len(clock.steps),
        "step_ms_median": 1e3 * statistics.median(steady),
        "train_s": clock.train_seconds,
        "unlabeled_wait_share": sum(waits) / clock.train_seconds if waits else 0.0,
        "unlabeled_wait_ms_median": 1e3 * statistics.median(waits) if waits else 0.0,
        "pseudo_labels_per_image": trainer.audit.metrics()["semi/pseudo_per_image"] if semi_on else 0.0,
        "peak_gpu_gib": torch.cuda.max_memory_allocated() / 2**30 if CUDA else 0.0,
        "gpu_gib": torch.cuda.get_device_properties(0).total_memory / 2**30 if CUDA else 0.0,
        "wall_s": time.perf_counter() - start,
    }
    print(json.dumps(result), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path, help="the config.yaml of 'semiyolo split'")
    parser.add_argument("--epochs", type=int, default=2, help="epochs of each online arm")
    parser.add_argument("--warm-epochs", type=int, default=10, help="epochs of the supervised arm")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--labeled-repeat", type=int, default=40)
    parser.add_argument("--out", type=Path, default=Path("runs/gpu_online"))
    parser.add_argument("--arms", nargs="+", default=None, help="a subset of the arms, by name")
    args = parser.parse_args()
    base = {
        "epochs": args.epochs,
        "batch": args.batch,
        "imgsz": args.imgsz,
        "workers": args.workers,
        "device": 0 if CUDA else "cpu",
        "amp": True,
        "val": False,
        "plots": False,
        "close_mosaic": 0,
        "seed": 0,
    }
    semi = {"burn_in": 0, "labeled_repeat": args.labeled_repeat, "validate_teacher": False, "lambda_bg": 1.0}
    arms = [
        ("supervised", {**base, "epochs": args.warm_epochs}, {**semi, "mode": "supervised"}),
        ("online_in_process", base, semi),
        ("online", base, semi),
        ("online_ultralytics_view", base, {**semi, "unlabeled_view": "ultralytics"}),
        ("online_dense", base, {**semi, "pseudo_targets": "dense"}),
        ("online_autobatch", {**base, "batch": -1, "epochs": 1}, semi),
    ]
    results = [run_arm(n, args.config, o, s, args.out) for n, o, s in arms if not args.arms or n in args.arms]
    where = torch.cuda.get_device_name(0) if CUDA else "CPU"
    print(f"\n{where}, torch {torch.__version__}, AMP, {args.imgsz} px, workers {args.workers}")
    print(f"{'arm':<26}{'batch':>6}{'steps':>7}{'ms/step':>9}{'unlabeled wait':>16}{'PL/image':>10}{'peak GiB':>10}")
    for r in results:
        print(
            f"{r['arm']:<26}{r['batch']:>6}{r['steps']:>7}{r['step_ms_median']:>9.1f}"
            f"{100 * r['unlabeled_wait_share']:>15.1f}%{r['pseudo_labels_per_image']:>10.2f}{r['peak_gpu_gib']:>10.2f}"
        )


if __name__ == "__main__":
    main()
