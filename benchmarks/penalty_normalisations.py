"""Background false positives and accuracy against lambda_bg for the penalty's normalisations.

The supervised penalty's setting (the demo's until issue 14: 300 synthetic images at 160 px, YOLOv8n from
scratch, 30 epochs, seed 0; burn-in 1 epoch, linear warm-up over 6) for ``lambda_bg = 0`` and, per
normalisation, ``lambda_bg`` in {1, 2}.
Writes a Markdown table to stdout and to ``OUT/results.md``.

    python benchmarks/penalty_normalisations.py [--out runs/penalty-normalisations] [--epochs 30]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")

from semiyolo.data import SynthSpec, write_dataset
from semiyolo.integrations.ultralytics import train

KEYS = ("metrics/precision(B)", "metrics/recall(B)", "metrics/mAP50(B)", "metrics/mAP50-95(B)")


def penalty_config(data_yaml: Path, out: Path, lambda_bg: float, epochs: int) -> dict:
    """Supervised YOLOv8n from scratch at 160 px, batch 16, seed 0; the penalty ramped after a 1-epoch burn-in."""
    return {
        "model": "yolov8n.yaml",
        "data": str(data_yaml),
        "train": {
            "epochs": epochs,
            "imgsz": 160,
            "batch": 16,
            "seed": 0,
            "deterministic": True,
            "workers": 0,
            "project": str(out),
            "exist_ok": True,
            "close_mosaic": max(1, epochs // 5),
        },
        "semi": {"mode": "supervised", "burn_in": 1, "lambda_bg": lambda_bg, "lambda_bg_warmup": max(1, epochs // 5)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/penalty-normalisations"))
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--lambdas", type=float, nargs="+", default=[1.0, 2.0])
    args = parser.parse_args()
    out = args.out.resolve()
    data_yaml = write_dataset(out / "data", SynthSpec(images=300, imgsz=160, seed=0))
    runs = [("none", 0.0)] + [(norm, lam) for norm in ("bg_mean", "bce") for lam in args.lambdas]
    lines = [
        "| normalize | lambda_bg | precision | recall | mAP50 | mAP50-95 | bg FP / image | minutes |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for norm, lam in runs:
        cfg = penalty_config(data_yaml, out, lam, args.epochs)
        cfg["train"]["name"] = f"{norm}_{lam:g}"
        cfg["semi"]["bg_normalize"] = "bce" if norm == "none" else norm
        start = time.time()
        s = train(cfg)
        cells = [f"{s[k]:.3f}" for k in KEYS] + [f"{s['bg_fp/background_fp_per_image']:.3f}"]
        lines.append(f"| {norm} | {lam:g} | " + " | ".join(cells) + f" | {(time.time() - start) / 60:.1f} |")
    table = "\n".join(lines)
    (out / "results.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
