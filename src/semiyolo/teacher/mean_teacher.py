"""The mean-teacher unit: a teacher that follows the student, labels the weak view of unlabeled images, and hands
the student a strong view of them with the pseudo-boxes carried through (torch only).

The host trainer calls it at two points: :meth:`MeanTeacher.extend` when a labeled batch is ready (it appends
the pseudo-labeled images), and :meth:`MeanTeacher.update` after each optimizer step. Everything it must keep
for an exact resume, or for rewinding after a non-finite loss, is in one :meth:`MeanTeacher.state_dict`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor, nn

from ..batch import append_pseudo_labeled, append_pseudo_targets, num_labeled
from ..metrics import match_detections
from ..pseudo import (
    PSEUDO_TARGETS,
    BatchedDetections,
    DenseTargets,
    Detections,
    DSATFilter,
    FilterChain,
    Tiers,
    TrustCounts,
    agreement_conflict,
    batched_soft_targets,
    count_trust,
    dense_geometry_conflict,
    object_best_scores,
    soft_targets,
    soft_uncertain,
    split_tiers,
    tiers_by_agreement,
    uses_dense_targets,
    view_agreement,
)
from ..pseudo.augment import CUT_OBJECTS, BatchedStrongView, StrongAugment
from .ema import TeacherEMA
from .labeler import TeacherPseudoLabeler, per_anchor
from .mixup import check_mixup, draw_blend_partners, mix_pseudo_labeled
from .mosaic import MosaicCache, check_mosaic, mosaic_rows

EMPTY_UNLABELED = ("background", "skip")  # an image left without pseudo-labels: all background, or left out
AGREEMENT_DEMOTED = "agreement_demoted"  # the count of reliable pseudo-labels a view missed (semi/agreement_demoted)
MIXUP_REFUSED = "mixup_refused"  # the count of drawn mixup partners mixup_max_overlap refused (semi/mixup_refused)
MOSAICS = "mosaics"  # the count of pseudo-labeled images made into a mosaic (semi/mosaics)


class MeanTeacher:
    """Teacher EMA + pseudo-labeler + strong view.

    Args:
        student: the de-paralleled student; the teacher starts equal to it.
        labeler: detection post-processing and the filter chain.
        augment: the student's strong view.
        decay, tau: the teacher's EMA (:class:`TeacherEMA`).
        seed: seeds the strong view's generator (one per DDP rank: give ``seed + rank``).
        empty_unlabeled: ``background`` keeps an image without pseudo-labels (all its anchors are background
            targets); ``skip`` leaves it out of the batch.
        pseudo_targets: ``hard`` (the filter chain keeps or deletes each detection), ``tiered``
            (:mod:`semiyolo.pseudo.tiers`: reliable, regressed and uncertain detections) or ``dense``
            (:mod:`semiyolo.pseudo.dense`: the teacher's per-anchor scores and boxes; ``augment`` must keep the
            geometry).
        dense_fraction: with dense targets, the share of each image's anchors that get targets; ``None``: as many
            as the labeled images' foreground anchors (the criterion counts them).
        mixup: the probability that a pseudo-labeled image is blended with a partner (:mod:`.mixup`); not with
            dense targets, which map the teacher's anchors to the student's one image at a time.
        mixup_partners: ``pseudo`` (another pseudo-labeled image) or ``labeled``.
        mixup_max_overlap: object-aware blending (:func:`~.mixup.draw_blend_partners`): no partner with a box that
            overlaps one of the image's own at an IoU above it; the filters count the partners it refuses
            (``mixup_refused``). ``None``: any partner.
        uncertain_targets: with tiered targets, ``ignore`` (the uncertain tier is neither positive nor negative) or
            ``soft`` (it is a target too, its classification target scaled by the teacher's score, never
            regressed; the anchors of its box the assigner leaves out stay ignored).
        cut_objects: a detection the strong view cuts (it keeps under ``augment.min_area_kept`` of its area, or
            under 2 pixels a side): ``drop`` (its visible part is background) or ``ignore`` (its visible part is an
            ignore region, where it would have been a target, or with tiered targets an ignore region, had it been
            kept). No effect with dense targets, whose view keeps the geometry.
        agreement: with the labeler's flip ensemble and tiered targets, the tiers follow the agreement of the
            teacher's views (:mod:`semiyolo.pseudo.agreement`): a reliable detection a view misses is uncertain, a
            regressed one whose views' boxes disagree is not regressed; the filters count ``agreement_demoted``.
        mosaic: the probability that a pseudo-labeled image becomes a mosaic of itself and three pseudo-labeled
            images of earlier batches at half scale (:mod:`.mosaic`), before any blend; not with dense targets. The
            filters count ``mosaics``.
        mosaic_cache: how many earlier pseudo-labeled images the mosaics draw from.
    """

    def __init__(
        self,
        student: nn.Module,
        labeler: TeacherPseudoLabeler,
        augment: StrongAugment | None = None,
        decay: float = 0.999,
        tau: float = 0.0,
        seed: int = 0,
        empty_unlabeled: str = "background",
        pseudo_targets: str = "hard",
        dense_fraction: float | None = None,
        mixup: float = 0.0,
        mixup_partners: str = "pseudo",
        uncertain_targets: str = "ignore",
        cut_objects: str = "drop",
        agreement: bool = False,
        mixup_max_overlap: float | None = None,
        mosaic: float = 0.0,
        mosaic_cache: int = 32,
    ) -> None:
        if empty_unlabeled not in EMPTY_UNLABELED:
            raise ValueError(f"empty_unlabeled must be one of {EMPTY_UNLABELED}, got {empty_unlabeled!r}")
        if pseudo_targets not in PSEUDO_TARGETS:
            raise ValueError(f"pseudo_targets must be one of {PSEUDO_TARGETS}, got {pseudo_targets!r}")
        augment = augment or StrongAugment()
        conflict = dense_geometry_conflict(
            pseudo_targets,
            pseudo_mixup=mixup,
            pseudo_mosaic=mosaic,
            teacher_scale=labeler.scale,
            view_moves_boxes=augment.moves_boxes,
        )
        if conflict:
            raise ValueError(conflict)
        check_mixup(mixup, mixup_partners)
        check_mosaic(mosaic, mosaic_cache)
        self.mosaic, self.mosaic_cache = mosaic, MosaicCache(mosaic_cache)
        if mosaic:
            labeler.filters.count(MOSAICS, 0)
        if cut_objects not in CUT_OBJECTS:
            raise ValueError(f"cut_objects must be one of {CUT_OBJECTS}, got {cut_objects!r}")
        self.cut_objects = cut_objects
        conflict = agreement_conflict(agreement, labeler.mirror, pseudo_targets)
        if conflict:
            raise ValueError(conflict)
        self.agreement = agreement
        if agreement:
            labeler.filters.count(AGREEMENT_DEMOTED, 0)
        self.soft_uncertain = soft_uncertain(uncertain_targets, pseudo_targets)
        self.mixup, self.mixup_partners, self.mixup_max_overlap = mixup, mixup_partners, mixup_max_overlap
        if mixup and mixup_max_overlap is not None:
            labeler.filters.count(MIXUP_REFUSED, 0)
        self.pseudo_targets, self.dense_fraction = pseudo_targets, dense_fraction
        self.ema = TeacherEMA(student, decay=decay, tau=tau)
        self.labeler, self.augment = labeler, augment
        self.generator = torch.Generator().manual_seed(seed)
        self.empty_unlabeled = empty_unlabeled
        self.stage_clock: Callable[[str], None] | None = None  # called as each stage of extend ends (benchmarks)

    @property
    def model(self) -> nn.Module:
        """The teacher network (eval mode, no gradients)."""
        return self.ema.model

    @property
    def filters(self) -> FilterChain:
        return self.labeler.filters

    def pseudo_label(self, weak: Tensor) -> list[Detections]:
        """The teacher's filtered detections on ``weak: Tensor[U, 3, S, S]`` in [0, 1], xyxy pixels."""
        return self.labeler(self.model, weak)

    def label(self, images: Tensor, count: bool = True) -> tuple[list[Detections], list[Tiers]]:
        """The teacher's detections on ``images: Tensor[B, 3, H, W]`` in [0, 1] (after NMS, xyxy pixels) and their
        tiers (:func:`~semiyolo.pseudo.split_tiers`), with ``agreement`` after the views' agreement
        (:func:`~semiyolo.pseudo.tiers_by_agreement`); with ``count``, the filters count what they kept and dropped
        and the reliable detections the agreement demoted."""
        tiered = self.pseudo_targets == "tiered"
        if not self.agreement:
            candidates = self.labeler.detect(self.model, images)
            return candidates, [split_tiers(self.filters, d, tiered, count) for d in candidates]
        candidates, views = self.labeler.detect_views(self.model, images)
        tiers = []
        for dets, each_view in zip(candidates, views, strict=True):
            filtered = split_tiers(self.filters, dets, tiered, count)
            boxes, classes = [v.boxes for v in each_view], [v.classes for v in each_view]
            agreement = view_agreement(dets.boxes, dets.classes, boxes, classes)
            tiers.append(tiers_by_agreement(filtered, agreement))
            if count:
                self.filters.count(AGREEMENT_DEMOTED, int((filtered.reliable & ~tiers[-1].reliable).sum()))
        return candidates, tiers

    def label_batched(self, images: Tensor, count: bool = True) -> tuple[BatchedDetections, Tiers]:
        """:meth:`label`'s detections and tiers for the whole batch at once (masks over its rows). With
        ``agreement`` the tiers still follow each image's views one image at a time (:meth:`label`), then join."""
        if self.agreement:
            candidates, tiers = self.label(images, count)
            self._clock("teacher forward, NMS, filters, tiers, agreement")
            return BatchedDetections.from_list(candidates), _joined_tiers(tiers)
        decoded, raw = self.labeler.forward(self.model, images)
        self._clock("teacher forward")
        dets = self.labeler.postprocess_batched(*per_anchor(decoded), raw)
        self._clock("candidates, NMS")
        tiers = split_tiers(self.filters, dets, self.pseudo_targets == "tiered", count)
        self._clock("filters, tiers")
        return dets, tiers

    def extend(self, batch: dict, weak: Tensor, batched: bool = True) -> tuple[dict, list[Detections]]:
        """``batch`` with the strong views of ``weak`` appended, labeled by the teacher
        (:func:`~semiyolo.batch.append_pseudo_targets`); and the reliable pseudo-labels of every weak image, for the
        audit.

        Every detection goes through the strong view; reliable ones become targets; with tiered targets, regressed
        or not, and the uncertain ones ignore regions (:func:`~semiyolo.pseudo.split_tiers`); with ``cut_objects:
        ignore``, so are the visible parts of those the view cuts (:func:`_cut_regions`). The whole batch's
        detections at once (:meth:`label_batched`); ``batched=False``: image by image, the same batch (the
        reference). Dense: see :meth:`extend_dense`."""
        if uses_dense_targets(self.pseudo_targets):
            return self.extend_dense(batch, weak)
        if not batched:
            return self._extend_per_image(batch, weak)
        dets, tiers = self.label_batched(weak)
        view = self.augment.view_batched(weak, dets.boxes, dets.image, self.generator)
        self._clock("strong view")
        reliable = dets.select(tiers.reliable).split()
        extended = self._append_batched(batch, dets, tiers, view)
        self._clock("targets, assembly")
        if extended is None:
            return batch, reliable
        extended = self._blend(self._tile(extended))
        self._clock("mosaic, mixup")
        return extended, reliable

    def _append_batched(
        self, batch: dict, dets: BatchedDetections, tiers: Tiers, view: BatchedStrongView
    ) -> dict | None:
        """``batch`` with the images of ``view`` that join it and their targets (:func:`_targets_in_view`), all
        images' at once; ``None`` when no image joins."""
        in_view = view.kept & tiers.reliable
        joins = self._images_joining(torch.bincount(dets.image[in_view], minlength=dets.num_images))
        if not bool(joins.any()):
            return None
        position = joins.cumsum(0) - 1  # each joining image's index among those appended
        targets, weights = _targets_in_view(dets, tiers, view, self.soft_uncertain)
        targets &= joins[dets.image]
        tiered = self.pseudo_targets == "tiered"
        ignored = _ignore_regions(dets, tiers, view, tiered, self.cut_objects == "ignore")
        if ignored is not None:
            image, boxes = ignored
            ignored = position[image[joins[image]]], boxes[joins[image]]
        return append_pseudo_targets(
            batch,
            view.images[joins],
            position[dets.image[targets]],
            view.boxes[targets],
            dets.classes[targets],
            tiers.regressed[targets] if tiered else None,
            ignored,
            weights[targets] if weights is not None else None,
            in_fmt="xyxy",
        )

    def _extend_per_image(self, batch: dict, weak: Tensor) -> tuple[dict, list[Detections]]:
        """:meth:`extend` image by image (the reference of the batched path)."""
        tiered = self.pseudo_targets == "tiered"
        candidates, tiers = self.label(weak)
        view = self.augment.view(weak, [d.boxes for d in candidates], self.generator)
        views = [
            _tiers_in_view(d, t, b, k, self.soft_uncertain)
            for d, t, b, k in zip(candidates, tiers, view.boxes, view.kept, strict=True)
        ]
        keep = self._images_to_keep([int(t.reliable[k].sum()) for t, k in zip(tiers, view.kept, strict=True)])
        reliable = [d.select(t.reliable) for d, t in zip(candidates, tiers, strict=True)]
        if not keep:
            return batch, reliable
        boxes, classes, regressed, ignored, weights = (list(x) for x in zip(*(views[i] for i in keep), strict=True))
        if not tiered:
            regressed = ignored = None
        if self.cut_objects == "ignore":
            cut = [_cut_regions(tiers[i], view.cut[i], view.cut_boxes[i], tiered) for i in keep]
            ignored = cut if ignored is None else [torch.cat(pair) for pair in zip(ignored, cut, strict=True)]
        weights = weights if self.soft_uncertain else None
        extended = append_pseudo_labeled(
            batch, view.images[keep], boxes, classes, regressed, ignored, weights, in_fmt="xyxy"
        )
        return self._blend(self._tile(extended)), reliable

    def extend_dense(self, batch: dict, weak: Tensor) -> tuple[dict, list[Detections]]:
        """``batch`` with the photometric strong views of ``weak`` appended and the teacher's per-anchor outputs
        (:class:`~semiyolo.pseudo.DenseTargets`) under ``dense_targets``, which the criterion uses in place of the
        pseudo-labeled images' boxes; those boxes are the filtered detections, there for the pictures. Every image
        joins. Returns the filtered detections too, for the audit."""
        if weak.shape[-2:] != batch["img"].shape[-2:]:
            raise ValueError(
                f"dense pseudo-targets need the unlabeled images at the labeled batch's size "
                f"{tuple(batch['img'].shape[-2:])}, got {tuple(weak.shape[-2:])} (no multi-scale training with them)"
            )
        decoded, raw = self.labeler.forward(self.model, weak)
        probs, boxes = per_anchor(decoded)
        reliable = [self.filters(d) for d in self.labeler.postprocess(probs, boxes, raw)]
        dense = DenseTargets(probs, boxes, floor=self.labeler.min_score, fraction=self.dense_fraction)
        strong, boxes, kept = self.augment(weak, [d.boxes for d in reliable], self.generator)
        classes = [d.classes[k] for d, k in zip(reliable, kept, strict=True)]
        return append_pseudo_labeled(batch, strong, boxes, classes, dense=dense, in_fmt="xyxy"), reliable

    def _tile(self, batch: dict) -> dict:
        """``batch`` with some pseudo-labeled images made mosaics (:mod:`.mosaic`), if ``mosaic``."""
        if not self.mosaic:
            return batch
        rows = torch.arange(num_labeled(batch), batch["img"].shape[0])
        batch, made = mosaic_rows(batch, self.mosaic_cache, rows, self.mosaic, self.generator)
        self.filters.count(MOSAICS, made)
        return batch

    def _blend(self, batch: dict) -> dict:
        """``batch`` with its pseudo-labeled images blended with their partners (:mod:`.mixup`), if ``mixup``."""
        if not self.mixup:
            return batch
        partners, refused = draw_blend_partners(
            batch, self.mixup, self.mixup_partners, self.generator, self.mixup_max_overlap
        )
        if self.mixup_max_overlap is not None:
            self.filters.count(MIXUP_REFUSED, refused)
        return mix_pseudo_labeled(batch, partners)

    def _images_joining(self, targets_per_image: Tensor) -> Tensor:
        """``Tensor[B]`` bool: :meth:`_images_to_keep` of ``targets_per_image: Tensor[B]``."""
        if self.empty_unlabeled == "skip":
            return targets_per_image > 0
        return torch.ones_like(targets_per_image, dtype=torch.bool)

    def _clock(self, stage: str) -> None:
        """Tells ``stage_clock`` (when set, as benchmarks/ssod_step.py does) that ``stage`` of :meth:`extend` ended."""
        if self.stage_clock is not None:
            self.stage_clock(stage)

    def _images_to_keep(self, targets_per_image: list[int]) -> list[int]:
        """The images that join the batch: all, or with ``skip`` those left with pseudo-labels."""
        if self.empty_unlabeled == "skip":
            return [i for i, n in enumerate(targets_per_image) if n]
        return list(range(len(targets_per_image)))

    def update(self, student: nn.Module) -> None:
        """After an optimizer step: the teacher takes one EMA step towards ``student``."""
        self.ema.update(student)

    @torch.no_grad()
    def calibrate(self, batches: Iterable[tuple[Tensor, list[Tensor]]]) -> bool:
        """Re-estimate DSAT's per-class thresholds from the teacher's detections on labeled images.

        ``batches`` yields ``(images: Tensor[B, 3, S, S] in [0, 1], labels)`` with ``labels[i]: Tensor[n, 5]``
        (class, x1, y1, x2, y2) in the images' pixel frame. Returns False (and reads nothing) without a DSAT
        filter."""
        dsat = self.filters.find(DSATFilter)
        if dsat is None:
            return False
        scores, classes, tps, gts = [], [], [], []
        for images, labels in batches:
            for d, gt in zip(self.labeler.detect(self.model, images), labels, strict=True):
                d = Detections(d.boxes.cpu(), d.scores.cpu(), d.classes.cpu())
                tps.append(match_detections(d.boxes, d.scores, d.classes, gt[:, 1:], gt[:, 0].long()))
                scores.append(d.scores)
                classes.append(d.classes)
                gts.append(gt[:, 0].long())
        dsat.update(torch.cat(scores), torch.cat(classes), torch.cat(tps), torch.cat(gts))
        return True

    def object_best_scores(self, batches: Iterable[tuple[Tensor, list[Tensor]]], floor: float) -> Tensor:
        """``Tensor[M]``: each labeled object's best teacher score (:func:`~semiyolo.pseudo.object_best_scores`),
        its candidates taken above ``floor`` instead of the labeler's ``min_score`` for this call. ``batches`` as
        :meth:`calibrate`'s."""
        configured, self.labeler.min_score = self.labeler.min_score, floor
        try:
            best = [
                object_best_scores(d.boxes.cpu(), d.scores.cpu(), gt[:, 1:].cpu())
                for images, labels in batches
                for d, gt in zip(self.labeler.detect(self.model, images), labels, strict=True)
            ]
        finally:
            self.labeler.min_score = configured
        return torch.cat(best) if best else torch.zeros(0)

    def measure_trust(self, batches: Iterable[tuple[Tensor, list[Tensor]]], num_classes: int) -> TrustCounts:
        """The teacher's pseudo-labels on labeled images against their labels (:mod:`semiyolo.pseudo.trust`):
        labeled as the unlabeled images are (NMS, the filter chain, the tiers), the filters' counts left alone.
        ``batches`` as :meth:`calibrate`'s."""
        tiered = self.pseudo_targets == "tiered"
        counts = TrustCounts.zeros(num_classes)
        for images, labels in batches:
            for d, tiers, gt in zip(*self.label(images, count=False), labels, strict=True):
                counts = counts + count_trust(d, tiers, gt[:, 1:], gt[:, 0], num_classes, tiered)
        return counts

    def state_dict(self) -> dict[str, Any]:
        return {
            "teacher": self.ema.model.state_dict(),
            "teacher_updates": self.ema.updates,
            "filters": self.filters.state_dict(),
            "augment_generator": self.generator.get_state(),
            "mosaic_cache": self.mosaic_cache.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.ema.load_state_dict({"model": state["teacher"], "updates": state["teacher_updates"]})
        self.filters.load_state_dict(state["filters"])
        self.generator.set_state(state["augment_generator"].cpu())
        if "mosaic_cache" in state:  # absent from states saved before pseudo-mosaic existed
            self.mosaic_cache.load_state_dict(state["mosaic_cache"])


def _tiers_in_view(dets: Detections, tiers: Tiers, boxes: Tensor, kept: Tensor, soft: bool = False):
    """``(boxes, classes, regressed, ignored boxes, weights)`` of one image's targets in the strong view:
    ``boxes[j]`` is detection ``kept[j]`` after the view's geometry (the view drops boxes that leave the image).
    The targets are the reliable detections, and with ``soft`` the uncertain ones too (weight: the teacher's
    score, 1 for the reliable ones; never regressed) but those on a reliable one
    (:func:`~semiyolo.pseudo.soft_targets`); the uncertain ones' boxes are ignore regions either way. ``weights``
    is ``None`` without ``soft``."""
    reliable = tiers.reliable[kept]
    if not soft:
        targets = boxes[reliable], dets.classes[kept][reliable], tiers.regressed[kept][reliable]
        return *targets, boxes[~reliable], None
    targets = soft_targets(reliable, boxes)
    weights = torch.where(reliable, 1.0, dets.scores[kept].float())[targets]
    return boxes[targets], dets.classes[kept][targets], tiers.regressed[kept][targets], boxes[~reliable], weights


def _cut_regions(tiers: Tiers, cut: Tensor, cut_boxes: Tensor, tiered: bool) -> Tensor:
    """``Tensor[m, 4]`` xyxy pixels of the strong view: the visible parts ``cut_boxes: Tensor[c, 4]`` of the
    detections ``cut: Tensor[c]`` the view cut that would have been targets or ignore regions had they been kept:
    every one with tiered targets, the reliable ones with hard targets (the others are background there)."""
    return cut_boxes if tiered else cut_boxes[tiers.reliable[cut]]


def _targets_in_view(
    dets: BatchedDetections, tiers: Tiers, view: BatchedStrongView, soft: bool
) -> tuple[Tensor, Tensor | None]:
    """:func:`_tiers_in_view` of the whole batch: ``(targets Tensor[N] bool, weights Tensor[N] or None)`` over the
    rows of ``dets``: the reliable detections the view keeps, and with ``soft`` the uncertain ones kept too but those on
    a reliable one (weight: the teacher's score, 1 for the reliable ones)."""
    targets = view.kept & tiers.reliable
    if not soft:
        return targets, None
    kept = view.kept
    targets[kept] = batched_soft_targets(tiers.reliable[kept], view.boxes[kept], dets.image[kept], dets.num_images)
    return targets, torch.where(tiers.reliable, 1.0, dets.scores.float())


def _ignore_regions(
    dets: BatchedDetections, tiers: Tiers, view: BatchedStrongView, tiered: bool, cut_ignored: bool
) -> tuple[Tensor, Tensor] | None:
    """``(image Tensor[M], boxes Tensor[M, 4] xyxy pixels of the view)`` of the batch's ignore regions, image by
    image, each image's in :meth:`MeanTeacher.extend`'s order: with tiered targets its uncertain detections the
    view keeps, then with ``cut_ignored`` :func:`_cut_regions`' boxes. ``None`` when there are none to give."""
    rows = ([view.kept & ~tiers.reliable] if tiered else []) + (
        [view.cut & (tiers.reliable | tiered)] if cut_ignored else []
    )
    if not rows:
        return None
    image = torch.cat([dets.image[r] for r in rows])
    order = image.argsort(stable=True)
    return image[order], torch.cat([view.boxes[r] for r in rows])[order]


def _joined_tiers(tiers: list[Tiers]) -> Tiers:
    """Each image's :class:`Tiers` as one over the batch's rows, image by image."""
    if not tiers:
        none = torch.zeros(0, dtype=torch.bool)
        return Tiers(none, none, none)
    return Tiers(*(torch.cat([getattr(t, name) for t in tiers]) for name in ("reliable", "regressed", "uncertain")))
