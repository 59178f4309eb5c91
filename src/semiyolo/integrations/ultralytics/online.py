"""Online semi-supervised training (``semi.mode: online``): the student trains on labeled batches extended with
pseudo-labeled unlabeled images, and a mean teacher (:class:`semiyolo.teacher.MeanTeacher`) follows it.

This file reads top to bottom as the online step and the epoch around it; each job is a part it names:

1. Ultralytics loads and preprocesses a labeled batch (:meth:`OnlineTrainer.preprocess_batch`).
2. After ``burn_in`` epochs, :meth:`OnlineTrainer.add_pseudo_labeled` draws the next unlabeled batch
   (:class:`~.online_data.UnlabeledStream`) and hands it to :meth:`MeanTeacher.extend
   <semiyolo.teacher.MeanTeacher.extend>`: the teacher labels the weak view (NMS, the filter chain), the strong
   view carries the pseudo-boxes, and the pseudo-labeled images are appended to the batch (:mod:`semiyolo.batch`).
   The audit observes the pseudo-labels.
3. The student's one forward on the whole batch; :class:`~.semi_criterion.SemiSupervisedLoss` gives
   ``loss(labeled) + lambda_unsup * loss(pseudo-labeled)``; the base trainer's guarded optimizer step.
4. :meth:`OnlineTrainer.after_optimizer_step`: the teacher takes one EMA step towards the student.

Per epoch (:meth:`OnlineTrainer.begin_epoch`, :meth:`OnlineTrainer.end_epoch`, :meth:`OnlineTrainer.validate`):
reviewed images join (:class:`~.online_data.ReviewedImages`), ``lambda_unsup`` ramps, filter counts are summed
over ranks, DSAT re-estimates its thresholds (:class:`~.online_teacher.DsatCalibration`), and the teacher is
validated beside the student (:class:`~.online_teacher.TeacherValidation`). Exact resume saves the parts'
``state_dict``s in ``semi_state.pt`` (:meth:`OnlineTrainer.semi_state`). Where this relies on Ultralytics beyond
its public seams (the NaN rewind) is listed in the package docstring (:mod:`semiyolo.integrations.ultralytics`).
"""

from __future__ import annotations

from copy import copy
from functools import partial
from pathlib import Path
from typing import Any

import torch
from ultralytics.cfg import DEFAULT_CFG, get_cfg
from ultralytics.models.yolo.detect import DetectionValidator
from ultralytics.utils import LOGGER, RANK
from ultralytics.utils.torch_utils import unwrap_model

from ...batch import labeled_part, num_labeled
from ...config import SemiConfig
from ...data import split_images
from ...errors import ConfigError
from ...pixels import to_unit_range
from ...pseudo import dense_geometry_conflict, nothing_kept_reason
from ...schedules import ramp_weight
from ...teacher import MeanTeacher, PseudoLabelAudit
from .criterion import set_loss_weights
from .distributed import broadcast_filters, broadcast_module, sum_counts
from .exact_resume import SEMI_STATE, read_state
from .online_data import ReviewedImages, UnlabeledStream
from .online_teacher import (
    DSAT_MAX_IMAGES,
    DsatCalibration,
    TeacherValidation,
    TrustEstimate,
    amp_dtype,
    build_mean_teacher,
    evenly_spaced,
    restore_mean_teacher,
    teacher_decay,
)
from .pictures import plot_pseudo_labels
from .semi_criterion import UNSUPERVISED_PREFIX, SemiSupervisedLoss
from .shipping import save_teacher_checkpoint, ship_better
from .supervised import PREFIX, SupervisedTrainer, planned_optimizer_steps, semi_settings

STATE_FILE = SEMI_STATE
PRIVATE_OVERRIDES = ("_handle_nan_recovery",)  # Ultralytics methods overridden without a public seam


class TrainingValidator(DetectionValidator):
    """Ultralytics' detection validator; during training it validates the model it is given, if any (the
    teacher), instead of always the trainer's EMA."""

    def get_model(self, model, trainer=None, **kwargs):
        return model if trainer is not None and model is not None else super().get_model(model, trainer, **kwargs)


class OnlineTrainer(SupervisedTrainer):
    """``semi.mode: online``. Importable by module path (Ultralytics' DDP launcher needs that); the ``semi``
    settings reach DDP workers through the ``SEMIYOLO_SEMI`` environment variable (JSON)."""

    def __init__(
        self, cfg=DEFAULT_CFG, overrides: dict[str, Any] | None = None, _callbacks=None, semi: SemiConfig | None = None
    ) -> None:
        semi = semi_settings(semi, SemiConfig(mode="online"))
        if not semi.unlabeled:
            raise ConfigError("semi.unlabeled: online mode needs a folder of unlabeled images")
        conflict = dense_geometry_conflict(semi.pseudo_targets, multi_scale=get_cfg(cfg, overrides).multi_scale)
        if conflict:
            raise ConfigError(conflict)
        # the parts, before Ultralytics' __init__ (which builds the dataset, DSAT's hold-out included)
        self.dsat = DsatCalibration(self)
        self.trust = TrustEstimate(self, self.trust_images, f"{semi.pseudo_trust} labeled")
        self.reviewed = ReviewedImages(self)
        self.unlabeled = UnlabeledStream(self, self.reviewed)
        self.teacher_validation = TeacherValidation(self)
        self.audit = PseudoLabelAudit()
        self.mean_teacher: MeanTeacher | None = None  # built from the student after set-up
        super().__init__(cfg, overrides, _callbacks, semi)
        self.lambda_unsup = 0.0
        self.filter_counts: dict[str, float] = {}
        self.picture_due = False  # the epoch's first pseudo-labeled batch is drawn
        self.teacher_in: list[str] = []  # the weights that hold the teacher at the end (semi.ship), by name

    # --- set-up -------------------------------------------------------------------------------------------
    def labeled_dataset(self) -> dict:
        """Ultralytics' dataset, less DSAT's held-out labeled images where it has some."""
        return self.dsat.hold_out(super().labeled_dataset())

    def build_criterion(self, model, wrap=None):
        """The penalised criterion of each head, wrapped in :class:`SemiSupervisedLoss`."""
        return super().build_criterion(model, wrap=partial(SemiSupervisedLoss, lambda_unsup=0.0))

    def get_validator(self):
        """Ultralytics' validator, able to validate the teacher (:class:`TrainingValidator`)."""
        return TrainingValidator(
            self.test_loader, save_dir=self.save_dir, args=copy(self.args), _callbacks=self.callbacks
        )

    def after_setup(self) -> None:
        """After the student is set up (resumed, or continued from another run): the mean teacher, built from it,
        the parts' saved states on a resume, and the unlabeled stream; DDP ranks start from rank 0's teacher."""
        self.reviewed.after_setup()
        state = self.read_semi_state(self.start_epoch - 1) if self.resume else None
        if state is not None:  # before the base trainer restores the training loader's order and mosaic buffer
            self.reviewed.load_state_dict(state["reviewed"])
        super().after_setup()
        self.mean_teacher = build_mean_teacher(self)
        if state is not None:
            self.load_semi_state(state)
            LOGGER.info(f"Resumed teacher, filters, thresholds and the unlabeled stream from {self.wdir / STATE_FILE}")
        self.unlabeled.open()
        broadcast_module(self.mean_teacher.model)
        broadcast_filters(self.mean_teacher.filters)

    def trust_images(self) -> list[Path]:
        """The labeled images the trust estimate measures the teacher on (``semi.pseudo_trust``): DSAT's held-out
        ones, or up to :data:`~.online_teacher.DSAT_MAX_IMAGES` images of the validation split (``train.split``),
        evenly spaced."""
        if self.semi.pseudo_trust == "holdout":
            return self.dsat.images
        images = split_images(self.data, self.args.split)
        return evenly_spaced(images, DSAT_MAX_IMAGES)

    def amp_dtype(self) -> torch.dtype | None:
        """The student's autocast dtype, for the teacher's forward."""
        return amp_dtype(getattr(self, "amp", False), self.args.amp)

    def teacher_decay(self) -> float:
        """The teacher's decay per step (:func:`~.online_teacher.teacher_decay`) over this run's optimizer steps."""
        return teacher_decay(self.semi, partial(planned_optimizer_steps, self))

    def resolved_semi(self) -> dict[str, Any]:
        """The base trainer's, with the teacher's decay per step as the run uses it (from the half-life)."""
        return {**super().resolved_semi(), "teacher_decay": self.teacher_decay()}

    def banner(self) -> dict[str, Any]:
        return {
            "unlabeled_images": len(self.unlabeled.images()),
            "teacher_decay": self.teacher_decay(),
            "optimizer_steps": planned_optimizer_steps(self),
        }

    # --- the online step ------------------------------------------------------------------------------------
    @property
    def semi_active(self) -> bool:
        return self.mean_teacher is not None and self.epoch >= self.semi.burn_in

    def preprocess_batch(self, batch: dict) -> dict:
        """Step 1, then step 2 after burn-in."""
        batch = super().preprocess_batch(batch)
        return self.add_pseudo_labeled(batch) if self.semi_active else batch

    def add_pseudo_labeled(self, batch: dict) -> dict:
        """Step 2: the next unlabeled batch, labeled by the teacher, appended."""
        images, hidden = self.unlabeled.next()
        weak = to_unit_range(images.to(self.device, non_blocking=True))
        labeled = batch["img"].shape[0]
        keys = [str(path) for path in self.unlabeled.files] if self.semi.relabel_every > 1 else None
        oracle = hidden if self.semi.oracle_pseudo_labels else None
        batch, detections = self.mean_teacher.extend(batch, weak, keys=keys, hidden=oracle)
        self.audit.observe(detections, hidden)
        self.steps.images_seen += batch["img"].shape[0] - labeled
        if self.picture_due and num_labeled(batch) is not None:
            self.picture_due = False
            plot_pseudo_labels(batch, self.data["names"], self.save_dir / f"pseudo_labels_epoch{self.epoch + 1}.jpg")
        return batch

    def plot_training_samples(self, batch: dict, ni: int) -> None:
        """Ultralytics' ``train_batch*.jpg`` of the labeled images; the pseudo-labeled ones have their own picture."""
        super().plot_training_samples(labeled_part(batch), ni)

    def after_optimizer_step(self) -> None:
        """Step 4: the teacher follows the student."""
        self.mean_teacher.update(unwrap_model(self.model))

    # --- epochs ---------------------------------------------------------------------------------------------
    @property
    def mosaic_closed(self) -> bool:
        """Ultralytics' rule: no mosaic in the run's last ``close_mosaic`` epochs (for the labeled images, and here
        for the unlabeled view too, so the teacher labels the scale the student now trains at)."""
        epoch = getattr(self, "epoch", self.start_epoch)  # before the first epoch: the one training starts at
        return bool(self.args.close_mosaic) and epoch >= self.epochs - self.args.close_mosaic

    def begin_epoch(self) -> None:
        """Reviewed images join (the loaders rebuilt), the Ultralytics view follows mosaic's closing, the base
        trainer's schedules and exact-resume restore, then ``lambda_unsup`` and the epoch's counts start, and the
        trust estimate is measured (``semi.pseudo_trust``)."""
        if self.semi.reviewed and self.reviewed.take_new():
            self.train_loader = self.reviewed.labeled_loader()
            self.unlabeled.open()
        self.unlabeled.begin_epoch()
        super().begin_epoch()
        self.picture_due = bool(self.args.plots) and RANK in {-1, 0}
        self.audit.reset()
        self.mean_teacher.filters.reset_counts()
        if self.semi.pseudo_trust != "off" and self.semi_active:
            self.trust.measure(self.mean_teacher)

    def schedule_loss_weights(self) -> None:
        super().schedule_loss_weights()
        s = self.semi
        self.lambda_unsup = ramp_weight(self.epoch, s.lambda_unsup, s.burn_in, s.lambda_unsup_warmup, "linear")
        set_loss_weights(unwrap_model(self.model).criterion, lambda_unsup=self.lambda_unsup)

    def end_epoch(self) -> None:
        """Every rank: the epoch's filter counts summed over ranks; a warning if nothing was pseudo-labeled; DSAT's
        thresholds re-estimated."""
        self.filter_counts = sum_counts(self.mean_teacher.filters, self.device)
        if self.semi_active and not self.audit.counts["pseudo_labels"] and RANK in {-1, 0}:
            _warn_no_pseudo_labels(self)
        self.dsat.end_epoch(self.mean_teacher)

    def _handle_nan_recovery(self, epoch: int) -> bool:
        """Ultralytics rewinds the student to ``last.pt`` after a non-finite loss or fitness; the teacher and the
        filters go back with it, to the state saved with that checkpoint."""
        if not super()._handle_nan_recovery(epoch):
            return False
        state = self.read_semi_state(epoch - 1)
        if state is None:
            LOGGER.warning("non-finite loss: the student was rewound to last.pt, the teacher could not be")
            return True
        restore_mean_teacher(self.mean_teacher, state["mean_teacher"], self.args.seed, state["epoch"])
        LOGGER.warning(f"non-finite loss: teacher and filters rewound with the student to epoch {epoch}")
        return True

    def auto_batch(self) -> int:
        """``train.batch: -1``: Ultralytics' estimate is for labeled images alone; after burn-in a step also carries
        ``unlabeled_ratio`` unlabeled images per labeled one (and the teacher's no-grad forward)."""
        return max(1, int(super().auto_batch() / (1 + self.semi.unlabeled_ratio)))

    # --- metrics ------------------------------------------------------------------------------------------------
    def run_metrics(self) -> dict[str, float]:
        """The base figures, ``lambda_unsup``, the audit, the filters' counts, DSAT's thresholds and the teacher's
        last validation."""
        metrics = {**super().run_metrics(), "semi/lambda_unsup": self.lambda_unsup, **self.audit.metrics()}
        if self.mean_teacher is None:
            return metrics
        for key, value in (self.filter_counts or self.mean_teacher.filters.stats()).items():
            metrics[f"semi/{key}"] = value
        metrics.update(self.dsat.metrics(self.mean_teacher))
        if self.semi.pseudo_trust != "off":
            metrics.update(self.trust.metrics())
        return {**metrics, **(self.teacher_validation.run_metrics() if self.semi.validate_teacher else {})}

    def validate(self):
        """The teacher's validation (``teacher/...``), then the student's (its EMA), each table under its name."""
        if self.mean_teacher is not None and self.semi.validate_teacher:
            LOGGER.info(f"{PREFIX}the teacher on the validation images:")
            self.teacher_validation.validate(self.mean_teacher)
            LOGGER.info(f"{PREFIX}the student (its EMA) on the validation images:")
        return super().validate()

    def label_loss_items(self, loss_items=None, prefix: str = "train"):
        """Ultralytics' named losses; validation images carry no pseudo-labels, so their unsupervised losses
        (always 0) are left out of the validation columns."""
        named = super().label_loss_items(loss_items, prefix)
        if prefix != "val":
            return named
        unsupervised = f"{prefix}/{UNSUPERVISED_PREFIX}"
        if isinstance(named, dict):
            return {k: v for k, v in named.items() if not k.startswith(unsupervised)}
        return [k for k in named if not k.startswith(unsupervised)]

    def finish(self) -> None:
        """At the end (rank 0): the teacher saved as ``weights/teacher.pt``, and with ``semi.ship: better`` the
        better of teacher and student as ``last.pt`` (:mod:`.shipping`); then the base trainer's end."""
        if RANK in {-1, 0} and self.mean_teacher is not None and self.last.exists():
            teacher_weights = save_teacher_checkpoint(self.mean_teacher.model, self.last)
            if self.semi.ship == "better":
                self.teacher_in = ship_better(teacher_weights, self.last, self.best, self.read_results_csv())
        super().finish()

    # --- state -----------------------------------------------------------------------------------------------
    def stateful_parts(self) -> dict[str, Any]:
        """The parts whose ``state_dict`` an exact resume needs, by their name in ``semi_state.pt``."""
        return {"mean_teacher": self.mean_teacher, "unlabeled": self.unlabeled, "reviewed": self.reviewed}

    def semi_state(self) -> dict[str, Any]:
        """``semi_state.pt``: each stateful part's ``state_dict`` under its name, the epoch and the settings."""
        parts = {name: part.state_dict() for name, part in self.stateful_parts().items()}
        return {"epoch": self.epoch, "semi": self.semi.model_dump(), **parts}

    def resume_states(self) -> dict[str, dict[str, Any]]:
        """The base trainer's, plus the teacher, filters and unlabeled stream (``semi_state.pt``)."""
        states = super().resume_states()
        if self.mean_teacher is not None:
            states[STATE_FILE] = self.semi_state()
        return states

    def read_semi_state(self, epoch: int) -> dict[str, Any] | None:
        """The ``semi_state.pt`` saved after ``epoch`` (0-based), or ``None`` (:func:`~.exact_resume.read_state`);
        a :class:`ConfigError` for one saved in the layout before the parts were saved by name."""
        path = self.wdir / STATE_FILE
        state = read_state(path, epoch, self.device)
        if state is not None and not set(self.stateful_parts()) <= set(state):
            raise ConfigError(
                f"{path}: saved by a semiyolo older than this one (no {' / '.join(self.stateful_parts())} entries); "
                "resume the run with the version that started it, or train it anew"
            )
        return state

    def load_semi_state(self, state: dict[str, Any]) -> None:
        """The teacher's and the unlabeled stream's saved states (the reviewed images' came first)."""
        restore_mean_teacher(self.mean_teacher, state["mean_teacher"], self.args.seed, state["epoch"])
        self.unlabeled.load_state_dict(state["unlabeled"])


def _warn_no_pseudo_labels(trainer: OnlineTrainer) -> None:
    """The commonest question about teacher-student training: why is the unsupervised loss all background?"""
    counts = ", ".join(f"{k} {v:g}" for k, v in trainer.filter_counts.items())
    min_score_knob = f"semi.pseudo_min_score {trainer.semi.pseudo_min_score:g}"
    reason = nothing_kept_reason(trainer.mean_teacher.filters, trainer.filter_counts, min_score_knob, "semi.filters.{}")
    LOGGER.warning(
        f"epoch {trainer.epoch + 1}: no pseudo-label survived on {trainer.audit.counts['images']:g} unlabeled images "
        f"(filters: {counts or 'none'}): {reason} (or give the teacher a longer semi.burn_in); the unsupervised loss "
        "only taught background."
    )
