"""Training on labeled images with the background-penalty criterion: ``semi.mode`` ``supervised``, and
``offline``, where pseudo-labeled images written by ``semiyolo pseudo-label`` join the labeled ones as if labeled.

The trainer is a ``DetectionTrainer`` that calls well-named units at Ultralytics' seams: the criterion
(:mod:`.criterion`) and its ``lambda_bg`` schedule, dataset lists (:mod:`semiyolo.data`), exact resume
(:mod:`.exact_resume`), the guarded optimizer step (:mod:`.step_guard`), atomic checkpoints
(:mod:`.checkpoints`), the end-of-run summary (:mod:`.run_summary`) and what the run says at its start and end
(:mod:`.banner`).
"""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch
import yaml
from ultralytics.cfg import DEFAULT_CFG
from ultralytics.models.yolo.detect import DetectionTrainer
from ultralytics.utils import LOGGER, RANK, colorstr
from ultralytics.utils.torch_utils import unwrap_model

from ...config import SemiConfig
from ...data import repeated_train, write_atomically
from ...plots.run import write_semi_figure
from ...reproducibility import stream_generator
from ...runfiles import RunLock
from ...schedules import ramp_weight
from ...semi_groups import SEMI_PATHS
from ...teacher import MosaicCache, mix_labeled, mosaic_rows
from . import continuation
from .banner import closing_summary, coverage_warnings, start_banner
from .checkpoints import save_atomically
from .criterion import build_criterion, resume_e2e_schedule, set_loss_weights
from .exact_resume import TRAIN_STATE, ExactResume, remove_resume_states
from .offline import offline_train_entries
from .run_summary import write_run_summary
from .step_guard import GuardedSteps

SEMI_ENV = "SEMIYOLO_SEMI"  # the semi settings, as JSON, for DDP workers
SEMI_YAML = "semi.yaml"  # the run's semi settings, resolved, beside Ultralytics' args.yaml
PREFIX = colorstr("semi: ")
SEMI_FIGURE = "semi.png"  # the run's semi/* and teacher/* columns against the epoch


def semi_settings(semi: SemiConfig | None, default: SemiConfig | None = None) -> SemiConfig:
    """``semi``, or in a DDP worker (Ultralytics passes no ``semi``) the launcher's, from :data:`SEMI_ENV`."""
    if semi is None and RANK != -1 and os.environ.get(SEMI_ENV):
        semi = SemiConfig.model_validate_json(os.environ[SEMI_ENV])
    return semi or default or SemiConfig()


class SupervisedTrainer(DetectionTrainer):
    """A ``DetectionTrainer`` whose model (and EMA) use :class:`~.criterion.BackgroundPenaltyDetectionLoss`.

    ``semi`` holds the penalty settings (Ultralytics rejects unknown training arguments, so they live in
    their own namespace). ``lambda_bg`` follows :func:`semiyolo.schedules.ramp_weight` per epoch; it and the
    step counters reach ``trainer.metrics`` (so results.csv and Ultralytics' loggers) as ``semi/...``; ``bg_loss``
    appears as a training and validation loss. At the end, ``summary.json`` (:mod:`.run_summary`).
    ``resume=True`` continues a single-process run exactly (:mod:`.exact_resume`).
    """

    def __init__(
        self, cfg=DEFAULT_CFG, overrides: dict[str, Any] | None = None, _callbacks=None, semi: SemiConfig | None = None
    ) -> None:
        self.semi = semi_settings(semi)  # before Ultralytics' __init__, which calls get_dataset
        super().__init__(cfg, overrides, _callbacks)
        self.run_lock = RunLock(self.save_dir)
        if RANK == -1:  # the launching process holds the folder; DDP workers run under it
            self.run_lock.acquire()
        os.environ[SEMI_ENV] = self.semi.model_dump_json()  # for the DDP workers Ultralytics may launch
        self.lambda_bg = 0.0
        self.steps = GuardedSteps(self.semi.max_grad_norm, self.semi.nonfinite_patience, self.semi.max_optimizer_steps)
        self.exact_resume = ExactResume(enabled=self.semi.exact_resume and self.world_size <= 1)
        self.batch_files: tuple = ()
        self.labeled_mosaic_cache = MosaicCache(self.semi.mosaic_cache)  # semi.labeled_mosaic's partners
        # Ultralytics copies the dict of callbacks, not its lists: ours must not reach a YOLO object's own lists
        self.callbacks = defaultdict(list, {event: list(found) for event, found in self.callbacks.items()})
        for event, callback in CALLBACKS.items():
            self.add_callback_once(event, callback)
        if RANK in {-1, 0} and not self.args.time:  # with train.time Ultralytics sets the epochs as it goes
            for line in coverage_warnings(self.semi, self.epochs):
                LOGGER.warning(line)

    def add_callback_once(self, event: str, callback) -> None:
        """DDP workers receive the parent's callbacks already registered: do not run ours twice."""
        if callback not in self.callbacks[event]:
            self.add_callback(event, callback)

    # --- data ---------------------------------------------------------------------------------------------
    def get_dataset(self) -> dict:
        """:meth:`labeled_dataset`, its training images repeated ``semi.labeled_repeat`` times (a list file in
        the run folder); in offline mode the pseudo-labeled images join them (once)."""
        data = self.labeled_dataset()
        if self.semi.labeled_repeat > 1:
            data = repeated_train(data, self.semi.labeled_repeat, self.save_dir)
        if self.semi.mode == "offline":
            data["train"] = offline_train_entries(data, self.semi.pseudo_labels)
        return data

    def labeled_dataset(self) -> dict:
        """Ultralytics' dataset, as ``data.yaml`` describes it."""
        return super().get_dataset()

    def get_dataloader(self, dataset_path: str, batch_size: int = 16, rank: int = 0, mode: str = "train"):
        """Ultralytics' loader; training in one process, with a resumable order."""
        loader = super().get_dataloader(dataset_path, batch_size, rank, mode)
        return self.exact_resume.loader(loader, self.args.seed) if mode == "train" and rank == -1 else loader

    # --- criterion and its schedule -------------------------------------------------------------------------
    def current_lambda_bg(self, epoch: int) -> float:
        s = self.semi
        return ramp_weight(epoch, s.lambda_bg, s.burn_in, s.lambda_bg_warmup, s.lambda_bg_schedule)

    def build_criterion(self, model, wrap=None):
        """:func:`~.criterion.build_criterion` with the ``semi`` settings; ``wrap`` wraps each head's criterion."""
        s = self.semi
        return build_criterion(
            model,
            wrap=wrap,
            lambda_bg=self.current_lambda_bg(self.start_epoch),
            mode=s.bg_mode,
            normalize=s.bg_normalize,
            gamma=s.bg_gamma,
            logit_clamp=s.logit_clamp,
        )

    def install_criterion(self) -> None:
        """The model and its EMA share one penalised criterion, so training and validation report the same loss
        items; a resume advances an end-to-end criterion's schedule as Ultralytics does for its own."""
        model = unwrap_model(self.model)
        criterion = self.build_criterion(model)
        if self.start_epoch > 0:
            resume_e2e_schedule(criterion, self.start_epoch)
        model.criterion = criterion
        if self.ema is not None:
            self.ema.ema.criterion = criterion

    def schedule_loss_weights(self) -> None:
        """At an epoch's start: the scheduled weights, set on the criterion in one call."""
        self.lambda_bg = self.current_lambda_bg(self.epoch)
        set_loss_weights(unwrap_model(self.model).criterion, lambda_bg=self.lambda_bg)

    # --- Ultralytics' seams -----------------------------------------------------------------------------------
    def after_setup(self) -> None:
        """After Ultralytics' set-up and resume: criterion, exact resume, or a continuation of another run."""
        self.install_criterion()
        self.exact_resume.after_setup(self)
        if self.semi.init_state and not (self.resume and self.start_epoch > 0):
            continuation.continue_from(self, self.semi.init_state)

    def preprocess_batch(self, batch: dict) -> dict:
        self.batch_files = batch.get("im_file", ())
        self.exact_resume.before_forward(self)
        batch = self.augment_labeled(super().preprocess_batch(batch))
        self.steps.images_seen += batch["img"].shape[0]
        return batch

    def augment_labeled(self, batch: dict) -> dict:
        """``semi.labeled_mosaic``, then ``semi.labeled_mixup``: pseudo-mosaic's and pseudo-mixup's augmentations on
        the labeled images alone (the controls ``semiyolo ablate`` runs beside those arms)."""
        s = self.semi
        if not (s.labeled_mosaic or s.labeled_mixup):
            return batch
        generator = self.labeled_mixup_generator()
        if s.labeled_mosaic:
            rows = torch.arange(batch["img"].shape[0])
            batch, _ = mosaic_rows(batch, self.labeled_mosaic_cache, rows, s.labeled_mosaic, generator)
        if s.labeled_mixup:
            batch = mix_labeled(batch, s.labeled_mixup, generator, max_overlap=s.mixup_max_overlap)
        return batch

    def labeled_mixup_generator(self) -> torch.Generator:
        """The generator of a batch's ``semi.labeled_mosaic`` and ``semi.labeled_mixup`` draws, from the seed and
        the images seen so far (a resumed run's counters), so a resumed run mixes as one that never stopped (its
        mosaic cache restored with the exact-resume state)."""
        return stream_generator(int(self.args.seed), self.steps.images_seen)

    def optimizer_step(self) -> None:
        """:class:`~.step_guard.GuardedSteps`' step, then the EMA; the step that reaches
        ``semi.max_optimizer_steps`` ends training (Ultralytics then validates and saves the cut-short epoch)."""
        self.exact_resume.optimizer_step(self)
        if not self.steps.step(self.model, self.optimizer, self.scaler, self.loss, self.batch_files):
            return
        if self.ema:
            self.ema.update(self.model)
        self.after_optimizer_step()
        if self.steps.budget_reached:
            self.stop = True

    def after_optimizer_step(self) -> None:
        """A hook for what follows the student's step (the online trainer's teacher)."""

    # --- metrics, checkpoints, summary ---------------------------------------------------------------------------
    def run_metrics(self) -> dict[str, float]:
        """``semi/...`` figures of the epoch, merged into ``trainer.metrics``."""
        return {
            "semi/lambda_bg": self.lambda_bg,
            "semi/skipped_steps": self.steps.skipped_steps,
            "semi/optimizer_steps": self.steps.optimizer_steps,
            "semi/images_seen": self.steps.images_seen,
            "semi/update_norm": self.steps.mean_update_norm,
        }

    def validate(self):
        """Ultralytics' validation, with :meth:`run_metrics` in the metrics, so that Ultralytics' loggers
        (TensorBoard, W&B, MLflow, Comet) see them."""
        metrics, fitness = super().validate()
        return (None, fitness) if metrics is None else ({**metrics, **self.run_metrics()}, fitness)

    def save_metrics(self, metrics: dict) -> None:
        """results.csv, with the current :meth:`run_metrics` last, also on an epoch that was not validated:
        Ultralytics writes the header from the first row, so every row keeps one order of columns."""
        ours = self.run_metrics()
        super().save_metrics({**{k: v for k, v in metrics.items() if k not in ours}, **ours})

    def resume_states(self) -> dict[str, dict[str, Any]]:
        """What ``last.pt`` lacks for an exact resume, by file name in the weights folder."""
        return {TRAIN_STATE: self.exact_resume.capture(self)} if self.exact_resume.enabled else {}

    def save_model(self):
        """Ultralytics' checkpoints, written atomically after the resume states (:mod:`.checkpoints`)."""
        return save_atomically(self, super().save_model, self.resume_states())

    def begin_epoch(self) -> None:
        """At an epoch's start (the first thing in Ultralytics' epoch, after its set-up draws): the scheduled
        weights, then the exact-resume restore."""
        self.schedule_loss_weights()
        self.exact_resume.epoch_start(self)

    def end_epoch(self) -> None:
        """At an epoch's end, before validation: a hook for subclasses."""

    # --- what the run is about to do, and what it did ----------------------------------------------------------
    def announce(self) -> None:
        """Before the first epoch, after Ultralytics' set-up (rank 0): ``semi.yaml`` beside ``args.yaml``, and
        the banner (:func:`~.banner.start_banner`)."""
        if RANK not in {-1, 0}:
            return
        text = yaml.safe_dump(self.resolved_semi(), sort_keys=False)
        write_atomically(self.save_dir / SEMI_YAML, lambda part: part.write_text(text))
        for line in start_banner(self.semi, self.epochs, len(self.train_loader), self.batch_size, **self.banner()):
            LOGGER.info(f"{PREFIX}{line}")

    def resolved_semi(self) -> dict[str, Any]:
        """The ``semi`` settings as this run uses them: paths absolute."""
        semi = self.semi.model_dump()
        return {k: str(Path(v).resolve()) if k in SEMI_PATHS and v else v for k, v in semi.items()}

    def banner(self) -> dict[str, Any]:
        """The figures of the banner that only the run knows: offline, the pseudo-label folder's counts."""
        summary = Path(self.semi.pseudo_labels or "") / "summary.json"
        if self.semi.mode != "offline" or not summary.is_file():
            return {}
        return {"pseudo_label_summary": json.loads(summary.read_text())}

    def finish(self) -> None:
        """At the end of training (rank 0): ``summary.json``, the exact-resume state removed unless
        ``semi.keep_state``, the closing summary; then the run folder's lock is released."""
        if RANK in {-1, 0}:
            write_run_summary(self)
            if self.args.plots and self.csv.is_file():
                write_semi_figure(self.read_results_csv(), self.save_dir / SEMI_FIGURE)  # beside results.png
            removed = remove_resume_states(self.wdir, self.semi.keep_state)
            weights = self.best if self.best.exists() and self.semi.report_weights == "best" else self.last
            for line in closing_summary(self.last_results_row(), str(weights), [p.name for p in removed]):
                LOGGER.info(f"{PREFIX}{line}")
        self.run_lock.release()

    def last_results_row(self) -> dict[str, float]:
        """The last epoch's row of results.csv, as numbers."""
        row = {}
        for key, values in self.read_results_csv().items():
            try:
                row[key.strip()] = float(values[-1])
            except (TypeError, ValueError, IndexError):
                continue
        return row


def planned_optimizer_steps(trainer: SupervisedTrainer) -> int:
    """The run's optimizer steps: ``semi.max_optimizer_steps``, else epochs x batches / accumulation."""
    steps = trainer.semi.max_optimizer_steps
    return steps or math.ceil(trainer.epochs * len(trainer.train_loader) / max(trainer.accumulate, 1))


def _after_setup(trainer: SupervisedTrainer) -> None:
    trainer.after_setup()


def _train_start(trainer: SupervisedTrainer) -> None:
    trainer.announce()


def _epoch_start(trainer: SupervisedTrainer) -> None:
    trainer.begin_epoch()


def _epoch_end(trainer: SupervisedTrainer) -> None:
    trainer.end_epoch()


def _batch_start(trainer: SupervisedTrainer) -> None:
    trainer.exact_resume.batch_start(trainer)


def _train_end(trainer: SupervisedTrainer) -> None:
    trainer.finish()


# Module-level functions (DDP workers receive them by reference), each calling one trainer method.
CALLBACKS = {
    "on_pretrain_routine_end": _after_setup,
    "on_train_start": _train_start,
    "on_train_epoch_start": _epoch_start,
    "on_train_batch_start": _batch_start,
    "on_train_epoch_end": _epoch_end,
    "on_train_end": _train_end,
}
