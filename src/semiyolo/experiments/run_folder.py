"""What a finished run's folder tells: the training arguments it used (``args.yaml``), its history
(``results.csv``) and its resolved optimizer (its checkpoints)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import torch
import yaml

from ..runfiles import last_weights, train_state

ARGS_FILE = "args.yaml"  # Ultralytics' training arguments of a run
HISTORY_FILE = "results.csv"  # Ultralytics' one row per epoch


def resolved_optimizer(run_dir: Path) -> dict[str, Any]:
    """The optimizer a finished run used, as Ultralytics training arguments (``optimizer: auto`` resolved: the
    class, the peak ``lr0`` and the warm-up's bias learning rate as Ultralytics wrote them back), the first
    momentum read from its final state, and the optimizer steps it took."""
    state = torch.load(train_state(run_dir), map_location="cpu", weights_only=False)
    args = torch.load(last_weights(run_dir), map_location="cpu", weights_only=False)["train_args"]
    group = state["optimizer"]["param_groups"][0]
    momentum = group["betas"][0] if "betas" in group else group.get("momentum", args["momentum"])
    return {
        "optimizer": args["optimizer"],
        "lr0": float(args["lr0"]),
        "momentum": float(momentum),
        "lrf": float(args["lrf"]),
        "warmup_bias_lr": float(args["warmup_bias_lr"]),
        "steps": int(state.get("optimizer_steps", 0)),
    }


def run_args(run_dir: Path) -> dict[str, Any]:
    """The training arguments a finished run used (its ``args.yaml``)."""
    return yaml.safe_load((run_dir / ARGS_FILE).read_text()) or {}


def history(run_dir: Path) -> list[dict[str, str]]:
    """The run's rows of ``results.csv``, one per finished epoch, keys and values stripped; none before its first."""
    path = run_dir / HISTORY_FILE
    if not path.is_file():
        return []
    with open(path) as f:
        return [{k.strip(): v.strip() for k, v in row.items()} for row in csv.DictReader(f)]
