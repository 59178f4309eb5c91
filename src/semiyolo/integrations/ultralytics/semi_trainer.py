"""Online semi-supervised training: an EMA teacher pseudo-labels unlabeled images for the student.

Each step after ``burn_in`` epochs: a labeled batch as Ultralytics loads it, plus an unlabeled batch whose
weak (letterboxed) view the teacher labels (NMS, then the filter chain); the strong view of those images,
with the pseudo-boxes carried through it, joins the labeled images in the student's one forward, and
:class:`SemiSupervisedLoss` weighs the two parts. The teacher is an EMA of the student, updated after each
optimizer step. Seams: ``get_dataset``, ``build_criterion``, ``preprocess_batch``, ``optimizer_step``,
``save_metrics`` and callbacks; no Ultralytics code is patched.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch
from ultralytics.cfg import DEFAULT_CFG
from ultralytics.utils import LOGGER, RANK
from ultralytics.utils.torch_utils import ModelEMA, unwrap_model

from ...config import SemiConfig
from ...errors import ConfigError
from ...metrics import match_detections
from ...pseudo import DSATFilter, build_filters
from ...pseudo.augment import StrongAugment
from ...schedules import ramp_weight
from .distributed import broadcast_filters, broadcast_module, sum_counts
from .pseudo_labeler import TeacherPseudoLabeler
from .resume import read_state
from .semi_criterion import SemiSupervisedLoss
from .trainer import SEMI_ENV, BackgroundPenaltyTrainer, train_images
from .unlabeled import UnlabeledImages, unlabeled_batches

STATE_FILE = "semi_state.pt"


class SemiSupervisedTrainer(BackgroundPenaltyTrainer):
    """``semi.mode: online``. Importable by module path (Ultralytics' DDP launcher needs that); the ``semi``
    settings reach DDP workers through the ``SEMIYOLO_SEMI`` environment variable (JSON)."""

    def __init__(
        self, cfg=DEFAULT_CFG, overrides: dict[str, Any] | None = None, _callbacks=None, semi: SemiConfig | None = None
    ) -> None:
        if semi is None and RANK != -1 and os.environ.get(SEMI_ENV):  # a DDP worker
            semi = SemiConfig.model_validate_json(os.environ[SEMI_ENV])
        semi = semi or SemiConfig(mode="online")
        if not semi.unlabeled:
            raise ConfigError("semi.unlabeled: online mode needs a folder of unlabeled images")
        self.dsat_holdout: list[Path] = []
        super().__init__(cfg, overrides, _callbacks, semi)
        self.teacher: ModelEMA | None = None
        self.lambda_unsup = 0.0
        self.unlabeled_consumed = 0  # batches drawn from the unlabeled stream, for an exact resume
        self.epoch_stats: dict[str, float] = defaultdict(float)
        self.filter_counts: dict[str, float] = {}
        self.add_callback_once("on_pretrain_routine_end", _setup_semi)
        self.add_callback_once("on_train_epoch_start", _start_epoch)
        self.add_callback_once("on_train_epoch_end", _gather_counts)
        self.add_callback_once("on_train_epoch_end", _report_empty_pseudo_labels)
        self.add_callback_once("on_train_epoch_end", _update_dsat)

    # --- data -----------------------------------------------------------------------------------------
    def labeled_dataset(self) -> dict:
        """Ultralytics' dataset; with a ``dsat`` filter, a slice of the labeled train images is held out from
        training for DSAT's threshold estimates (lists written to the run folder)."""
        data = super().labeled_dataset()
        if not any(f.name == "dsat" for f in self.semi.filters):
            return data
        train = train_images(data)
        n_hold = min(200, max(1, round(len(train) * self.semi.dsat_holdout)))
        if len(train) - n_hold < 1:
            raise ConfigError(f"semi.dsat_holdout: {len(train)} labeled train images leave none to train on")
        step = len(train) / n_hold
        held = {int(i * step) for i in range(n_hold)}
        self.dsat_holdout = [p for i, p in enumerate(train) if i in held]
        self.save_dir.mkdir(parents=True, exist_ok=True)
        kept = self.save_dir / "semi_train.txt"
        kept.write_text("\n".join(str(p) for i, p in enumerate(train) if i not in held) + "\n")
        (self.save_dir / "dsat_holdout.txt").write_text("\n".join(map(str, self.dsat_holdout)) + "\n")
        data["train"] = str(kept)
        return data

    # --- the step ---------------------------------------------------------------------------------------
    def build_criterion(self, model):
        return SemiSupervisedLoss(super().build_criterion(model), lambda_unsup=0.0)

    @property
    def semi_active(self) -> bool:
        return self.teacher is not None and self.epoch >= self.semi.burn_in

    def preprocess_batch(self, batch: dict) -> dict:
        batch = super().preprocess_batch(batch)
        return self.add_pseudo_labeled(batch) if self.semi_active else batch

    def add_pseudo_labeled(self, batch: dict) -> dict:
        """Append the strong views of an unlabeled batch, with the teacher's pseudo-labels, to ``batch``."""
        images, hidden, _ = next(self.unlabeled)
        self.unlabeled_consumed += 1
        weak = images.to(self.device, non_blocking=True).float() / 255
        dets = self.labeler(self.teacher.ema, weak)
        self._audit(dets, hidden)
        strong, boxes, kept = self.augment(weak, [d.boxes for d in dets], self.augment_generator)
        if self.semi.empty_unlabeled == "skip":  # images left without pseudo-labels stay out of the loss
            keep = [i for i, k in enumerate(kept) if k.numel()]
            if not keep:
                return batch
            strong, boxes, kept, dets = (
                strong[keep],
                [boxes[i] for i in keep],
                [kept[i] for i in keep],
                [dets[i] for i in keep],
            )
        height, width = batch["img"].shape[-2:]
        if strong.shape[-2:] != (height, width):  # Ultralytics' multi-scale resized the labeled batch
            sx, sy = width / strong.shape[-1], height / strong.shape[-2]
            strong = torch.nn.functional.interpolate(strong, size=(height, width), mode="bilinear", align_corners=False)
            boxes = [b * b.new_tensor([sx, sy, sx, sy]) for b in boxes]
        n_labeled = batch["img"].shape[0]
        self.images_seen += strong.shape[0]
        scale = torch.tensor([width, height, width, height], device=self.device, dtype=torch.float32)
        idx, cls, xywh = [batch["batch_idx"]], [batch["cls"]], [batch["bboxes"]]
        for i, (b, k, d) in enumerate(zip(boxes, kept, dets, strict=True)):
            b = b.to(self.device).float() / scale
            idx.append(torch.full((b.shape[0],), n_labeled + i, device=self.device, dtype=batch["batch_idx"].dtype))
            cls.append(d.classes[k].to(self.device).view(-1, 1).to(batch["cls"].dtype))
            xywh.append(torch.cat(((b[:, :2] + b[:, 2:]) / 2, b[:, 2:] - b[:, :2]), 1).to(batch["bboxes"].dtype))
        batch.update(
            img=torch.cat((batch["img"], strong.to(batch["img"].dtype))),
            batch_idx=torch.cat(idx),
            cls=torch.cat(cls),
            bboxes=torch.cat(xywh),
            num_labeled=n_labeled,
        )
        return batch

    def _audit(self, dets, hidden) -> None:
        s = self.epoch_stats
        s["images"] += len(dets)
        for d, gt in zip(dets, hidden, strict=True):
            s["pseudo_labels"] += len(d)
            s["confidence_sum"] += float(d.scores.sum())
            if gt.numel():
                tp = match_detections(d.boxes.cpu(), d.scores.cpu(), d.classes.cpu(), gt[:, 1:], gt[:, 0].long())
                s["hidden_tp"] += int(tp.sum())
                s["hidden_pl"] += len(d)
                s["hidden_gt"] += gt.shape[0]

    def optimizer_step(self) -> None:
        super().optimizer_step()
        if self.teacher is not None:
            self.teacher.update(self.model)

    def _handle_nan_recovery(self, epoch: int) -> bool:
        """Ultralytics rewinds the student to ``last.pt`` after a non-finite loss or fitness; the teacher and
        the filters go back with it, to the state saved with that checkpoint."""
        if not super()._handle_nan_recovery(epoch):
            return False
        state = read_state(self.wdir / STATE_FILE, epoch - 1, self.device)
        if state is None:
            LOGGER.warning("non-finite loss: the student was rewound to last.pt, the teacher could not be")
            return True
        self.teacher.ema.load_state_dict(state["teacher"])
        self.teacher.updates = state["teacher_updates"]
        self.labeler.filters.load_state_dict(state["filters"])
        LOGGER.warning(f"non-finite loss: teacher and filters rewound with the student to epoch {epoch}")
        return True

    def auto_batch(self, max_num_obj: int = 0, dataset_size: int = 0) -> int:
        """Ultralytics' estimate is for labeled images alone; after burn-in a step also carries
        ``unlabeled_ratio`` unlabeled images per labeled one (and the teacher's no-grad forward)."""
        return max(1, int(super().auto_batch(max_num_obj, dataset_size) / (1 + self.semi.unlabeled_ratio)))

    # --- logging ----------------------------------------------------------------------------------------
    def semi_metrics(self) -> dict[str, float]:
        s, n = self.epoch_stats, max(self.epoch_stats["images"], 1)
        metrics = {
            "semi/lambda_unsup": self.lambda_unsup,
            "semi/pseudo_per_image": s["pseudo_labels"] / n,
            "semi/teacher_conf": s["confidence_sum"] / max(s["pseudo_labels"], 1),
            "semi/pl_precision": s["hidden_tp"] / s["hidden_pl"] if s["hidden_pl"] else float("nan"),
            "semi/pl_recall": s["hidden_tp"] / s["hidden_gt"] if s["hidden_gt"] else float("nan"),
        }
        for key, value in (self.filter_counts or self.labeler.filters.stats()).items():
            metrics[f"semi/{key}"] = value
        dsat = self.labeler.filters.find(DSATFilter)
        if dsat is not None:
            metrics.update({f"semi/thr_{self.data['names'][c]}": float(t) for c, t in enumerate(dsat.thresholds)})
        return metrics

    def save_metrics(self, metrics: dict) -> None:
        super().save_metrics({**metrics, **self.semi_metrics()})

    def validate(self):
        """Ultralytics' validation of the student (its EMA), and the teacher's metrics as ``teacher/...``."""
        teacher = self.validate_teacher() if self.teacher is not None and self.semi.validate_teacher else {}
        metrics, fitness = super().validate()
        return (None, fitness) if metrics is None else ({**metrics, **teacher}, fitness)

    def validate_teacher(self) -> dict[str, float]:
        """The validator runs on ``trainer.ema.ema``: hand it the teacher for one pass."""
        student_ema, self.ema.ema = self.ema.ema, self.teacher.ema
        self.teacher.ema.criterion = unwrap_model(self.model).criterion
        end2end = getattr(self.teacher.ema, "end2end", None)  # the validator may switch it; pseudo-labels need it
        try:
            metrics = self.validator(self) or {}
        finally:
            self.ema.ema, self.teacher.ema.criterion = student_ema, None
            if end2end is not None:
                self.teacher.ema.end2end = end2end
        return {f"teacher/{k.split('/', 1)[1]}": v for k, v in metrics.items() if k.startswith("metrics/")}

    # --- state --------------------------------------------------------------------------------------------
    def semi_state(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "teacher": self.teacher.ema.state_dict(),
            "teacher_updates": self.teacher.updates,
            "filters": self.labeler.filters.state_dict(),
            "unlabeled_consumed": self.unlabeled_consumed,
            "augment_generator": self.augment_generator.get_state(),
            "semi": self.semi.model_dump(),
        }

    def resume_states(self) -> dict[str, dict[str, Any]]:
        """Ultralytics' and the base trainer's, plus the teacher, filters and unlabeled stream (``semi_state.pt``)."""
        states = super().resume_states()
        if self.teacher is not None:
            states[STATE_FILE] = self.semi_state()
        return states

    def load_semi_state(self, state: dict[str, Any]) -> None:
        self.teacher.ema.load_state_dict(state["teacher"])
        self.teacher.updates = state["teacher_updates"]
        self.labeler.filters.load_state_dict(state["filters"])
        self.unlabeled_consumed = state.get("unlabeled_consumed", 0)
        if "augment_generator" in state:
            self.augment_generator.set_state(state["augment_generator"].cpu())


def _setup_semi(trainer: SemiSupervisedTrainer) -> None:
    """After Ultralytics' setup and resume: teacher, pseudo-labeler, unlabeled stream, restored state."""
    s = trainer.semi
    model = unwrap_model(trainer.model)
    head = model.model[-1]
    trainer.labeler = TeacherPseudoLabeler(
        build_filters(s.filters, num_classes=trainer.data["nc"], has_dfl=getattr(head, "reg_max", 1) > 1),
        min_score=s.pseudo_min_score,
        nms_iou=s.pseudo_nms_iou,
    )
    trainer.teacher = ModelEMA(model, decay=s.teacher_decay, tau=s.teacher_tau or 1.0)
    if not s.teacher_tau:  # no warm-up ramp: the teacher starts from trained weights and keeps them
        trainer.teacher.decay = lambda updates: s.teacher_decay
    trainer.teacher.ema.criterion = None
    trainer.augment = StrongAugment()
    trainer.augment_generator = torch.Generator().manual_seed(trainer.args.seed + max(RANK, 0))
    state_file = trainer.wdir / STATE_FILE
    state = read_state(state_file, trainer.start_epoch - 1, trainer.device) if trainer.resume else None
    if state is not None:
        trainer.load_semi_state(state)
        LOGGER.info(f"Resumed teacher, filters, thresholds and the unlabeled stream from {state_file}")
    world = int(os.environ.get("WORLD_SIZE", 1))
    unlabeled_batch = max(1, round(trainer.batch_size * s.unlabeled_ratio / max(world, 1)))
    dataset = UnlabeledImages.from_folder(s.unlabeled, trainer.args.imgsz)
    trainer.unlabeled = unlabeled_batches(
        dataset, unlabeled_batch, trainer.args.seed, RANK, world, skip=trainer.unlabeled_consumed
    )
    broadcast_module(trainer.teacher.ema)
    broadcast_filters(trainer.labeler.filters)


def _start_epoch(trainer: SemiSupervisedTrainer) -> None:
    s = trainer.semi
    trainer.lambda_unsup = ramp_weight(trainer.epoch, s.lambda_unsup, s.burn_in, s.lambda_unsup_warmup, "linear")
    unwrap_model(trainer.model).criterion.lambda_unsup = trainer.lambda_unsup
    trainer.epoch_stats.clear()
    trainer.labeler.filters.reset_counts()


def _gather_counts(trainer: SemiSupervisedTrainer) -> None:
    """Every rank: the epoch's kept / dropped counts summed over ranks, kept for the log."""
    trainer.filter_counts = sum_counts(trainer.labeler.filters, trainer.device)


def _report_empty_pseudo_labels(trainer: SemiSupervisedTrainer) -> None:
    """The commonest question about teacher-student training: why is the unsupervised loss all background?"""
    if not trainer.semi_active or trainer.epoch_stats["pseudo_labels"] or RANK not in {-1, 0}:
        return
    counts = ", ".join(f"{k} {v:g}" for k, v in trainer.filter_counts.items())
    dsat = trainer.labeler.filters.find(DSATFilter)
    thresholds = f"; DSAT thresholds {[round(float(t), 3) for t in dsat.thresholds]}" if dsat is not None else ""
    LOGGER.warning(
        f"epoch {trainer.epoch + 1}: no pseudo-label survived on {trainer.epoch_stats['images']:g} unlabeled images "
        f"(filters: {counts or 'no candidate above semi.pseudo_min_score'}{thresholds}); the unsupervised loss "
        f"only taught background. The teacher may need a longer burn_in, or the filters lower thresholds."
    )


def _update_dsat(trainer: SemiSupervisedTrainer) -> None:
    """Re-estimate DSAT's thresholds from the teacher on the held-out labeled images."""
    dsat = trainer.labeler.filters.find(DSATFilter)
    if dsat is None or not trainer.dsat_holdout or (trainer.epoch + 1) % dsat.update_every:
        return
    holdout = UnlabeledImages(trainer.dsat_holdout, trainer.args.imgsz)
    scores, classes, tps, gts = [], [], [], []
    for images, labels, _ in unlabeled_batches(holdout, trainer.batch_size, 0, max_passes=1, shuffle=False):
        dets = trainer.labeler.detect(trainer.teacher.ema, images.to(trainer.device).float() / 255)
        for d, gt in zip(dets, labels, strict=True):
            tps.append(match_detections(d.boxes.cpu(), d.scores.cpu(), d.classes.cpu(), gt[:, 1:], gt[:, 0].long()))
            scores.append(d.scores.cpu())
            classes.append(d.classes.cpu())
            gts.append(gt[:, 0].long())
    dsat.update(torch.cat(scores), torch.cat(classes), torch.cat(tps), torch.cat(gts))
    broadcast_filters(trainer.labeler.filters)  # every rank filters with rank 0's thresholds
