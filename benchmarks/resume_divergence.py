"""How far a killed-and-resumed run ends from an uninterrupted one with the same seed (CPU, supervised).

Trains YOLOv8n on a small synthetic set for ``--epochs`` epochs: once straight through; once killed with
SIGKILL right after epoch ``--kill-after`` was saved, then resumed with ``train.resume``; and once straight
through with another seed, for scale. Prints the training box loss per epoch of each run and the largest
difference between the straight run's final EMA weights and the two others'.

    python benchmarks/resume_divergence.py [--epochs 4] [--kill-after 2] [--out runs/resume-divergence]
"""

from __future__ import annotations

import argparse
import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
import yaml

from semiyolo.data import SynthSpec, write_dataset

TRAIN = [sys.executable, "-m", "semiyolo", "train"]
ENV = {**os.environ, "YOLO_OFFLINE": "1"}


def write_config(root: Path, data: Path, name: str, epochs: int, seed: int = 0, nbs: int = 4) -> Path:
    train = {
        "epochs": epochs,
        "imgsz": 64,
        "batch": 4,
        "nbs": nbs,  # nominal batch: Ultralytics accumulates nbs / batch batches per step
        "workers": 0,
        "plots": False,
        "seed": seed,
        "deterministic": True,
        "project": str(root / "runs"),
        "name": name,
        "exist_ok": True,
    }
    path = root / f"{name}.yaml"
    semi = {"keep_state": True}  # final_weights reads the finished run's train_state.pt
    path.write_text(yaml.safe_dump({"model": "yolov8n.yaml", "data": str(data), "train": train, "semi": semi}))
    return path


def final_weights(wdir: Path) -> dict[str, dict[str, torch.Tensor]]:
    """The final model and EMA weights in full precision (``train_state.pt``; ``last.pt`` holds the EMA in half)."""
    state = torch.load(wdir / "train_state.pt", weights_only=False)
    return {"model": state["model"], "ema": state["ema"]}


def kill_after(config: Path, last: Path, epoch: int) -> None:
    """Run ``config`` and SIGKILL it once ``last`` holds ``epoch`` (1-based); last.pt is renamed into place
    whole, so it can be read while the run goes on."""
    proc = subprocess.Popen([*TRAIN, str(config)], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while proc.poll() is None:
        if last.is_file() and torch.load(last, weights_only=False)["epoch"] >= epoch - 1:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--kill-after", type=int, default=2)
    parser.add_argument("--nbs", type=int, default=4, help="nominal batch (batch is 4): 8 accumulates 2 batches")
    parser.add_argument("--out", type=Path, default=Path("runs/resume-divergence"))
    args = parser.parse_args()
    root = args.out.resolve()
    data = write_dataset(root / "data", SynthSpec(images=24, imgsz=64, seed=0))
    for name, seed in (("straight", 0), ("other_seed", 1)):
        subprocess.run(
            [*TRAIN, str(write_config(root, data, name, args.epochs, seed, args.nbs))],
            env=ENV,
            check=True,
            capture_output=True,
        )
    killed = write_config(root, data, "killed", args.epochs, nbs=args.nbs)
    last = root / "runs" / "killed" / "weights" / "last.pt"
    kill_after(killed, last, args.kill_after)
    subprocess.run([*TRAIN, str(killed), f"train.resume={last}"], env=ENV, check=True, capture_output=True)
    for name in ("straight", "killed", "other_seed"):
        with open(root / "runs" / name / "results.csv") as f:
            losses = " ".join(row["train/box_loss"] for row in csv.DictReader(f))
        print(f"{name:<11} train/box_loss per epoch: {losses}")
    weights = {name: final_weights(root / "runs" / name / "weights") for name in ("straight", "killed", "other_seed")}
    for name, label in (("killed", "resumed"), ("other_seed", "seed 1")):
        for part in ("model", "ema"):
            a, b = weights["straight"][part], weights[name][part]
            keys = [k for k in a if a[k].is_floating_point()]
            diff = max((a[k] - b[k]).abs().max().item() for k in keys)
            same = sum(torch.equal(a[k], b[k]) for k in keys)
            print(f"final {part} weights, straight vs {label}: max |diff| {diff:.4g}; {same} of {len(keys)} identical")


if __name__ == "__main__":
    main()
