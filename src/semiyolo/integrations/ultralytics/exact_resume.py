"""Exact resume: a resumed run takes the same steps as one that never stopped.

Ultralytics' ``last.pt`` continues a run approximately: the model restarts from the EMA weights in half
precision, the optimizer state comes back in half precision, and every random stream (Python, NumPy and torch
generators, the training order, the mosaic buffer of recently loaded images) restarts from the seed. After
each epoch, ``train_state.pt`` (written atomically next to ``last.pt``) keeps what is missing; ``resume=True``
puts it back: weights, EMA and optimizer in full precision, the loader's pass count, the mosaic buffer, the
global generators, and a gradient accumulation that straddles the epoch boundary. Exact on CPU, in one
process, with ``workers=0`` (loader workers keep their own generators and buffers, which no checkpoint reaches).

What this relies on in Ultralytics' loop (``BaseTrainer._do_train``, 8.4), all in this one place:

1. Batch ``i`` of epoch ``e`` has the global index ``ni = i + nb * e``; ``on_train_batch_start`` runs before the
   warm-up sets that batch's ``accumulate``, and ``preprocess_batch`` after it.
2. The optimizer steps when ``ni - last_opt_step >= accumulate``, with ``last_opt_step`` a local reset to -1
   at the start of training. A resumed run cannot set that local, so until its first step :class:`ExactResume`
   raises ``accumulate`` by the saved ``last_opt_step + 1`` (after the warm-up has set it, in
   ``preprocess_batch``) and puts Ultralytics' value back at the next batch's start and at the step.
3. The shuffled single-process training loader is a ``RandomSampler``-driven ``InfiniteDataLoader``; it is
   rebuilt around a :class:`~semiyolo.reproducibility.PassShuffler`, whose pass count is saved.
4. Mosaic datasets keep recently loaded images in ``dataset.buffer`` (partners are drawn from it).
5. Ultralytics restores ``start_epoch``, the scheduler and (half-precision) weights before
   ``on_pretrain_routine_end``; ``on_train_epoch_start`` is the first thing in each epoch, after every set-up
   draw and before the epoch's own (the scheduler step, the loader's order), so the generators restored there
   continue where the saved run's were.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import RandomSampler
from ultralytics.data.build import InfiniteDataLoader
from ultralytics.utils import LOGGER, RANK
from ultralytics.utils.torch_utils import unwrap_model

from ...reproducibility import PassShuffler, rng_state, set_rng_state
from ...runfiles import SEMI_STATE, TRAIN_STATE


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


class ExactResume:
    """The trainer's exact-resume component: it counts batches and steps, captures what ``last.pt`` lacks, and
    puts it back. The trainer calls it at the points named in the module docstring.

    Attributes:
        batch_ni: Ultralytics' global index of the current batch.
        last_opt_ni: the global index of the batch at which the optimizer last stepped.
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.batch_ni = self.last_opt_ni = -1
        self.pending: dict[str, Any] | None = None  # a state read at set-up, restored at the first epoch's start
        self.resumed_last_opt_ni: int | None = None  # until the resumed run's first step
        self._accumulate: tuple[int, int] | None = None  # (Ultralytics' value, the shifted value) while resuming

    def loader(self, loader, seed: int):
        """The training loader with a resumable order (:func:`resumable_loader`)."""
        return resumable_loader(loader, seed)

    def after_setup(self, trainer) -> None:
        """After Ultralytics' own resume: trim results.csv, read ``train_state.pt`` and restore the set-up part."""
        if not (trainer.resume and trainer.start_epoch > 0):
            return
        if RANK in {-1, 0}:
            drop_logged_epochs_after(trainer.csv, trainer.start_epoch)
        if self.enabled:
            self.pending = read_state(trainer.wdir / TRAIN_STATE, trainer.start_epoch - 1, trainer.device)
            if self.pending is not None:
                restore_setup(trainer, self.pending)

    def epoch_start(self, trainer) -> None:
        self.batch_ni = len(trainer.train_loader) * trainer.epoch - 1
        if self.pending is not None:
            restore_epoch_start(trainer, self.pending)
            self.resumed_last_opt_ni = self.last_opt_ni = self.pending["last_opt_ni"]
            self.pending = None
            LOGGER.info(f"Resumed exactly: full-precision weights, optimizer and random streams from {TRAIN_STATE}")

    def batch_start(self, trainer) -> None:
        self.batch_ni += 1
        if self._accumulate is not None:  # undo the shift: Ultralytics' warm-up may set its own value
            trainer.accumulate = self._accumulate[0]

    def before_forward(self, trainer) -> None:
        """In ``preprocess_batch``, after the warm-up: until the resumed run's first step, shift ``accumulate`` so
        that Ultralytics steps where the unbroken run would have (assumption 2)."""
        if self.resumed_last_opt_ni is not None:
            self._accumulate = (trainer.accumulate, trainer.accumulate + self.resumed_last_opt_ni + 1)
            trainer.accumulate = self._accumulate[1]

    def optimizer_step(self, trainer) -> None:
        """At every optimizer step (taken or skipped): accumulation counts as usual again."""
        self.last_opt_ni = self.batch_ni
        if self._accumulate is not None:
            trainer.accumulate, self._accumulate, self.resumed_last_opt_ni = self._accumulate[0], None, None

    def capture(self, trainer) -> dict[str, Any]:
        """Everything ``last.pt`` lacks for an exact resume, at the end of epoch ``trainer.epoch``."""
        return capture(trainer, self.last_opt_ni, self.batch_ni)


def capture(trainer, last_opt_ni: int, batch_ni: int) -> dict[str, Any]:
    """The state of ``trainer`` at an epoch's end, with the step counters (``trainer.steps``) and, when the last
    optimizer step came before the last batch, the gradients accumulated since."""
    params = list(unwrap_model(trainer.model).parameters())
    pending = last_opt_ni != batch_ni  # gradients accumulated since the last step carry over
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
        "labeled_mosaic_cache": trainer.labeled_mosaic_cache.state_dict(),
        "rng": rng_state(),
        "last_opt_ni": last_opt_ni,
        "semi": trainer.semi.model_dump(),  # the run's settings, which a resume must not change
        "grads": [None if p.grad is None else p.grad.detach().clone() for p in params] if pending else None,
        **trainer.steps.state_dict(),
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


def saved_semi_settings(weights: Path) -> dict[str, Any] | None:
    """The ``semi`` settings saved with the run's state in the folder ``weights`` (``train_state.pt``, or the
    online trainer's ``semi_state.pt``), or ``None`` where none was saved (``semi.exact_resume: false`` in a
    supervised run, or a run made before the settings were saved)."""
    for name in (TRAIN_STATE, SEMI_STATE):
        for path in (weights / name, weights / f"{name}.prev"):
            if path.is_file():
                semi = torch.load(path, map_location="cpu", weights_only=False, mmap=True).get("semi")  # no tensor read
                if semi is not None:
                    return semi
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
    trainer.steps.load_state_dict(state)


def restore_epoch_start(trainer, state: dict[str, Any]) -> None:
    """At the first resumed epoch's start, after all set-up draws: the generators and the pending gradients."""
    set_rng_state(state["rng"])
    if "labeled_mosaic_cache" in state:  # absent from states saved before semi.labeled_mosaic existed
        trainer.labeled_mosaic_cache.load_state_dict(state["labeled_mosaic_cache"])
    if state["grads"] is not None:
        for p, g in zip(unwrap_model(trainer.model).parameters(), state["grads"], strict=True):
            p.grad = None if g is None else g.to(p.device).clone()


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


def remove_resume_states(weights: Path, keep: bool) -> list[Path]:
    """At a run's normal end, unless ``keep`` (``semi.keep_state``): the exact-resume state files in the folder
    ``weights``, both generations, which a finished run no longer needs (a resume of it is refused). Returns the
    files removed."""
    if keep:
        return []
    found = [weights / f"{name}{suffix}" for name in (TRAIN_STATE, SEMI_STATE) for suffix in ("", ".prev")]
    removed = [path for path in found if path.is_file()]
    for path in removed:
        path.unlink()
    return removed
