"""Continuing a trained model in a new run: the optimizer's per-parameter state without its hyperparameters.

Torch only. A continuation (a new run that starts where another ended, with its own learning-rate schedule)
keeps the momentum buffers or Adam moments and step counts, which describe the loss surface at the weights it
starts from, but not the learning rates, which belong to the old schedule.
"""

from __future__ import annotations

from typing import Any

import torch

_SCHEDULED = {"lr", "initial_lr"}  # set by the learning-rate schedule, not part of the optimizer's identity


def load_optimizer_moments(optimizer: torch.optim.Optimizer, saved: dict[str, Any]) -> None:
    """Load the per-parameter state of ``saved`` (another optimizer's ``state_dict()``) into ``optimizer``,
    keeping ``optimizer``'s parameter-group settings (learning rate, betas or momentum, weight decay).

    Both must be the same optimizer class over the same parameters in the same groups (the same model built
    the same way); otherwise ``ValueError`` says what differs. ``optimizer``'s state is replaced whole.
    """
    current = optimizer.state_dict()
    groups, saved_groups = current["param_groups"], saved["param_groups"]
    sizes, saved_sizes = [len(g["params"]) for g in groups], [len(g["params"]) for g in saved_groups]
    if sizes != saved_sizes:
        raise ValueError(f"parameter groups differ: {saved_sizes} parameters saved, {sizes} in the optimizer")
    for group, saved_group in zip(groups, saved_groups, strict=True):
        keys, saved_keys = set(group) - _SCHEDULED, set(saved_group) - _SCHEDULED
        if keys != saved_keys:
            raise ValueError(
                f"optimizer settings differ ({sorted(keys ^ saved_keys)}): a {type(optimizer).__name__} cannot take "
                "the state of another optimizer class"
            )
    params = [p for g in optimizer.param_groups for p in g["params"]]  # state_dict numbers them in this order
    for i, state in saved["state"].items():
        for name, value in state.items():
            if torch.is_tensor(value) and value.ndim and value.shape != params[i].shape:
                raise ValueError(
                    f"state {name!r} of parameter {i} has shape {tuple(value.shape)}, the parameter "
                    f"{tuple(params[i].shape)}"
                )
    optimizer.load_state_dict({"state": saved["state"], "param_groups": groups})
