"""The schedules of the protocol's runs, as Ultralytics training arguments: epochs that hold a budget of optimizer
steps, the ceiling's schedule in as many batches as the converged run's, and a continuation's learning rate and
augmentation."""

from __future__ import annotations

import math
from typing import Any

from ..integrations.ultralytics import training_default


def epochs_for(steps: int, images: int, batch: int, nbs: int) -> int:
    """Epochs that hold at least ``steps`` optimizer steps: Ultralytics steps every ``max(round(nbs / batch), 1)``
    batches, counted across epochs, and an epoch has ``ceil(images / batch)`` batches."""
    accumulate = max(round(nbs / batch), 1)
    return max(1, math.ceil(steps * accumulate / math.ceil(images / batch)))


def ceiling_train_args(optim: dict[str, Any], converged_train: dict[str, Any], scale: float) -> dict[str, Any]:
    """The fully labeled run's schedule: the converged run's, in as many batches (``scale`` = the converged run's
    images per epoch over the ceiling's), with its resolved optimizer, so that warm-up, decay and optimizer steps
    match."""
    epochs = int(converged_train.get("epochs", training_default("epochs")))
    warmup = float(converged_train.get("warmup_epochs", training_default("warmup_epochs")))
    close_mosaic = int(converged_train.get("close_mosaic", training_default("close_mosaic")))
    return {
        "optimizer": optim["optimizer"],
        "lr0": optim["lr0"],
        "momentum": optim["momentum"],
        "warmup_bias_lr": optim["warmup_bias_lr"],
        "epochs": max(1, round(epochs * scale)),
        "warmup_epochs": warmup * scale,
        "close_mosaic": round(close_mosaic * scale),
    }


def continuation_train_args(
    optim: dict[str, Any], continue_lr: float, epochs: int, start_train: dict[str, Any]
) -> dict[str, Any]:
    """Training arguments of a continuation of ``epochs`` epochs: the converged run's optimizer, starting at
    ``continue_lr`` of its peak, decaying linearly to its final learning rate, no warm-up; and the augmentation
    the converged run ended with: a run that closed mosaic for its last epochs continues without it throughout
    (Ultralytics closes it at epoch ``epochs - close_mosaic``, here 0)."""
    start = optim["lr0"] * continue_lr
    final = optim["lr0"] * optim["lrf"]
    closed = int(start_train.get("close_mosaic", training_default("close_mosaic"))) > 0
    return {
        "optimizer": optim["optimizer"],
        "lr0": start,
        "lrf": min(1.0, final / start),
        "momentum": optim["momentum"],
        "warmup_epochs": 0,
        "cos_lr": False,
        "epochs": epochs,
        "close_mosaic": epochs if closed else 0,
    }
