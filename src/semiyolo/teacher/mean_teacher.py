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
    count_trust,
    dense_geometry_conflict,
    object_best_scores,
    soft_uncertain,
    split_tiers,
    tiers_by_agreement,
    uses_dense_targets,
    view_agreement,
)
from ..pseudo.augment import CUT_OBJECTS, BatchedStrongView, StrongAugment
from .ema import TeacherEMA
from .label_store import LabelStore, merge_labeled
from .labeler import TeacherPseudoLabeler, per_anchor
from .mixup import check_mixup, draw_blend_partners, mix_pseudo_labeled
from .mosaic import MosaicCache, check_mosaic, mosaic_rows
from .view_targets import (
    cut_regions,
    exact_boxes,
    joined_tiers,
    perfect_labels,
    targets_in_view,
    tiers_in_view,
    view_ignore_regions,
)

EMPTY_UNLABELED = ("background", "skip")  # an image left without pseudo-labels: all background, or left out
AGREEMENT_DEMOTED = "agreement_demoted"  # the count of reliable pseudo-labels a view missed (semi/agreement_demoted)
MIXUP_REFUSED = "mixup_refused"  # the count of drawn mixup partners mixup_max_overlap refused (semi/mixup_refused)
ORACLE_BOXES = "boxes"  # the oracle that corrects the teacher's boxes only
ORACLES = (False, True, ORACLE_BOXES)
MOSAICS = "mosaics"  # the count of pseudo-labeled images made into a mosaic (semi/mosaics)


def _check_choices(**chosen: str | bool) -> None:
    """Raise a ValueError naming the option whose value is not one of its choices."""
    choices = {
        "empty_unlabeled": EMPTY_UNLABELED,
        "pseudo_targets": PSEUDO_TARGETS,
        "cut_objects": CUT_OBJECTS,
        "oracle": ORACLES,
    }
    for name, value in chosen.items():
        if value not in choices[name]:
            raise ValueError(f"{name} must be one of {choices[name]}, got {value!r}")


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
        relabel_every: the teacher labels an unlabeled image on its first visit and every ``relabel_every``-th
            after, and its detections are served from :class:`~.label_store.LabelStore` in between (when
            :meth:`extend` is given the images' keys); 1: every visit. The weak view must not change between visits.
        oracle: a benchmark's diagnostic: with ``True``, :meth:`extend` takes the unlabeled images' hidden labels
            as the pseudo-labels, every one reliable and regressed, in place of the teacher's (the rest of the recipe
            as configured): what the recipe reaches with perfect pseudo-labels. With ``"boxes"``, the teacher's
            pseudo-labels with their boxes replaced by the hidden ones they match (:func:`~.view_targets.exact_boxes`):
            what exact extents alone add.
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
        relabel_every: int = 1,
        oracle: bool | str = False,
    ) -> None:
        _check_choices(
            empty_unlabeled=empty_unlabeled, pseudo_targets=pseudo_targets, cut_objects=cut_objects, oracle=oracle
        )
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
        self.store = LabelStore(relabel_every)
        self.oracle = oracle
        if mosaic:
            labeler.filters.count(MOSAICS, 0)
        self.cut_objects = cut_objects
        conflict = agreement_conflict(agreement, labeler.mirror, pseudo_targets, bool(labeler.more_scales))
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

    def label(
        self, images: Tensor, count: bool = True, keys: list[str] | None = None
    ) -> tuple[list[Detections], list[Tiers]]:
        """The teacher's detections on ``images: Tensor[B, 3, H, W]`` in [0, 1] (after NMS, xyxy pixels; from the
        store where :meth:`detections` serves them) and their tiers (:func:`~semiyolo.pseudo.split_tiers`), with
        ``agreement`` after the views' agreement (:func:`~semiyolo.pseudo.tiers_by_agreement`); with ``count``, the
        filters count what they kept and dropped and the reliable detections the agreement demoted."""
        tiered = self.pseudo_targets == "tiered"
        candidates, views = self.detections(images, keys)
        if not self.agreement:
            return candidates, [split_tiers(self.filters, d, tiered, count) for d in candidates]
        tiers = []
        for dets, each_view in zip(candidates, views, strict=True):
            filtered = split_tiers(self.filters, dets, tiered, count)
            boxes, classes = [v.boxes for v in each_view], [v.classes for v in each_view]
            agreement = view_agreement(dets.boxes, dets.classes, boxes, classes)
            tiers.append(tiers_by_agreement(filtered, agreement))
            if count:
                self.filters.count(AGREEMENT_DEMOTED, int((filtered.reliable & ~tiers[-1].reliable).sum()))
        return candidates, tiers

    def detections(
        self, images: Tensor, keys: list[str] | None = None
    ) -> tuple[list[Detections], list[list[Detections]]]:
        """Per image, the teacher's detections after NMS and each view's own (empty lists without views, or where
        neither the agreement nor the detection-level fusion needs them). With ``keys`` (the images' paths) and
        ``relabel_every > 1``, only the images whose visit is due are labeled; the others are served from the
        store (:class:`~.label_store.LabelStore`)."""
        if keys is None or self.store.every == 1:
            return self._teacher_detections(images)
        self.store.at_floor(self.labeler.min_score)
        due = self.store.due(keys)
        rows = [i for i, now in enumerate(due) if now]
        labeled = list(zip(*self._teacher_detections(images[rows]), strict=True)) if rows else []
        for i, (dets, views) in zip(rows, labeled, strict=True):
            self.store.put(keys[i], (dets, views if self.agreement else []))  # the views serve the agreement alone
        served = [self.store.get(key) for key, now in zip(keys, due, strict=True) if not now]
        merged = merge_labeled(due, labeled, served)
        return [d for d, _ in merged], [v for _, v in merged]

    def _teacher_detections(self, images: Tensor) -> tuple[list[Detections], list[list[Detections]]]:
        if self.agreement or self.labeler.fusion == "boxes":
            return self.labeler.detect_views(self.model, images)
        found = self.labeler.detect(self.model, images)
        return found, [[] for _ in found]

    def label_batched(
        self, images: Tensor, count: bool = True, keys: list[str] | None = None
    ) -> tuple[BatchedDetections, Tiers]:
        """:meth:`label`'s detections and tiers for the whole batch at once (masks over its rows). With
        ``agreement`` the tiers still follow each image's views one image at a time (:meth:`label`), then join;
        the store and the detection-level fusion give their detections image by image, then join."""
        if self.agreement:
            candidates, tiers = self.label(images, count, keys)
            self._clock("teacher forward, NMS, filters, tiers, agreement")
            return BatchedDetections.from_list(candidates), joined_tiers(tiers)
        if (keys is not None and self.store.every > 1) or self.labeler.fusion == "boxes":
            dets = BatchedDetections.from_list(self.detections(images, keys)[0])
            self._clock("teacher forward, NMS, fusion, store")
        else:
            decoded, raw = self.labeler.forward(self.model, images)
            self._clock("teacher forward")
            dets = self.labeler.postprocess_batched(*per_anchor(decoded), raw)
            self._clock("candidates, NMS")
        tiers = split_tiers(self.filters, dets, self.pseudo_targets == "tiered", count)
        self._clock("filters, tiers")
        return dets, tiers

    def extend(
        self,
        batch: dict,
        weak: Tensor,
        batched: bool = True,
        keys: list[str] | None = None,
        hidden: list[Tensor] | None = None,
    ) -> tuple[dict, list[Detections]]:
        """``batch`` with the strong views of ``weak`` appended, labeled by the teacher
        (:func:`~semiyolo.batch.append_pseudo_targets`); and the reliable pseudo-labels of every weak image, for the
        audit.

        Every detection goes through the strong view; reliable ones become targets; with tiered targets, regressed
        or not, and the uncertain ones ignore regions (:func:`~semiyolo.pseudo.split_tiers`); with ``cut_objects:
        ignore``, so are the visible parts of those the view cuts (:func:`~.view_targets.cut_regions`). The whole
        batch's detections at once (:meth:`label_batched`); ``batched=False``: image by image, the same batch (the
        reference). ``keys``: the weak images' paths, for the store of detections between visits
        (``relabel_every``). ``hidden``: with ``oracle``, the weak images' hidden labels, ``Tensor[n, 5]`` (class,
        x1, y1, x2, y2 in their pixels) each, used as the pseudo-labels. Dense: see :meth:`extend_dense`."""
        if uses_dense_targets(self.pseudo_targets):
            return self.extend_dense(batch, weak)
        if self.oracle and (hidden is None or not batched):
            raise ValueError("oracle pseudo-labels need the images' hidden labels, on the batched path")
        if not batched:
            return self._extend_per_image(batch, weak, keys)
        dets, tiers = perfect_labels(hidden) if self.oracle is True else self.label_batched(weak, keys=keys)
        if self.oracle == ORACLE_BOXES:
            dets = exact_boxes(dets, hidden)
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
        """``batch`` with the images of ``view`` that join it and their targets
        (:func:`~.view_targets.targets_in_view`), all images' at once; ``None`` when no image joins."""
        in_view = view.kept & tiers.reliable
        joins = self._images_joining(torch.bincount(dets.image[in_view], minlength=dets.num_images))
        if not bool(joins.any()):
            return None
        position = joins.cumsum(0) - 1  # each joining image's index among those appended
        targets, weights = targets_in_view(dets, tiers, view, self.soft_uncertain)
        targets &= joins[dets.image]
        tiered = self.pseudo_targets == "tiered"
        ignored = view_ignore_regions(dets, tiers, view, tiered, self.cut_objects == "ignore")
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

    def _extend_per_image(
        self, batch: dict, weak: Tensor, keys: list[str] | None = None
    ) -> tuple[dict, list[Detections]]:
        """:meth:`extend` image by image (the reference of the batched path)."""
        tiered = self.pseudo_targets == "tiered"
        candidates, tiers = self.label(weak, keys=keys)
        view = self.augment.view(weak, [d.boxes for d in candidates], self.generator)
        views = [
            tiers_in_view(d, t, b, k, self.soft_uncertain)
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
            cut = [cut_regions(tiers[i], view.cut[i], view.cut_boxes[i], tiered) for i in keep]
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
            "label_store": self.store.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.ema.load_state_dict({"model": state["teacher"], "updates": state["teacher_updates"]})
        self.filters.load_state_dict(state["filters"])
        self.generator.set_state(state["augment_generator"].cpu())
        if "mosaic_cache" in state:  # absent from states saved before pseudo-mosaic existed
            self.mosaic_cache.load_state_dict(state["mosaic_cache"])
        if "label_store" in state:  # absent from states saved before relabel_every existed
            self.store.load_state_dict(state["label_store"])
