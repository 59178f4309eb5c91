"""The online trainer's teacher-side parts: the mean teacher built from the run's settings, its state restored on
every DDP rank, DSAT's calibration on held-out labeled images, and the teacher's validation beside the student's.

Each part holds the trainer it serves and is called by :class:`~.online.OnlineTrainer` at a named point of
Ultralytics' loop; what a part must keep across a resume is in its ``state_dict`` (:mod:`.online_data` has the
data-side parts).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from ultralytics.utils import LOGGER, RANK
from ultralytics.utils.torch_utils import unwrap_model

from ...config import SemiConfig
from ...data import held_out_train, train_images
from ...errors import ConfigError
from ...pixels import to_unit_range
from ...pseudo import (
    DSATFilter,
    TrustCounts,
    TrustWeights,
    build_filters,
    coverage_floor,
    trust_weights,
    uses_dense_targets,
)
from ...pseudo.augment import student_view
from ...teacher import MeanTeacher, TeacherPseudoLabeler
from .distributed import broadcast_filters, broadcast_object
from .semi_criterion import set_trust
from .unlabeled import UnlabeledImages, unlabeled_batches

DSAT_MAX_IMAGES = 200  # labeled images DSAT calibrates on, at most
LOWEST_FLOOR = 0.01  # semi.negative_coverage never sets the uncertain tier's floor below this


def teacher_decay(semi: SemiConfig, optimizer_steps: Callable[[], int]) -> float:
    """``semi.teacher_decay``, or with ``semi.teacher_half_life`` the per-step decay whose half-life is that share
    of the run's ``optimizer_steps()`` (asked for only then), at least ``semi.teacher_min_half_life`` steps
    (:func:`teacher_half_life_steps`): ``0.5 ** (1 / half_life)``."""
    if semi.teacher_half_life is None:
        return semi.teacher_decay
    return 0.5 ** (1 / teacher_half_life_steps(semi, optimizer_steps()))


def teacher_half_life_steps(semi: SemiConfig, optimizer_steps: int) -> float:
    """The teacher's half-life in optimizer steps over a run of ``optimizer_steps``: ``semi.teacher_half_life`` of
    them, at least ``semi.teacher_min_half_life`` (where given) and 1."""
    return max(semi.teacher_half_life * optimizer_steps, semi.teacher_min_half_life or 1)


def build_mean_teacher(trainer) -> MeanTeacher:
    """The mean teacher of ``trainer``'s student (``trainer.model``), with the labeler, strong view and targets
    its ``semi`` settings name; it shares the student's criterion, as Ultralytics' EMA does."""
    s, student = trainer.semi, unwrap_model(trainer.model)
    has_dfl = getattr(student.model[-1], "reg_max", 1) > 1
    if s.teacher_flip and not trainer.args.fliplr:
        LOGGER.warning(
            "semi.teacher_flip with fliplr 0: the teacher averages its outputs on mirrored images, which it was "
            "not trained on; set fliplr > 0 for objects that keep their class when mirrored, else teacher_flip off"
        )
    labeler = TeacherPseudoLabeler(
        build_filters(s.filters, num_classes=trainer.data["nc"], has_dfl=has_dfl),
        min_score=s.pseudo_min_score,
        nms_iou=s.pseudo_nms_iou,
        amp_dtype=trainer.amp_dtype(),
        mirror=s.teacher_flip,
        scale=s.teacher_scale,
        fusion=s.teacher_fusion,
        more_scales=tuple(s.teacher_scales),
    )
    teacher = MeanTeacher(
        student,
        labeler,
        student_view(s.unlabeled_view, same_geometry=uses_dense_targets(s.pseudo_targets), flip=trainer.args.fliplr),
        decay=trainer.teacher_decay(),
        tau=s.teacher_tau,
        seed=trainer.args.seed + max(RANK, 0),
        empty_unlabeled=s.empty_unlabeled,
        pseudo_targets=s.pseudo_targets,
        dense_fraction=s.dense_fraction,
        mixup=s.pseudo_mixup,
        mixup_partners=s.mixup_partners,
        mixup_max_overlap=s.mixup_max_overlap,
        uncertain_targets=s.uncertain_targets,
        cut_objects=s.cut_objects,
        agreement=s.teacher_agreement,
        mosaic=s.pseudo_mosaic,
        mosaic_cache=s.mosaic_cache,
        relabel_every=s.relabel_every,
        oracle=s.oracle_pseudo_labels,
    )
    teacher.model.criterion = student.criterion  # shared, as the EMA's: the teacher's validation losses
    return teacher


def restore_mean_teacher(teacher: MeanTeacher, state: dict[str, Any], seed: int, epoch: int) -> None:
    """``teacher``'s saved ``state`` (written by rank 0 at ``epoch``, 0-based). Its strong-view generator is rank
    0's, so every other DDP rank then seeds its own, ``seed + rank + world * (epoch + 1)``: a stream no rank shares
    with another and none drew before (each started from ``seed + rank``), as they did not share one before the
    resume. Rank 0, and a single process, resume exactly."""
    teacher.load_state_dict(state)
    if RANK > 0:
        world = int(os.environ.get("WORLD_SIZE", 1))
        teacher.generator.manual_seed(seed + RANK + world * (epoch + 1))


class DsatCalibration:
    """DSAT's thresholds (a ``dsat`` filter), re-estimated every ``update_every`` epochs on labeled images: a
    held-out slice of the labeled training images (``semi.dsat_holdout``, lists in the run folder), or with
    ``dsat_holdout: 0`` up to :data:`DSAT_MAX_IMAGES` of them, evenly spaced, still trained on. The held-out slice
    is the trust estimate's too (:class:`TrustEstimate`)."""

    def __init__(self, trainer) -> None:
        self.trainer = trainer
        self.images: list[Path] = []

    def hold_out(self, data: dict) -> dict:
        """Ultralytics' dataset ``data``, less the held-out images where there are any (before the loaders)."""
        semi = self.trainer.semi
        if not any(f.name == "dsat" for f in semi.filters) and semi.pseudo_trust != "holdout":
            return data
        if semi.dsat_holdout == 0:
            images = train_images(data)
            self.images = evenly_spaced(images, DSAT_MAX_IMAGES)
            return data
        try:
            data, self.images = held_out_train(data, semi.dsat_holdout, self.trainer.save_dir, DSAT_MAX_IMAGES)
        except ValueError as err:
            raise ConfigError(f"semi.dsat_holdout: {err}") from None
        return data

    def end_epoch(self, teacher: MeanTeacher) -> None:
        """After an epoch whose number DSAT updates on: the teacher's thresholds, the same on every rank."""
        t = self.trainer
        dsat = teacher.filters.find(DSATFilter)
        if dsat is None or not self.images or (t.epoch + 1) % dsat.update_every:
            return
        holdout = UnlabeledImages(self.images, t.args.imgsz)
        batches = unlabeled_batches(holdout, t.batch_size, 0, max_passes=1, shuffle=False)
        teacher.calibrate((to_unit_range(images.to(t.device)), labels) for images, labels, _ in batches)
        broadcast_filters(teacher.filters)  # every rank filters with rank 0's thresholds

    def metrics(self, teacher: MeanTeacher) -> dict[str, float]:
        """``semi/thr_<class>``: the thresholds now."""
        dsat = teacher.filters.find(DSATFilter)
        names = self.trainer.data["names"]
        return {} if dsat is None else {f"semi/thr_{names[c]}": float(t) for c, t in enumerate(dsat.thresholds)}


def evenly_spaced(images: list[Path], most: int) -> list[Path]:
    """At most about ``most`` of ``images``, every ``ceil(len / most)``-th from the first."""
    return images[:: max(1, math.ceil(len(images) / most))]


class TrustEstimate:
    """``semi.pseudo_trust``: at the start of every epoch with pseudo-labels, the teacher labels labeled images the
    student is not fitted on (``images()``: :class:`DsatCalibration`'s held-out ones, or the validation images,
    ``where`` in the log) and the pseudo-labeled part of the loss is weighed by what its precision, coverage and
    localisation there justify (:mod:`semiyolo.pseudo.trust`). The estimate depends only on the
    teacher and the filters, so a resumed run measures the same one again."""

    def __init__(self, trainer, images: Callable[[], list[Path]], where: str) -> None:
        self.trainer, self.images, self.where = trainer, images, where
        self.counts: TrustCounts | None = None
        self.weights: TrustWeights | None = None
        self.floor: float | None = None  # the uncertain tier's floor the last estimate set (negative_coverage)

    def measure(self, teacher: MeanTeacher) -> None:
        """The uncertain tier's floor first (``semi.negative_coverage``), then the counts and weights at it."""
        t = self.trainer
        holdout = UnlabeledImages(self.images(), t.args.imgsz)
        if t.semi.negative_coverage is not None:
            self.set_uncertain_floor(teacher, holdout)
        counts = teacher.measure_trust(self._batches(holdout), t.data["nc"])
        self.counts = broadcast_object(counts)  # every rank weighs by rank 0's estimate (kernels may differ)
        self.weights = trust_weights(self.counts)
        set_trust(unwrap_model(t.model).criterion, self.weights)
        if RANK in {-1, 0}:
            LOGGER.info(f"epoch {t.epoch + 1}: {self.summary(len(holdout))}")

    def _batches(self, holdout: UnlabeledImages):
        """``(images in [0, 1] on the device, labels)`` of ``holdout``, once through, in order."""
        t = self.trainer
        batches = unlabeled_batches(holdout, t.batch_size, 0, max_passes=1, shuffle=False)
        return ((to_unit_range(images.to(t.device)), labels) for images, labels, _ in batches)

    def set_uncertain_floor(self, teacher: MeanTeacher, holdout: UnlabeledImages) -> None:
        """Teacher-sure negatives: the labeler's candidate floor (the uncertain tier's) at the highest score that
        keeps ``semi.negative_coverage`` of the trust images' objects under a detection
        (:func:`~semiyolo.pseudo.coverage_floor`), between :data:`LOWEST_FLOOR` and ``semi.pseudo_min_score``."""
        semi = self.trainer.semi
        best = teacher.object_best_scores(self._batches(holdout), LOWEST_FLOOR)
        floor = coverage_floor(best, semi.negative_coverage, LOWEST_FLOOR, semi.pseudo_min_score)
        teacher.labeler.min_score = broadcast_object(floor)
        self.floor = teacher.labeler.min_score

    def figures(self) -> dict[str, float]:
        """The measured rates of every class together, and each weight averaged over the classes by their
        held-out objects; zeros before the first estimate (the columns of results.csv stay the same)."""
        if self.counts is None or self.weights is None:
            return dict.fromkeys(TRUST_FIGURES, 0.0)
        rates = {k: float(v) for k, v in self.counts.pooled().rates().items()}
        share = self.counts.objects.float() / self.counts.objects.sum().clamp(min=1)
        weights = {k: float((getattr(self.weights, k) * share).sum()) for k in ("positive", "negative", "box")}
        return {**rates, **{f"weight_{k}": v for k, v in weights.items()}}

    def summary(self, n_images: int) -> str:
        f = self.figures()
        floor = "" if self.floor is None else f"; uncertain floor {self.floor:.3g}"
        return (
            f"pseudo-labels on {n_images} {self.where} images: precision {f['precision']:.2f}, recall "
            f"{f['recall']:.2f}, coverage {f['coverage']:.2f}, IoU {f['localisation']:.2f}; unlabeled weights: "
            f"positives {f['weight_positive']:.2f}, negatives {f['weight_negative']:.2f}, boxes {f['weight_box']:.2f}"
            f"{floor}"
        )

    def metrics(self) -> dict[str, float]:
        """``semi/trust_<figure>`` for results.csv and the loggers; with ``semi.negative_coverage`` the floor it set
        (``semi/uncertain_floor``, the configured one before the first estimate)."""
        metrics = {f"semi/trust_{k}": v for k, v in self.figures().items()}
        if self.trainer.semi.negative_coverage is not None:
            metrics["semi/uncertain_floor"] = self.trainer.semi.pseudo_min_score if self.floor is None else self.floor
        return metrics


TRUST_FIGURES = (
    "precision",
    "recall",
    "coverage",
    "localisation",
    "weight_positive",
    "weight_negative",
    "weight_box",
)  # TrustEstimate.figures' keys


class TeacherValidation:
    """``semi.validate_teacher``: the teacher validated on the validation images before the student (its EMA),
    its figures as ``teacher/...`` columns (zeros before the first, as Ultralytics starts its own metrics)."""

    def __init__(self, trainer) -> None:
        self.trainer = trainer
        self.metrics: dict[str, float] = {}  # the last validation's

    def validate(self, teacher: MeanTeacher) -> None:
        model = teacher.model
        end2end = getattr(model, "end2end", None)  # the validator may switch it; pseudo-labels need it
        try:
            found = self.trainer.validator(self.trainer, model=model) or {}
        finally:
            if end2end is not None:
                model.end2end = end2end
        self.metrics = {teacher_key(k): v for k, v in found.items() if k.startswith("metrics/")}

    def run_metrics(self) -> dict[str, float]:
        if not self.metrics:
            self.metrics = {teacher_key(k): 0.0 for k in self.trainer.validator.metrics.keys}
        return self.metrics


def teacher_key(metric: str) -> str:
    """``metrics/mAP50(B)`` -> ``teacher/mAP50(B)``."""
    return f"teacher/{metric.split('/', 1)[1]}"


def amp_dtype(enabled: bool, amp: Any) -> torch.dtype | None:
    """The student's autocast dtype (``train.amp`` after Ultralytics' AMP check), for the teacher's forward."""
    if not enabled:
        return None
    return torch.bfloat16 if amp == "bf16" else torch.float16
