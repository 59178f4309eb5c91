"""``semi.init_state``: a new Ultralytics run that continues another run's training.

What carries over from the other run's ``weights/train_state.pt`` (written at its last epoch):

- the weights: its EMA weights in full precision (the weights it validated and saved) become the student's and
  the EMA's; the EMA keeps its update count, so its decay goes on from where it was instead of ramping again;
- the optimizer's per-parameter state (momentum buffers, Adam moments and step counts), through
  :func:`semiyolo.continuation.load_optimizer_moments`, which keeps this run's learning rates; with AMP, the
  gradient scaler's scale;
- an online run's teacher is built afterwards from the loaded student, so it starts equal to it.

What does not: the learning-rate schedule (this run's own ``lr0``, ``lrf`` and ``warmup_epochs``; the ablation
sets them so that nothing warms up again), the random streams and data order (this run's seed), Ultralytics'
best fitness, and the epoch count.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from ultralytics.utils import LOGGER
from ultralytics.utils.torch_utils import unwrap_model

from ...continuation import load_optimizer_moments
from ...errors import ConfigError

REQUIRED = ("model", "ema", "ema_updates", "optimizer")


def read_continuation_state(path: str | Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """A run's ``train_state.pt``; :class:`ConfigError` naming ``semi.init_state`` if it is missing or not one."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"semi.init_state: {path} not found (expected a run's weights/train_state.pt; a run that finished keeps it "
            "only when trained with semi.keep_state: true)"
        )
    try:
        state = torch.load(path, map_location=device, weights_only=False)
    except Exception as err:  # torch.load raises many kinds on a file that is not a checkpoint
        raise ConfigError(f"semi.init_state: {path} cannot be read ({type(err).__name__}: {err})") from None
    missing = [k for k in REQUIRED if not isinstance(state, dict) or k not in state]
    if missing:
        raise ConfigError(f"semi.init_state: {path} is not a semiyolo train_state.pt (missing {', '.join(missing)})")
    return state


def continue_from(trainer, path: str | Path) -> None:
    """After Ultralytics' setup: load weights, EMA and optimizer moments from ``path`` into ``trainer``."""
    state = read_continuation_state(path, trainer.device)
    weights = state["ema"] if state["ema"] is not None else state["model"]
    unwrap_model(trainer.model).load_state_dict(weights)
    if trainer.ema is not None:
        trainer.ema.ema.load_state_dict(weights)
        trainer.ema.updates = state["ema_updates"]
    if trainer.scaler.is_enabled() and state.get("scaler"):  # AMP: the loss scale it had settled on
        trainer.scaler.load_state_dict(state["scaler"])
    try:
        load_optimizer_moments(trainer.optimizer, state["optimizer"])
    except ValueError as err:
        raise ConfigError(f"semi.init_state: {path}: {err} (set train.optimizer as in that run)") from None
    LOGGER.info(f"Continuing from {path}: EMA weights, EMA updates {state['ema_updates']}, optimizer moments")
