"""Semi-supervised state across DDP ranks, on CPU: torch.distributed with gloo and two processes."""

import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from semiyolo.integrations.ultralytics.distributed import broadcast_filters, broadcast_module, sum_counts
from semiyolo.pseudo import build_filters


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, results) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        chain = build_filters([{"name": "dsat"}, {"name": "cap"}], num_classes=2, has_dfl=False)
        chain.filters[0].thresholds = torch.tensor([0.3, 0.4]) + rank  # ranks disagree
        chain.filters[1].kept, chain.filters[1].dropped = 10 * (rank + 1), rank
        counts = sum_counts(chain)
        broadcast_filters(chain)
        teacher = torch.nn.Linear(3, 2)
        torch.nn.init.constant_(teacher.weight, float(rank))
        broadcast_module(teacher)
        results[rank] = (chain.filters[0].thresholds.tolist(), counts, teacher.weight.sum().item())
    finally:
        dist.destroy_process_group()


def test_two_ranks_share_thresholds_and_teacher_and_sum_counts():
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(_worker, args=(2, _free_port(), results), nprocs=2, join=True)
        results = dict(results)
    for rank in (0, 1):
        thresholds, counts, weight_sum = results[rank]
        assert thresholds == [0.30000001192092896, 0.4000000059604645]  # rank 0's
        assert weight_sum == 0.0  # rank 0's teacher
        assert counts["1_cap/kept"] == 30 and counts["1_cap/dropped"] == 1  # 10 + 20, 0 + 1


def test_without_distributed_everything_is_a_no_op():
    chain = build_filters([{"name": "score"}], num_classes=1, has_dfl=False)
    broadcast_filters(chain)
    broadcast_module(torch.nn.Linear(1, 1))
    assert sum_counts(chain) == chain.stats()
