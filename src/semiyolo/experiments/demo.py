"""``semiyolo demo``: from nothing, a synthetic dataset and two short CPU trainings, lambda_bg 0 against 1."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..data import SynthSpec, write_dataset
from ..integrations.ultralytics import train
from .report import COLUMNS as REPORT_COLUMNS
from .report import write_tables

COLUMNS = tuple(c for c in REPORT_COLUMNS if c[0] not in ("run", "PL precision", "PL recall"))


def demo_config(data_yaml: Path, out: Path, lambda_bg: float, epochs: int, imgsz: int, batch: int, seed: int):
    return {
        "model": "yolov8n.yaml",
        "data": str(data_yaml),
        "train": {
            "epochs": epochs,
            "imgsz": imgsz,
            "batch": batch,
            "seed": seed,
            "deterministic": True,
            "workers": 0,
            "project": str(out),
            "name": f"lambda_bg_{lambda_bg:g}",
            "exist_ok": True,
            "close_mosaic": max(1, epochs // 5),
        },
        "semi": {"mode": "supervised", "burn_in": 1, "lambda_bg": lambda_bg, "lambda_bg_warmup": max(1, epochs // 5)},
    }


def run_demo(
    out: str | Path = "runs/demo",
    images: int = 300,
    imgsz: int = 160,
    epochs: int = 30,
    batch: int = 16,
    seed: int = 0,
    lambdas: Sequence[float] = (0.0, 1.0),
) -> list[dict[str, Any]]:
    """Generate the synthetic data, train once per ``lambda_bg`` and write ``results.md`` and ``results.csv``."""
    out = Path(out).resolve()
    data_yaml = write_dataset(out / "data", SynthSpec(images=images, imgsz=imgsz, seed=seed))
    rows = []
    for lambda_bg in lambdas:
        start = time.time()
        summary = train(demo_config(data_yaml, out, lambda_bg, epochs, imgsz, batch, seed))
        rows.append({**summary, "lambda_bg": lambda_bg, "minutes": (time.time() - start) / 60})
    md, _ = write_tables(rows, out, COLUMNS, stem="results")
    table = md.read_text().rstrip()
    print(f"\nsemiyolo demo: {images} synthetic images at {imgsz} px, YOLOv8n from scratch, {epochs} epochs\n")
    print(table)
    print(f"\nRuns, results.md and results.csv are in {out}")
    return rows
