"""Online semi-supervised training (``semi.mode: online``): the student trains on labeled batches extended with
pseudo-labeled unlabeled images, and a mean teacher (:class:`semiyolo.teacher.MeanTeacher`) follows it.

The online step, top to bottom (:meth:`OnlineTrainer.add_pseudo_labeled`, then the base trainer's guarded
optimizer step, then :meth:`OnlineTrainer.after_optimizer_step`):

1. Ultralytics loads and preprocesses a labeled batch.
2. After ``burn_in`` epochs, the next batch of the unlabeled stream (:mod:`.unlabeled`) is handed to
   :meth:`MeanTeacher.extend <semiyolo.teacher.MeanTeacher.extend>`: the teacher labels the weak view (NMS, the
   filter chain), the strong view carries the pseudo-boxes, and the pseudo-labeled images are appended to the
   batch (``num_labeled`` marks where they start). The audit observes the pseudo-labels.
3. The student's one forward on the whole batch; :class:`~.semi_criterion.SemiSupervisedLoss` gives
   ``loss(labeled) + lambda_unsup * loss(pseudo-labeled)``.
4. After the optimizer step, the teacher takes one EMA step towards the student.

Per epoch: ``lambda_unsup`` ramps, filter counts are summed over ranks, DSAT re-estimates its thresholds, and the
teacher is validated beside the student. Where this relies on Ultralytics beyond its public seams (the NaN
rewind) is listed in the package docstring (:mod:`semiyolo.integrations.ultralytics`).
"""

from __future__ import annotations

import math
import os
from copy import copy
from functools import partial
from pathlib import Path
from typing import Any

import torch
from ultralytics.cfg import DEFAULT_CFG, get_cfg
from ultralytics.models.yolo.detect import DetectionValidator
from ultralytics.utils import LOCAL_RANK, LOGGER, RANK
from ultralytics.utils.torch_utils import unwrap_model

from ...config import SemiConfig
from ...data import held_out_train, split_images, train_images, write_image_list
from ...errors import ConfigError
from ...pseudo import DSATFilter, build_filters, nothing_kept_reason
from ...pseudo.augment import student_view
from ...review import reviewed_images
from ...schedules import ramp_weight
from ...teacher import MeanTeacher, PseudoLabelAudit, TeacherPseudoLabeler, labeled_part
from .criterion import set_loss_weights
from .distributed import broadcast_filters, broadcast_module, sum_counts
from .exact_resume import SEMI_STATE, read_state
from .pictures import plot_pseudo_labels
from .semi_criterion import UNSUPERVISED_PREFIX, SemiSupervisedLoss
from .supervised import PREFIX, SupervisedTrainer, planned_optimizer_steps, semi_settings
from .unlabeled import (
    UnlabeledImages,
    UnlabeledYOLODataset,
    readable_images,
    ultralytics_view_batches,
    unlabeled_batches,
)

STATE_FILE = SEMI_STATE
DSAT_MAX_IMAGES = 200  # labeled images DSAT calibrates on, at most
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
        self.dsat_images: list[Path] = []  # the labeled images DSAT calibrates on
        multi_scale = get_cfg(cfg, overrides).multi_scale
        if semi.pseudo_targets == "dense" and multi_scale:
            raise ConfigError(
                f"train.multi_scale: {multi_scale} with semi.pseudo_targets: dense; dense targets map the teacher's "
                "anchors to the student's, so both views need the same size: set train.multi_scale to 0"
            )
        super().__init__(cfg, overrides, _callbacks, semi)
        self.mean_teacher: MeanTeacher | None = None
        self.unlabeled = None  # the unlabeled stream, opened after set-up
        self.unlabeled_consumed = 0  # batches drawn from it, for an exact resume
        self.unlabeled_mosaic = False  # whether the unlabeled view still has Ultralytics' mosaic (semi.unlabeled_view)
        self.audit = PseudoLabelAudit()
        self.lambda_unsup = 0.0
        self.filter_counts: dict[str, float] = {}
        self.picture_due = False
        self.teacher_metrics: dict[str, float] = {}  # the teacher's last validation
        self.unlabeled_files: list[str] = []  # the current unlabeled batch's images
        self.labeled_train: list[Path] = []  # the labeled training list (repeats included), before reviews
        self.reviewed: list[Path] = []  # images a person reviewed (semi.reviewed), trained as labeled
        self.reviewed_val: list[Path] = []  # validation images a person reviewed: their labels replace the originals

    # --- data ---------------------------------------------------------------------------------------------
    def labeled_dataset(self) -> dict:
        """Ultralytics' dataset; with a ``dsat`` filter, a slice of the labeled train images is held out from
        training for DSAT's threshold estimates (lists written to the run folder), or with ``dsat_holdout: 0`` up
        to 200 of them, evenly spaced, are also DSAT's (none is removed from training)."""
        data = super().labeled_dataset()
        if not any(f.name == "dsat" for f in self.semi.filters):
            return data
        if self.semi.dsat_holdout == 0:
            images = train_images(data)
            self.dsat_images = images[:: max(1, math.ceil(len(images) / DSAT_MAX_IMAGES))]
            return data
        try:
            data, self.dsat_images = held_out_train(data, self.semi.dsat_holdout, self.save_dir, DSAT_MAX_IMAGES)
        except ValueError as err:
            raise ConfigError(f"semi.dsat_holdout: {err}") from None
        return data

    def open_unlabeled_stream(self) -> None:
        """The unlabeled batches, ``unlabeled_ratio`` per labeled image, this rank's shard, resumed in place:
        letterboxed, or through Ultralytics' own transforms (``semi.unlabeled_view``)."""
        world = int(os.environ.get("WORLD_SIZE", 1))
        batch = max(1, round(self.batch_size * self.semi.unlabeled_ratio / max(world, 1)))
        order = {"rank": RANK, "world_size": world, "skip": self.unlabeled_consumed}
        loading = {"workers": self.unlabeled_workers(world), "pin_memory": self.device.type == "cuda"}
        paths = self.unlabeled_images()
        if self.semi.unlabeled_view == "ultralytics":
            folder = str(write_image_list(self.save_dir / "unlabeled.txt", paths)) if self.reviewed else None
            self.unlabeled_dataset = self.unlabeled_view_dataset(folder or self.semi.unlabeled, batch)
            self.unlabeled_mosaic = not self.mosaic_closed
            self.unlabeled = ultralytics_view_batches(self.unlabeled_dataset, batch, self.args.seed, **order, **loading)
        else:
            dataset = UnlabeledImages(paths, self.args.imgsz)
            self.unlabeled = unlabeled_batches(dataset, batch, self.args.seed, **order, **loading)

    def unlabeled_workers(self, world: int) -> int:
        """Loader processes for the unlabeled images: ``train.workers``, capped as Ultralytics caps its own
        (the CPU cores shared by the ranks)."""
        return min((os.cpu_count() or 1) // max(world, 1), self.args.workers)

    def unlabeled_images(self) -> list[Path]:
        """The readable images of ``semi.unlabeled`` that no one has reviewed yet."""
        done = {p.resolve() for p in self.reviewed}
        return [p for p in readable_images(self.semi.unlabeled)[0] if p.resolve() not in done]

    def take_reviewed(self) -> None:
        """At an epoch's start, the images reviewed since (``semi.reviewed``, ``semiyolo review``): a validation
        image's reviewed labels replace its own in validation; any other reviewed image leaves the unlabeled stream
        and joins the labeled training images, repeated ``labeled_repeat`` times like them. The loaders concerned
        are rebuilt for the epoch; the unlabeled order restarts on the remaining images."""
        known = {p.resolve() for p in (*self.reviewed, *self.reviewed_val)}
        new = [p for p in reviewed_images(self.semi.reviewed) if p.resolve() not in known]
        val = {p.resolve(): p for p in split_images(self.data, self.args.split)}
        edits = [p for p in new if p.resolve() in val]
        if edits:
            self.reviewed_val += edits
            self.use_reviewed_validation_labels(list(val.values()))
        if len(edits) < len(new):
            self.reviewed += [p for p in new if p not in edits]
            self.use_reviewed_training_images()
        if new:
            LOGGER.info(f"{len(new)} reviewed image(s) from {self.semi.reviewed}: {len(edits)} for validation")

    def use_reviewed_training_images(self) -> None:
        self.train_loader = self.labeled_loader_with_reviewed()
        self.open_unlabeled_stream()

    def labeled_loader_with_reviewed(self):
        """Ultralytics' training loader over the labeled images and the reviewed ones (a list in the run folder)."""
        listing = self.save_dir / "labeled_with_reviewed.txt"
        write_image_list(listing, self.labeled_train + self.reviewed * self.semi.labeled_repeat)
        loader = self.get_dataloader(str(listing), batch_size=self.batch_size, rank=LOCAL_RANK)
        if self.mosaic_closed and hasattr(loader.dataset, "close_mosaic"):
            loader.dataset.close_mosaic(hyp=copy(self.args))
        return loader

    def restore_reviewed(self, state: dict[str, Any]) -> None:
        """On a resume, before the training loader's order and mosaic buffer are restored: the reviewed images the
        run had taken when its state was saved, and the loaders rebuilt with them as they were then (images
        reviewed since join at the next epoch's start, as in a run that never stopped)."""
        self.reviewed = [Path(p) for p in state.get("reviewed", [])]
        self.reviewed_val = [Path(p) for p in state.get("reviewed_val", [])]
        if self.reviewed_val:
            self.use_reviewed_validation_labels(split_images(self.data, self.args.split))
        if self.reviewed:
            self.train_loader = self.labeled_loader_with_reviewed()

    def use_reviewed_validation_labels(self, val_images: list[Path]) -> None:
        """Validate on ``val_images`` with each reviewed one replaced by its link in the reviewed folder (whose
        label file is the person's); the final evaluation reuses the validator's loader."""
        edited = {p.resolve(): p for p in self.reviewed_val}
        listing = self.save_dir / "val_with_reviewed.txt"
        write_image_list(listing, [edited.get(p.resolve(), p) for p in val_images])
        batch = self.test_loader.batch_size
        self.test_loader = self.get_dataloader(str(listing), batch_size=batch, rank=LOCAL_RANK, mode="val")
        self.validator.dataloader = self.test_loader

    def unlabeled_view_dataset(self, folder: str, batch: int) -> UnlabeledYOLODataset:
        """The unlabeled folder through the labeled images' mosaic, affine and flip settings; colour is left to
        the student's strong view, and mixing (mixup, cutmix, copy-paste) needs labels, so they are off."""
        hyp = copy(self.args)
        hyp.hsv_h = hyp.hsv_s = hyp.hsv_v = hyp.mixup = hyp.cutmix = hyp.copy_paste = 0.0
        if self.mosaic_closed:
            hyp.mosaic = 0.0
        return UnlabeledYOLODataset(
            img_path=folder,
            imgsz=self.args.imgsz,
            batch_size=batch,
            augment=True,
            hyp=hyp,
            rect=False,
            stride=int(unwrap_model(self.model).stride.max()),
            prefix="semi.unlabeled: ",
            data=self.data,
        )

    # --- set-up -------------------------------------------------------------------------------------------
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
        its saved state on a resume, and the unlabeled stream; DDP ranks start from rank 0's teacher."""
        self.labeled_train = train_images(self.data)
        state = read_state(self.wdir / STATE_FILE, self.start_epoch - 1, self.device) if self.resume else None
        if state is not None:
            self.restore_reviewed(state)
        super().after_setup()
        self.mean_teacher = self.build_mean_teacher()
        if state is not None:
            self.load_semi_state(state)
            LOGGER.info(f"Resumed teacher, filters, thresholds and the unlabeled stream from {self.wdir / STATE_FILE}")
        self.open_unlabeled_stream()
        broadcast_module(self.mean_teacher.model)
        broadcast_filters(self.mean_teacher.filters)

    def build_mean_teacher(self) -> MeanTeacher:
        s, student = self.semi, unwrap_model(self.model)
        has_dfl = getattr(student.model[-1], "reg_max", 1) > 1
        if s.teacher_flip and not self.args.fliplr:
            LOGGER.warning(
                "semi.teacher_flip with fliplr 0: the teacher averages its outputs on mirrored images, which it was "
                "not trained on; set fliplr > 0 for objects that keep their class when mirrored, else teacher_flip off"
            )
        labeler = TeacherPseudoLabeler(
            build_filters(s.filters, num_classes=self.data["nc"], has_dfl=has_dfl),
            min_score=s.pseudo_min_score,
            nms_iou=s.pseudo_nms_iou,
            amp_dtype=self.amp_dtype(),
            mirror=s.teacher_flip,
            scale=s.teacher_scale,
        )
        teacher = MeanTeacher(
            student,
            labeler,
            student_view(s.unlabeled_view, same_geometry=s.pseudo_targets == "dense", flip=self.args.fliplr),
            decay=self.teacher_decay(),
            tau=s.teacher_tau,
            seed=self.args.seed + max(RANK, 0),
            empty_unlabeled=s.empty_unlabeled,
            pseudo_targets=s.pseudo_targets,
            dense_fraction=s.dense_fraction,
            mixup=s.pseudo_mixup,
            mixup_partners=s.mixup_partners,
            uncertain_targets=s.uncertain_targets,
        )
        teacher.model.criterion = student.criterion  # shared, as the EMA's: the teacher's validation losses
        return teacher

    def amp_dtype(self) -> torch.dtype | None:
        """The student's autocast dtype (``train.amp``, after Ultralytics' AMP check), for the teacher's forward."""
        if not getattr(self, "amp", False):
            return None
        return torch.bfloat16 if self.args.amp == "bf16" else torch.float16

    def teacher_decay(self) -> float:
        """``semi.teacher_decay``, or with ``semi.teacher_half_life`` the decay whose half-life is that share of the
        run's optimizer steps (``semi.max_optimizer_steps``, else epochs x batches / accumulation)."""
        s = self.semi
        if s.teacher_half_life is None:
            return s.teacher_decay
        return 0.5 ** (1 / max(s.teacher_half_life * planned_optimizer_steps(self), 1))

    def resolved_semi(self) -> dict[str, Any]:
        """The base trainer's, with the teacher's decay per step as the run uses it (from the half-life)."""
        return {**super().resolved_semi(), "teacher_decay": self.teacher_decay()}

    def banner(self) -> dict[str, Any]:
        return {
            "unlabeled_images": len(self.unlabeled_images()),
            "teacher_decay": self.teacher_decay(),
            "optimizer_steps": planned_optimizer_steps(self),
        }

    # --- the online step ------------------------------------------------------------------------------------
    @property
    def semi_active(self) -> bool:
        return self.mean_teacher is not None and self.epoch >= self.semi.burn_in

    def preprocess_batch(self, batch: dict) -> dict:
        batch = super().preprocess_batch(batch)
        return self.add_pseudo_labeled(batch) if self.semi_active else batch

    def add_pseudo_labeled(self, batch: dict) -> dict:
        """Step 2 of the module docstring: the next unlabeled batch, labeled by the teacher, appended."""
        images, hidden, self.unlabeled_files = next(self.unlabeled)
        self.unlabeled_consumed += 1
        weak = images.to(self.device, non_blocking=True).float() / 255
        labeled = batch["img"].shape[0]
        batch, detections = self.mean_teacher.extend(batch, weak)
        self.audit.observe(detections, hidden)
        self.steps.images_seen += batch["img"].shape[0] - labeled
        if self.picture_due and "num_labeled" in batch:
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
    def schedule_loss_weights(self) -> None:
        super().schedule_loss_weights()
        s = self.semi
        self.lambda_unsup = ramp_weight(self.epoch, s.lambda_unsup, s.burn_in, s.lambda_unsup_warmup, "linear")
        set_loss_weights(unwrap_model(self.model).criterion, lambda_unsup=self.lambda_unsup)

    @property
    def mosaic_closed(self) -> bool:
        """Ultralytics' rule: no mosaic in the run's last ``close_mosaic`` epochs (for the labeled images, and here
        for the unlabeled view too, so the teacher labels the scale the student now trains at)."""
        epoch = getattr(self, "epoch", self.start_epoch)  # before the first epoch: the one training starts at
        return bool(self.args.close_mosaic) and epoch >= self.epochs - self.args.close_mosaic

    def begin_epoch(self) -> None:
        if self.semi.reviewed:
            self.take_reviewed()
        if self.mosaic_closed and self.unlabeled_mosaic:
            self.open_unlabeled_stream()  # the same order, from where it was, without mosaic
        super().begin_epoch()
        self.picture_due = bool(self.args.plots) and RANK in {-1, 0}  # the epoch's first pseudo-labeled batch
        self.audit.reset()
        self.mean_teacher.filters.reset_counts()

    def end_epoch(self) -> None:
        """Every rank: the epoch's filter counts summed over ranks; a warning if nothing was pseudo-labeled; DSAT's
        thresholds re-estimated on the held-out labeled images."""
        self.filter_counts = sum_counts(self.mean_teacher.filters, self.device)
        if self.semi_active and not self.audit.counts["pseudo_labels"] and RANK in {-1, 0}:
            _warn_no_pseudo_labels(self)
        self.calibrate_dsat()

    def calibrate_dsat(self) -> None:
        dsat = self.mean_teacher.filters.find(DSATFilter)
        if dsat is None or not self.dsat_images or (self.epoch + 1) % dsat.update_every:
            return
        holdout = UnlabeledImages(self.dsat_images, self.args.imgsz)
        batches = unlabeled_batches(holdout, self.batch_size, 0, max_passes=1, shuffle=False)
        self.mean_teacher.calibrate((images.to(self.device).float() / 255, labels) for images, labels, _ in batches)
        broadcast_filters(self.mean_teacher.filters)  # every rank filters with rank 0's thresholds

    def _handle_nan_recovery(self, epoch: int) -> bool:
        """Ultralytics rewinds the student to ``last.pt`` after a non-finite loss or fitness; the teacher and the
        filters go back with it, to the state saved with that checkpoint."""
        if not super()._handle_nan_recovery(epoch):
            return False
        state = read_state(self.wdir / STATE_FILE, epoch - 1, self.device)
        if state is None:
            LOGGER.warning("non-finite loss: the student was rewound to last.pt, the teacher could not be")
            return True
        self.restore_mean_teacher(state)
        LOGGER.warning(f"non-finite loss: teacher and filters rewound with the student to epoch {epoch}")
        return True

    def auto_batch(self) -> int:
        """``train.batch: -1``: Ultralytics' estimate is for labeled images alone; after burn-in a step also carries
        ``unlabeled_ratio`` unlabeled images per labeled one (and the teacher's no-grad forward)."""
        return max(1, int(super().auto_batch() / (1 + self.semi.unlabeled_ratio)))

    # --- metrics ------------------------------------------------------------------------------------------------
    def run_metrics(self) -> dict[str, float]:
        """The base figures, ``lambda_unsup``, the audit, the filters' counts, DSAT's thresholds and the teacher's
        last validation (zeros before the first, as Ultralytics starts its own metrics)."""
        metrics = {**super().run_metrics(), "semi/lambda_unsup": self.lambda_unsup, **self.audit.metrics()}
        if self.mean_teacher is None:
            return metrics
        for key, value in (self.filter_counts or self.mean_teacher.filters.stats()).items():
            metrics[f"semi/{key}"] = value
        dsat = self.mean_teacher.filters.find(DSATFilter)
        if dsat is not None:
            metrics.update({f"semi/thr_{self.data['names'][c]}": float(t) for c, t in enumerate(dsat.thresholds)})
        if self.semi.validate_teacher and not self.teacher_metrics:
            self.teacher_metrics = {_teacher_key(k): 0.0 for k in self.validator.metrics.keys}
        return {**metrics, **self.teacher_metrics}

    def validate(self):
        """The teacher's validation (``teacher/...``), then the student's (its EMA), each table under its name."""
        if self.mean_teacher is not None and self.semi.validate_teacher:
            LOGGER.info(f"{PREFIX}the teacher on the validation images:")
            self.teacher_metrics = self.validate_teacher()
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

    def validate_teacher(self) -> dict[str, float]:
        model = self.mean_teacher.model
        end2end = getattr(model, "end2end", None)  # the validator may switch it; pseudo-labels need it
        try:
            metrics = self.validator(self, model=model) or {}
        finally:
            if end2end is not None:
                model.end2end = end2end
        return {_teacher_key(k): v for k, v in metrics.items() if k.startswith("metrics/")}

    # --- state -----------------------------------------------------------------------------------------------
    def semi_state(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            **self.mean_teacher.state_dict(),
            "unlabeled_consumed": self.unlabeled_consumed,
            "reviewed": [str(p) for p in self.reviewed],
            "reviewed_val": [str(p) for p in self.reviewed_val],
            "semi": self.semi.model_dump(),
        }

    def resume_states(self) -> dict[str, dict[str, Any]]:
        """The base trainer's, plus the teacher, filters and unlabeled stream (``semi_state.pt``)."""
        states = super().resume_states()
        if self.mean_teacher is not None:
            states[STATE_FILE] = self.semi_state()
        return states

    def load_semi_state(self, state: dict[str, Any]) -> None:
        self.restore_mean_teacher(state)
        self.unlabeled_consumed = state.get("unlabeled_consumed", 0)

    def restore_mean_teacher(self, state: dict[str, Any]) -> None:
        """The mean teacher's saved state (written by rank 0). Its strong-view generator is rank 0's, so every
        other DDP rank then seeds its own, ``seed + rank + world * (epoch + 1)``: a stream no rank shares with
        another and none drew before (each started from ``seed + rank``), as they did not share one before the
        resume. Rank 0, and a single process, resume exactly."""
        self.mean_teacher.load_state_dict(state)
        if RANK > 0:
            world = int(os.environ.get("WORLD_SIZE", 1))
            self.mean_teacher.generator.manual_seed(self.args.seed + RANK + world * (state.get("epoch", 0) + 1))


def _teacher_key(metric: str) -> str:
    """``metrics/mAP50(B)`` -> ``teacher/mAP50(B)``."""
    return f"teacher/{metric.split('/', 1)[1]}"


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
