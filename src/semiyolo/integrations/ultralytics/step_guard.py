"""The optimizer step, guarded: a configurable gradient clip, non-finite steps skipped and counted, a budget of
optimizer steps; and the run's step counters, saved for an exact resume."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from ultralytics.utils import LOGGER

from ...errors import TrainingDiverged

COUNTERS = ("optimizer_steps", "skipped_steps", "images_seen", "update_norm_sum")


class GuardedSteps:
    """Ultralytics' step (unscale, clip, step, update the scaler, zero the gradients) with ``max_grad_norm`` in
    place of its fixed 10, and a guard: a step whose loss or gradients are not finite is skipped, counted and
    logged with its files; after ``patience`` such steps in a row training stops with :class:`TrainingDiverged`.

    Attributes:
        optimizer_steps: steps taken (an AMP step the scaler skipped for overflow is not counted).
        skipped_steps: non-finite steps skipped. images_seen: images through the student's forward.
        update_norm_sum: the sum over the steps taken of the update's L2 norm over every trained parameter,
            ``||theta_after - theta_before||_2`` (:attr:`mean_update_norm`: how large a step the run takes).
    """

    def __init__(self, max_grad_norm: float = 10.0, patience: int = 10, max_steps: int | None = None) -> None:
        self.max_grad_norm, self.patience, self.max_steps = max_grad_norm, patience, max_steps
        self.optimizer_steps = self.skipped_steps = self.images_seen = self.consecutive_skips = 0
        self._update_norms: Tensor | float = 0.0  # a tensor on the model's device once a step is taken: no sync

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
        trained = [p for p in model.parameters() if p.requires_grad]
        before = [p.detach().clone() for p in trained]
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad()
        if scale is None or scaler.get_scale() >= scale:  # AMP lowers the scale when it skips the step
            self.optimizer_steps += 1
            self._update_norms = self._update_norms + update_norm(trained, before)
        return True

    @property
    def update_norm_sum(self) -> float:
        return float(self._update_norms)

    @update_norm_sum.setter
    def update_norm_sum(self, value: float) -> None:
        self._update_norms = float(value)

    @property
    def mean_update_norm(self) -> float:
        """The mean L2 norm of the updates taken so far (0 before the first)."""
        return self.update_norm_sum / self.optimizer_steps if self.optimizer_steps else 0.0

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
            kind = type(getattr(self, name))  # int counters, the float sum
            setattr(self, name, kind(state.get(name, 0)))


def update_norm(params: Sequence[Tensor], before: Sequence[Tensor]) -> Tensor:
    """``||params - before||_2`` over every tensor together (the L2 norm of one optimizer update), a 0-d tensor
    on the parameters' device (reading it would wait for the device)."""
    if not params:
        return torch.zeros(())
    pairs = zip(params, before, strict=True)
    norms = torch.stack([torch.linalg.vector_norm(p.detach().float() - b.float()) for p, b in pairs])
    return torch.linalg.vector_norm(norms)
