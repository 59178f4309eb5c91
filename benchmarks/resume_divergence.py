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


def write_config(root: Path, data: Path, name: str, epochs: int, seed: int = 0) -> Path:
    train = {
        "epochs": epochs,
        "imgsz": 64,
        "batch": 4,
        "nbs": 4,
        "workers": 0,
        "plots": False,
        "seed": seed,
        "deterministic": True,
        "project": str(root / "runs"),
        "name": name,
        "exist_ok": True,
    }
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"model": "yolov8n.yaml", "data": str(data), "train": train}))
    return path


def final_weights(path: Path) -> dict[str, torch.Tensor]:
    ckpt = torch.load(path, weights_only=False)
    return (ckpt.get("ema") or ckpt["model"]).float().state_dict()


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
    parser.add_argument("--out", type=Path, default=Path("runs/resume-divergence"))
    args = parser.parse_args()
    root = args.out.resolve()
    data = write_dataset(root / "data", SynthSpec(images=24, imgsz=64, seed=0))
    for name, seed in (("straight", 0), ("other_seed", 1)):
        subprocess.run(
            [*TRAIN, str(write_config(root, data, name, args.epochs, seed))], env=ENV, check=True, capture_output=True
        )
    killed = write_config(root, data, "killed", args.epochs)
    last = root / "runs" / "killed" / "weights" / "last.pt"
    kill_after(killed, last, args.kill_after)
    subprocess.run([*TRAIN, str(killed), f"train.resume={last}"], env=ENV, check=True, capture_output=True)
    for name in ("straight", "killed", "other_seed"):
        with open(root / "runs" / name / "results.csv") as f:
            losses = " ".join(row["train/box_loss"] for row in csv.DictReader(f))
        print(f"{name:<11} train/box_loss per epoch: {losses}")
    straight = final_weights(root / "runs" / "straight" / "weights" / "last.pt")
    for name, other in (("resumed", last), ("seed 1", root / "runs" / "other_seed" / "weights" / "last.pt")):
        weights = final_weights(other)
        keys = [k for k in straight if straight[k].is_floating_point()]
        diff = max((straight[k] - weights[k]).abs().max().item() for k in keys)
        same = sum(torch.equal(straight[k], weights[k]) for k in keys)
        print(f"final EMA weights, straight vs {name}: max |difference| {diff:.4g}; {same} of {len(keys)} identical")


if __name__ == "__main__":
    main()
