"""Keeping the semi-supervised state identical on every DDP rank (no-ops without torch.distributed)."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

from ...pseudo import FilterChain


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def broadcast_module(module: nn.Module, src: int = 0) -> None:
    """Copy ``src``'s parameters and buffers (e.g. the teacher's) to every rank."""
    if not is_distributed():
        return
    with torch.no_grad():
        for tensor in module.state_dict().values():
            dist.broadcast(tensor, src)


def broadcast_filters(chain: FilterChain, src: int = 0) -> None:
    """Give every rank ``src``'s filter state: DSAT's thresholds (estimated on rank ``src``) and counts."""
    if not is_distributed():
        return
    payload = [chain.state_dict()]
    dist.broadcast_object_list(payload, src)
    chain.load_state_dict(payload[0])


def broadcast_object(value, src: int = 0):
    """``src``'s ``value`` on every rank (any picklable object: the trust estimate's counts); ``value`` itself
    without DDP. A collective: every rank must call it."""
    if not is_distributed():
        return value
    payload = [value]
    dist.broadcast_object_list(payload, src)
    return payload[0]


def sum_counts(chain: FilterChain, device: torch.device | str = "cpu") -> dict[str, float]:
    """Kept / dropped per filter summed over ranks. A collective: every rank must call it (NCCL needs
    ``device`` to be the rank's GPU)."""
    stats = chain.stats()
    if not is_distributed():
        return stats
    values = torch.tensor(list(stats.values()), dtype=torch.float64, device=device)
    dist.all_reduce(values)
    return dict(zip(stats, values.tolist(), strict=True))
