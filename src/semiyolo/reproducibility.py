"""What a run needs to continue exactly where it stopped: random-generator states and a resumable data order.

Torch and NumPy only. ``PassShuffler`` draws each pass's order from ``(seed, pass index)`` alone, so a resumed
run that sets ``passes`` sees the orders an uninterrupted run would have seen, whenever its iterator is
(re)built; ``rng_state`` / ``set_rng_state`` carry Python's, NumPy's and torch's global generators across.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import Sampler

_GOLDEN = 0x9E3779B97F4A7C15  # spreads consecutive (seed, pass) pairs over the seed space


def stream_generator(seed: int, index: int) -> torch.Generator:
    """A CPU generator for draw ``index`` (a pass, a rank, a count of images seen) of a stream seeded ``seed``:
    the same pair gives the same draws in a resumed run as in one that never stopped."""
    return torch.Generator().manual_seed((seed * _GOLDEN + index) % (1 << 63))


def pass_order(length: int, seed: int, pass_index: int) -> list[int]:
    """The order of ``range(length)`` for pass ``pass_index`` of a stream seeded ``seed``."""
    return torch.randperm(length, generator=stream_generator(seed, pass_index)).tolist()


class PassShuffler(Sampler[int]):
    """A shuffling sampler whose ``k``-th pass is ``pass_order(length, seed, k)``.

    ``passes`` counts the passes started; set it (or :meth:`load_state_dict`) to continue a stream.
    """

    def __init__(self, length: int, seed: int) -> None:
        if length < 0:
            raise ValueError(f"length must be >= 0, got {length}")
        self.length, self.seed, self.passes = length, int(seed), 0

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[int]:
        order = pass_order(self.length, self.seed, self.passes)  # drawn now, not lazily: the pass is fixed here
        self.passes += 1
        return iter(order)

    def state_dict(self) -> dict[str, int]:
        return {"passes": self.passes}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.passes = int(state["passes"])


def rng_state() -> dict[str, Any]:
    """The states of Python's, NumPy's and torch's global generators (and CUDA's, when present)."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Put back what :func:`rng_state` returned."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
