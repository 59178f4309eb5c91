"""The optimizer step, guarded: a configurable gradient clip, non-finite steps skipped and counted, a budget of
optimizer steps; and the run's step counters, saved for an exact resume."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from ultralytics.utils import LOGGER

from ...errors import TrainingDiverged

COUNTERS = ("optimizer_steps", "skipped_steps", "images_seen")


class GuardedSteps:
    """Ultralytics' step (unscale, clip, step, update the scaler, zero the gradients) with ``max_grad_norm`` in
    place of its fixed 10, and a guard: a step whose loss or gradients are not finite is skipped, counted and
    logged with its files; after ``patience`` such steps in a row training stops with :class:`TrainingDiverged`.

    Attributes:
        optimizer_steps: steps taken (an AMP step the scaler skipped for overflow is not counted).
        skipped_steps: non-finite steps skipped. images_seen: images through the student's forward.
    """

    def __init__(self, max_grad_norm: float = 10.0, patience: int = 10, max_steps: int | None = None) -> None:
        self.max_grad_norm, self.patience, self.max_steps = max_grad_norm, patience, max_steps
        self.optimizer_steps = self.skipped_steps = self.images_seen = self.consecutive_skips = 0

    def step(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        scaler: torch.amp.GradScaler,
        loss: Tensor | None,
        files: Sequence[str] = (),
    ) -> bool:
        """One guarded step; whether it was taken."""
        if not self.is_finite(model, scaler, loss):
            self.skip(optimizer, files)
            return False
        self.consecutive_skips = 0
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=self.max_grad_norm)
        scale = scaler.get_scale() if scaler.is_enabled() else None
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad()
        if scale is None or scaler.get_scale() >= scale:  # AMP lowers the scale when it skips the step
            self.optimizer_steps += 1
        return True

    @property
    def budget_reached(self) -> bool:
        return bool(self.max_steps) and self.optimizer_steps >= self.max_steps

    @staticmethod
    def is_finite(model: nn.Module, scaler: torch.amp.GradScaler, loss: Tensor | None) -> bool:
        if loss is not None and not torch.isfinite(loss).all():
            return False
        if scaler.is_enabled():  # with AMP, overflowing gradients are the GradScaler's to handle
            return True
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        return not grads or bool(torch.isfinite(torch.stack([g.detach().float().abs().sum() for g in grads])).all())

    def skip(self, optimizer: torch.optim.Optimizer, files: Sequence[str]) -> None:
        optimizer.zero_grad()
        self.skipped_steps += 1
        self.consecutive_skips += 1
        listed = ", ".join(map(str, files)) or "(unknown)"
        LOGGER.warning(
            f"non-finite loss or gradient: step skipped ({self.consecutive_skips} in a row); batch: {listed}"
        )
        if self.consecutive_skips >= self.patience:
            raise TrainingDiverged(
                f"{self.consecutive_skips} consecutive steps had a non-finite loss or gradient; stopping. Last batch: "
                f"{listed}. Try a lower lr0, semi.logit_clamp (e.g. 10), or check these images and labels."
            )

    def state_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in COUNTERS}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in COUNTERS:
            setattr(self, name, int(state.get(name, 0)))
