"""Exact resume for :class:`~.trainer.BackgroundPenaltyTrainer` (and so the semi-supervised trainer).

Ultralytics' ``last.pt`` continues a run approximately: the model restarts from the EMA weights in half
precision, the optimizer state comes back in half precision, and every random stream (Python, NumPy and torch
generators, the training order, the mosaic buffer of recently loaded images) restarts from the seed. After
each epoch, ``train_state.pt`` (written atomically next to ``last.pt``) keeps what is missing; ``resume=True``
puts it back: weights, EMA and optimizer in full precision, the loader's pass count, the mosaic buffer, the
global generators, and a gradient accumulation that straddles the epoch boundary. A resumed run then takes
the same steps as one that never stopped, on CPU, in one process, with ``workers=0`` (loader workers keep
their own generators and buffers, which no checkpoint can reach).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import RandomSampler
from ultralytics.data.build import InfiniteDataLoader
from ultralytics.utils import LOGGER
from ultralytics.utils.torch_utils import unwrap_model

from ...reproducibility import PassShuffler, rng_state, set_rng_state

TRAIN_STATE = "train_state.pt"


def resumable_loader(loader: InfiniteDataLoader, seed: int) -> InfiniteDataLoader:
    """``loader`` rebuilt around a :class:`PassShuffler` (a shuffled single-process loader; others unchanged)."""
    if not isinstance(loader.sampler, RandomSampler):
        return loader
    return InfiniteDataLoader(
        dataset=loader.dataset,
        batch_size=loader.batch_size,
        sampler=PassShuffler(len(loader.dataset), seed),
        num_workers=loader.num_workers,
        prefetch_factor=loader.prefetch_factor,
        pin_memory=loader.pin_memory,
        collate_fn=loader.collate_fn,
        worker_init_fn=loader.worker_init_fn,
        generator=loader.generator,
        drop_last=loader.drop_last,
    )


def capture(trainer) -> dict[str, Any]:
    """Everything ``last.pt`` lacks for an exact resume, at the end of epoch ``trainer.epoch``."""
    params = list(unwrap_model(trainer.model).parameters())
    pending = trainer.last_opt_ni != trainer.batch_ni  # gradients accumulated since the last step carry over
    sampler = trainer.train_loader.sampler
    return {
        "epoch": trainer.epoch,
        "model": unwrap_model(trainer.model).state_dict(),
        "ema": trainer.ema.ema.state_dict() if trainer.ema else None,
        "ema_updates": trainer.ema.updates if trainer.ema else 0,
        "optimizer": trainer.optimizer.state_dict(),
        "scaler": trainer.scaler.state_dict(),
        "sampler": sampler.state_dict() if isinstance(sampler, PassShuffler) else None,
        "mosaic_buffer": list(getattr(trainer.train_loader.dataset, "buffer", [])),
        "rng": rng_state(),
        "last_opt_ni": trainer.last_opt_ni,
        "grads": [None if p.grad is None else p.grad.detach().clone() for p in params] if pending else None,
        "skipped_steps": trainer.skipped_steps,
        "optimizer_steps": trainer.optimizer_steps,
        "images_seen": trainer.images_seen,
    }


def write_state(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` (with an ``epoch``) to ``path`` atomically, keeping the previous one as ``<name>.prev``.

    Called before ``last.pt`` is replaced, so that whenever a run is killed one of the two generations belongs
    to the epoch of ``last.pt``."""
    prev = path.with_name(path.name + ".prev")
    tmp = path.with_name(path.name + ".part")
    torch.save(state, tmp)
    if path.exists():
        os.replace(path, prev)
    os.replace(tmp, path)


def read_state(path: Path, epoch: int, device: torch.device | str = "cpu") -> dict[str, Any] | None:
    """The generation of ``path`` saved at ``epoch`` (0-based), or ``None`` (with a warning)."""
    found = []
    for candidate in (path, path.with_name(path.name + ".prev")):
        if candidate.is_file():
            state = torch.load(candidate, map_location=device, weights_only=False)
            if state["epoch"] == epoch:
                return state
            found.append(state["epoch"] + 1)
    LOGGER.warning(
        f"{path}: no state from epoch {epoch + 1} (found: {found or 'none'}); the resume from last.pt is not exact"
    )
    return None


def restore_setup(trainer, state: dict[str, Any]) -> None:
    """After Ultralytics' resume: full-precision weights, EMA and optimizer; data order; mosaic buffer."""
    unwrap_model(trainer.model).load_state_dict(state["model"])
    if trainer.ema and state["ema"] is not None:
        trainer.ema.ema.load_state_dict(state["ema"])
        trainer.ema.updates = state["ema_updates"]
    trainer.optimizer.load_state_dict(state["optimizer"])
    trainer.scaler.load_state_dict(state["scaler"])
    if state["sampler"] is not None and isinstance(trainer.train_loader.sampler, PassShuffler):
        trainer.train_loader.sampler.load_state_dict(state["sampler"])
    _restore_mosaic_buffer(trainer.train_loader.dataset, state["mosaic_buffer"])
    trainer.skipped_steps = state["skipped_steps"]
    trainer.optimizer_steps = state.get("optimizer_steps", 0)
    trainer.images_seen = state.get("images_seen", 0)


def restore_epoch_start(trainer, state: dict[str, Any]) -> None:
    """At the first resumed epoch's start, after all set-up draws: the generators, the pending gradients, and
    the last optimizer step (so that accumulation counts from it, not from Ultralytics' fresh ``-1``)."""
    set_rng_state(state["rng"])
    if state["grads"] is not None:
        for p, g in zip(unwrap_model(trainer.model).parameters(), state["grads"], strict=True):
            p.grad = None if g is None else g.to(p.device).clone()
    trainer.resumed_last_opt_ni = trainer.last_opt_ni = state["last_opt_ni"]


def _restore_mosaic_buffer(dataset, buffer: list[int]) -> None:
    """Reload the buffer's images in order, so that mosaic partners are drawn from the same list."""
    if not hasattr(dataset, "buffer") or getattr(dataset, "cache", None) == "ram":
        return
    for i in dataset.buffer:
        dataset.ims[i] = dataset.im_hw0[i] = dataset.im_hw[i] = None
    dataset.buffer.clear()
    for i in buffer:
        dataset.load_image(i)
    dataset.buffer[:] = buffer


def drop_logged_epochs_after(results_csv: Path, epochs: int) -> None:
    """Keep the first ``epochs`` epochs' rows of ``results.csv``: a run killed after logging an epoch but before
    its checkpoint trains that epoch again, and Ultralytics would append a second row for it."""
    if not results_csv.is_file():
        return
    lines = results_csv.read_text().splitlines(keepends=True)
    kept = lines[:1] + [line for line in lines[1:] if int(float(line.split(",", 1)[0])) <= epochs]
    if len(kept) != len(lines):
        tmp = results_csv.with_name(results_csv.name + ".part")
        tmp.write_text("".join(kept))
        os.replace(tmp, results_csv)
