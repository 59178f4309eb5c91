"""The teacher's weights: an exponential moving average of the student's (Mean Teacher, Tarvainen & Valpola,
NeurIPS 2017), with an optional warm-up ramp of the decay (as in Ultralytics' ``ModelEMA`` and timm); the
decay's half-life rule is docs/spec.md §5.2."""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import nn


class TeacherEMA:
    """``teacher <- d * teacher + (1 - d) * student`` over every floating-point parameter and buffer.

    ``d = decay`` for every update, or with ``tau > 0`` ``d = decay * (1 - exp(-updates / tau))`` (small at first,
    so a teacher built from an untrained student follows it quickly). Integer buffers (BatchNorm's counters) are
    copied from the teacher's construction and never averaged.

    Args:
        student: the (de-paralleled) model the teacher follows; deep-copied, put in eval mode, no gradients.
        decay: the decay after warm-up, in [0, 1).
        tau: the warm-up time constant in updates; 0 for none (a teacher built from trained weights keeps them).
        updates: updates already taken (a continued EMA).
    """

    def __init__(self, student: nn.Module, decay: float = 0.999, tau: float = 0.0, updates: int = 0) -> None:
        if not 0 <= decay < 1:
            raise ValueError(f"decay must be in [0, 1), got {decay!r}")
        if not tau >= 0:
            raise ValueError(f"tau must be >= 0, got {tau!r}")
        self.model = copy.deepcopy(student).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.decay, self.tau, self.updates = float(decay), float(tau), int(updates)

    def current_decay(self) -> float:
        """The decay the next update will use."""
        if not self.tau:
            return self.decay
        return self.decay * (1 - math.exp(-(self.updates + 1) / self.tau))

    @torch.no_grad()
    def update(self, student: nn.Module) -> None:
        """One EMA step towards ``student`` (same architecture, de-paralleled)."""
        d = self.current_decay()
        self.updates += 1
        student_state = student.state_dict()
        ours = [(v, student_state[k]) for k, v in self.model.state_dict().items() if v.dtype.is_floating_point]
        teacher = [v for v, _ in ours]
        followed = [s.detach().to(v.dtype) for v, s in ours]
        if teacher:  # t + (1 - d)(s - t) = d t + (1 - d) s, one fused pass
            torch._foreach_lerp_(teacher, followed, 1 - d)

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.updates = int(state["updates"])
