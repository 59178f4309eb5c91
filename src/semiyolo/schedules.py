"""Per-epoch weight schedules (torch-free): the background penalty's ``lambda_bg`` after burn-in (docs/spec.md §3.4).

Epochs are 0-based, like Ultralytics' ``trainer.epoch``. During ``burn_in`` epochs the weight is 0; the
ramp then runs over ``warmup`` epochs, reaching the full value on epoch ``burn_in + warmup - 1``:

- ``constant``: the full value from epoch ``burn_in`` on;
- ``linear``:   ``value * (k + 1) / warmup`` on the k-th epoch after burn-in (the default);
- ``step``:     0 until the warm-up is over, then the full value (on epoch ``burn_in + warmup``);
- ``cosine``:   ``value * (1 - cos(pi * (k + 1) / warmup)) / 2``, a smooth ramp to the full value.
"""

from __future__ import annotations

import math

SCHEDULES = ("constant", "linear", "step", "cosine")


def ramp_weight(epoch: int, value: float, burn_in: int = 0, warmup: int = 0, kind: str = "linear") -> float:
    """The weight on (0-based) ``epoch``.

    Raises:
        ValueError: for an unknown ``kind``, a negative ``value``, ``burn_in`` or ``warmup``.
    """
    if kind not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {kind!r}")
    if value < 0 or burn_in < 0 or warmup < 0:
        raise ValueError(f"value, burn_in and warmup must be >= 0, got {value}, {burn_in}, {warmup}")
    after = epoch - burn_in  # epochs since burn-in ended
    if after < 0:
        return 0.0
    if kind == "constant" or warmup == 0:
        return float(value)
    if kind == "step":
        return float(value) if after >= warmup else 0.0
    progress = min(1.0, (after + 1) / warmup)
    if kind == "linear":
        return value * progress
    return value * (1 - math.cos(math.pi * progress)) / 2
