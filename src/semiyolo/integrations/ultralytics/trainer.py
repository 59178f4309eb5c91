"""Supervised Ultralytics training with the background-penalty criterion, its lambda_bg schedule and a
configurable gradient clip, through Ultralytics' seams (a ``DetectionTrainer`` subclass and callbacks)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from ultralytics.cfg import DEFAULT_CFG
from ultralytics.models.yolo.detect import DetectionTrainer
from ultralytics.utils import LOGGER, RANK
from ultralytics.utils.torch_utils import unwrap_model

from ...config import SemiConfig
from ...data import list_images
from ...errors import TrainingDiverged
from ...runfiles import RunLock, describe_write_error
from ...schedules import ramp_weight
from . import continuation, resume
from .criterion import build_criterion, resume_e2e_schedule, set_lambda_bg
from .evaluate import background_false_positives
from .offline import offline_train_entries

SUMMARY_FILE = "summary.json"
SEMI_ENV = "SEMIYOLO_SEMI"  # the semi settings, as JSON, for DDP workers


class BackgroundPenaltyTrainer(DetectionTrainer):
    """A ``DetectionTrainer`` whose model (and EMA) use :class:`BackgroundPenaltyDetectionLoss`.

    ``semi`` holds the penalty settings (Ultralytics rejects unknown training arguments, so they live in
    their own namespace). ``lambda_bg`` follows :func:`semiyolo.schedules.ramp_weight` per epoch and is
    written to results.csv as ``semi/lambda_bg``; ``bg_loss`` appears there as a training and validation
    loss. At the end, background false positives per validation image are measured with the best weights
    and written, with Ultralytics' final metrics, to ``summary.json`` in the run folder. ``resume=True``
    continues a single-process run exactly (:mod:`.resume`).
    """

    def __init__(
        self, cfg=DEFAULT_CFG, overrides: dict[str, Any] | None = None, _callbacks=None, semi: SemiConfig | None = None
    ) -> None:
        if semi is None and RANK != -1 and os.environ.get(SEMI_ENV):  # a DDP worker: Ultralytics passes no semi
            semi = SemiConfig.model_validate_json(os.environ[SEMI_ENV])
        self.semi = semi or SemiConfig()  # before Ultralytics' __init__, which calls get_dataset
        super().__init__(cfg, overrides, _callbacks)
        self.run_lock = RunLock(self.save_dir)
        if RANK == -1:  # the launching process holds the folder; DDP workers run under it
            self.run_lock.acquire()
        os.environ[SEMI_ENV] = self.semi.model_dump_json()  # for the DDP workers Ultralytics may launch
        self.lambda_bg = 0.0
        self.skipped_steps = self.consecutive_skips = 0
        self.optimizer_steps = self.images_seen = 0  # optimizer steps taken, images through the student
        self.batch_files: tuple = ()
        self.batch_ni = self.last_opt_ni = -1  # Ultralytics' batch counter, and its value at the last step
        self.resume_state: dict[str, Any] | None = None
        self.resumed_last_opt_ni: int | None = None
        self._accumulate: tuple[int, int] | None = None  # (Ultralytics' value, the shifted value) while resuming
        self.add_callback_once("on_pretrain_routine_end", _install_criterion)
        self.add_callback_once("on_pretrain_routine_end", _restore_train_state)
        self.add_callback_once("on_pretrain_routine_end", _continue_from_state)
        self.add_callback_once("on_train_epoch_start", _step_lambda_bg)
        self.add_callback_once("on_train_epoch_start", _begin_epoch)
        self.add_callback_once("on_train_batch_start", _count_batch)
        self.add_callback_once("on_train_end", _write_summary)
        self.add_callback_once("on_train_end", _release_lock)

    def add_callback_once(self, event: str, callback) -> None:
        """DDP workers receive the parent's callbacks already registered: do not run ours twice."""
        if callback not in self.callbacks[event]:
            self.add_callback(event, callback)

    def get_dataset(self) -> dict:
        """:meth:`labeled_dataset`, its training images repeated ``semi.labeled_repeat`` times (a list file in
        the run folder); in offline mode the pseudo-labeled images join them (once)."""
        data = self.labeled_dataset()
        if self.semi.labeled_repeat > 1:
            self.save_dir.mkdir(parents=True, exist_ok=True)
            listing = self.save_dir / "labeled_repeated.txt"
            listing.write_text("".join(f"{p}\n" for p in train_images(data)) * self.semi.labeled_repeat)
            data["train"] = str(listing)
        if self.semi.mode == "offline":
            data["train"] = offline_train_entries(data, self.semi.pseudo_labels)
        return data

    def labeled_dataset(self) -> dict:
        """Ultralytics' dataset, as ``data.yaml`` describes it."""
        return super().get_dataset()

    def current_lambda_bg(self, epoch: int) -> float:
        s = self.semi
        return ramp_weight(epoch, s.lambda_bg, s.burn_in, s.lambda_bg_warmup, s.lambda_bg_schedule)

    def get_dataloader(self, dataset_path: str, batch_size: int = 16, rank: int = 0, mode: str = "train"):
        """Ultralytics' loader; training in one process, with a resumable order (:func:`resume.resumable_loader`)."""
        loader = super().get_dataloader(dataset_path, batch_size, rank, mode)
        return resume.resumable_loader(loader, self.args.seed) if mode == "train" and rank == -1 else loader

    def build_criterion(self, model):
        s = self.semi
        return build_criterion(
            model,
            lambda_bg=self.current_lambda_bg(self.start_epoch),
            mode=s.bg_mode,
            normalize=s.bg_normalize,
            gamma=s.bg_gamma,
            logit_clamp=s.logit_clamp,
        )

    def preprocess_batch(self, batch: dict) -> dict:
        self.batch_files = batch.get("im_file", ())
        if self.resumed_last_opt_ni is not None:
            self._shift_accumulate()
        batch = super().preprocess_batch(batch)
        self.images_seen += batch["img"].shape[0]
        return batch

    def _shift_accumulate(self) -> None:
        """Until the resumed run's first step: Ultralytics steps when ``ni - last >= accumulate`` with ``last``
        reset to -1; shift ``accumulate`` by the saved ``last + 1`` so that it steps where the run would have.
        Runs after Ultralytics' warm-up has set this batch's ``accumulate``; :func:`_count_batch` has put
        Ultralytics' own value back at the batch's start, so a warm-up value that happens to equal the last shifted
        one is still shifted."""
        self._accumulate = (self.accumulate, self.accumulate + self.resumed_last_opt_ni + 1)
        self.accumulate = self._accumulate[1]

    def optimizer_step(self) -> None:
        """Ultralytics' step, with ``semi.max_grad_norm`` in place of its fixed clip of 10, and a guard: a step
        whose loss or gradients are not finite is skipped, counted and logged with its files; after
        ``semi.nonfinite_patience`` such steps in a row training stops with :class:`TrainingDiverged`. With
        ``semi.max_optimizer_steps``, the step that reaches it ends training (Ultralytics then validates and
        saves the cut-short epoch)."""
        self.last_opt_ni = self.batch_ni
        if self._accumulate is not None:  # the resumed run's first step: accumulation counts as usual again
            self.accumulate, self._accumulate, self.resumed_last_opt_ni = self._accumulate[0], None, None
        if not self.step_is_finite():
            self.skip_step()
            return
        self.consecutive_skips = 0
        self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm=self.semi.max_grad_norm)
        scale = self.scaler.get_scale() if self.scaler.is_enabled() else None
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad()
        if self.ema:
            self.ema.update(self.model)
        if scale is None or self.scaler.get_scale() >= scale:  # AMP lowers the scale when it skips the step
            self.optimizer_steps += 1
        if self.semi.max_optimizer_steps and self.optimizer_steps >= self.semi.max_optimizer_steps:
            self.stop = True

    def step_is_finite(self) -> bool:
        if self.loss is not None and not torch.isfinite(self.loss).all():
            return False
        if self.scaler.is_enabled():  # with AMP, overflowing gradients are the GradScaler's to handle
            return True
        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        return not grads or bool(torch.isfinite(torch.stack([g.detach().float().abs().sum() for g in grads])).all())

    def skip_step(self) -> None:
        self.optimizer.zero_grad()
        self.skipped_steps += 1
        self.consecutive_skips += 1
        files = ", ".join(map(str, self.batch_files)) or "(unknown)"
        LOGGER.warning(f"non-finite loss or gradient: step skipped ({self.consecutive_skips} in a row); batch: {files}")
        if self.consecutive_skips >= self.semi.nonfinite_patience:
            raise TrainingDiverged(
                f"{self.consecutive_skips} consecutive steps had a non-finite loss or gradient; stopping. Last batch: "
                f"{files}. Try a lower lr0, semi.logit_clamp (e.g. 10), or check these images and labels."
            )

    def save_metrics(self, metrics: dict) -> None:
        super().save_metrics(
            {
                **metrics,
                "semi/lambda_bg": self.lambda_bg,
                "semi/skipped_steps": self.skipped_steps,
                "semi/optimizer_steps": self.optimizer_steps,
                "semi/images_seen": self.images_seen,
            }
        )

    def resume_states(self) -> dict[str, dict[str, Any]]:
        """What ``last.pt`` lacks for an exact resume, by file name in the weights folder."""
        exact = self.semi.exact_resume and self.world_size <= 1
        return {resume.TRAIN_STATE: resume.capture(self)} if exact else {}

    def save_model(self):
        """Ultralytics' checkpointing made atomic: ``last.pt`` and ``best.pt`` are written under ``.part``
        names and renamed into place, so a run killed mid-write keeps its previous checkpoints loadable. The
        resume states are written first, in two generations (:func:`resume.write_state`). A write that fails for
        want of space or permission removes its partial files and ends the run with one line
        (:class:`~semiyolo.runfiles.OutputError`)."""
        final_last, final_best = self.last, self.best
        parts = [p.with_name(p.name + ".part") for p in (final_last, final_best)]
        try:
            self.wdir.mkdir(parents=True, exist_ok=True)
            for name, state in self.resume_states().items():
                resume.write_state(self.wdir / name, state)
            for part in parts:
                part.unlink(missing_ok=True)  # left by a run killed mid-write
            self.last, self.best = parts
            try:
                saved = super().save_model()
            finally:
                self.last, self.best = final_last, final_best
        except (OSError, RuntimeError) as err:
            for part in (*parts, *self.wdir.glob("*.pt.part")):
                part.unlink(missing_ok=True)
            described = describe_write_error(err, self.wdir)
            if described is None:
                raise
            raise described from err
        for part, final in zip(parts, (final_last, final_best), strict=True):
            if part.exists():
                os.replace(part, final)
        return saved


def train_images(data: dict) -> list[Path]:
    """The training images of an Ultralytics dataset dict: folders listed, list files read."""
    entries = data["train"] if isinstance(data["train"], list) else [data["train"]]
    return [p for entry in entries for p in (list_images(entry) if Path(entry).is_dir() else _read_list(entry))]


def _read_list(path: str) -> list[Path]:
    """Image paths of a dataset list file; ``./`` lines are relative to the file's folder, as in Ultralytics."""
    lines = [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]
    return [Path(path).parent / line[2:] if line.startswith("./") else Path(line) for line in lines]


def _install_criterion(trainer: BackgroundPenaltyTrainer) -> None:
    """After setup (model, EMA, resume): the model and its EMA share one penalised criterion, so training and
    validation report the same loss items."""
    model = unwrap_model(trainer.model)
    criterion = trainer.build_criterion(model)
    if trainer.start_epoch > 0:  # a resume: Ultralytics had advanced its E2E loss schedule; so do we
        resume_e2e_schedule(criterion, trainer.start_epoch)
    model.criterion = criterion
    if trainer.ema is not None:
        trainer.ema.ema.criterion = criterion


def _restore_train_state(trainer: BackgroundPenaltyTrainer) -> None:
    if trainer.resume and trainer.start_epoch > 0 and RANK in {-1, 0}:
        resume.drop_logged_epochs_after(trainer.csv, trainer.start_epoch)
    if trainer.resume and trainer.start_epoch > 0 and trainer.world_size <= 1 and trainer.semi.exact_resume:
        path = trainer.wdir / resume.TRAIN_STATE
        trainer.resume_state = resume.read_state(path, trainer.start_epoch - 1, trainer.device)
        if trainer.resume_state is not None:
            resume.restore_setup(trainer, trainer.resume_state)


def _continue_from_state(trainer: BackgroundPenaltyTrainer) -> None:
    """``semi.init_state``: a new run that continues another (not a resume of this one)."""
    if trainer.semi.init_state and not (trainer.resume and trainer.start_epoch > 0):
        continuation.continue_from(trainer, trainer.semi.init_state)


def _begin_epoch(trainer: BackgroundPenaltyTrainer) -> None:
    trainer.batch_ni = len(trainer.train_loader) * trainer.epoch - 1
    if trainer.resume_state is not None:
        resume.restore_epoch_start(trainer, trainer.resume_state)
        trainer.resume_state = None
        LOGGER.info(f"Resumed exactly: full-precision weights, optimizer and random streams from {resume.TRAIN_STATE}")


def _count_batch(trainer: BackgroundPenaltyTrainer) -> None:
    trainer.batch_ni += 1
    if trainer._accumulate is not None:  # undo the resume shift: Ultralytics' warm-up may set its own value
        trainer.accumulate = trainer._accumulate[0]


def _step_lambda_bg(trainer: BackgroundPenaltyTrainer) -> None:
    trainer.lambda_bg = trainer.current_lambda_bg(trainer.epoch)
    set_lambda_bg(unwrap_model(trainer.model).criterion, trainer.lambda_bg)


def _write_summary(trainer: BackgroundPenaltyTrainer) -> None:
    if RANK not in {-1, 0}:
        return
    last = trainer.semi.report_weights == "last" or not trainer.best.exists()
    weights = trainer.last if last else trainer.best
    images = list_images(trainer.data["val"]) if isinstance(trainer.data["val"], str) else []
    metrics = _final_row(trainer) if trainer.semi.report_weights == "last" else trainer.metrics
    summary: dict[str, Any] = {k: round(float(v), 5) for k, v in (metrics or {}).items()}
    summary.update(
        {"weights": weights.name, "optimizer_steps": trainer.optimizer_steps, "images_seen": trainer.images_seen}
    )
    if weights.exists() and images:
        bg = background_false_positives(weights, images, conf=trainer.semi.bg_fp_conf, imgsz=trainer.args.imgsz)
        summary.update({f"bg_fp/{k}": v for k, v in bg.items()})
        LOGGER.info(
            f"Background false positives (conf > {bg['conf']}, IoU < {bg['iou']} with every object): "
            f"{bg['background_fp_per_image']:.3f} per image over {bg['images']} validation images; at the "
            f"F1-optimal confidence {bg['f1_conf']:.3f}: {bg['background_fp_per_image_at_f1']:.3f}"
        )
    summary["semi"] = trainer.semi.model_dump()
    (trainer.save_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2))


def _final_row(trainer: BackgroundPenaltyTrainer) -> dict[str, float]:
    """The validation metrics of the last epoch (the final weights), from results.csv."""
    columns = trainer.read_results_csv()
    return {k: v[-1] for k, v in columns.items() if k.startswith("metrics/") and v}


def _release_lock(trainer: BackgroundPenaltyTrainer) -> None:
    trainer.run_lock.release()
