"""Ultralytics' detection loss with the background penalty (docs/spec.md §3) as a fourth loss item, ``bg_loss``.

The criterion is written in terms, after DETR's ``SetCriterion``: ``assign`` runs Ultralytics' task-aligned
assigner without gradient and returns an :class:`Assignment`; one method per term (``loss_classification``,
``loss_background``, ``loss_boxes`` for CIoU and DFL) returns a dict of unweighted values; ``weights`` holds every
gain and ``weigh`` applies them. The normaliser is an argument of each term, so a caller can floor it
(:class:`~.semi_criterion.SemiSupervisedLoss` does). Schedules change ``lambda_bg`` / ``lambda_unsup`` through
:func:`set_loss_weights` only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor
from ultralytics.utils.loss import E2ELoss, v8DetectionLoss
from ultralytics.utils.tal import make_anchors

from ...batch import DENSE_KEY, REGRESS_KEY, WEIGHT_KEY, ignore_regions
from ...boxes import anchors_in_boxes
from ...losses import PENALTY_MODES, PENALTY_NORMALIZATIONS, background_penalty, bce_and_background_sums

if TYPE_CHECKING:  # the dense payload's type; the criterion reads the batch through semiyolo.batch alone
    from ...pseudo import DenseTargets, TrustWeights


@dataclass(frozen=True)
class HeadOutputs:
    """The detection head's training outputs laid out per anchor (``A`` anchors over all levels).

    Attributes:
        logits: ``Tensor[B, A, C]`` class logits, a view of Ultralytics' ``(B, C, A)`` scores (clamped when the
            criterion has ``logit_clamp``).
        probs: ``Tensor[B, A, C]`` float32 ``sigmoid(logits)``, detached: the assigner's input, reused by the
            fused classification pass's backward.
        distri: ``Tensor[B, A, 4 * reg_max]`` box distributions (contiguous).
        bboxes: ``Tensor[B, A, 4]`` decoded boxes, xyxy in grid units (``bbox_decode``).
        anchor_points: ``Tensor[A, 2]`` anchor centres in grid units (``make_anchors``).
        stride_tensor: ``Tensor[A, 1]`` each anchor's stride in pixels.
        imgsz: ``Tensor[2]`` the input size ``(h, w)`` in pixels.
    """

    logits: Tensor
    probs: Tensor
    distri: Tensor
    bboxes: Tensor
    anchor_points: Tensor
    stride_tensor: Tensor
    imgsz: Tensor


@dataclass(frozen=True)
class Assignment:
    """Targets of every anchor, from Ultralytics' ``TaskAlignedAssigner`` (no gradient).

    Each term reads the anchors it acts on through this object (``fg_mask``, :attr:`background`), so per-anchor
    masks (anchors that get neither a positive nor a negative target, a per-box regression gate) can be added as
    fields with defaults, and :attr:`background` narrowed, without changing a term's signature.

    Attributes:
        fg_mask: ``Tensor[B, A]`` bool, anchors assigned to an object.
        target_scores: ``Tensor[B, A, C]`` TAL's soft class targets (IoU-aligned on foreground, 0 elsewhere).
        target_bboxes: ``Tensor[B, A, 4]`` xyxy in pixels, meaningful on foreground anchors.
        target_gt_idx: ``Tensor[B, A]`` index of the assigned object within its image.
        normalizer: 0-d, Ultralytics' ``max(sum target_scores, 1)``.
        ignore_mask: ``Tensor[B, A]`` bool or ``None``: anchors outside the foreground that lie in an uncertain
            pseudo-label (:mod:`semiyolo.pseudo.tiers`): no classification target and no penalty.
        regress_mask: ``Tensor[B, A]`` bool or ``None``: foreground anchors whose object's box is regressed
            (``None``: all of them).
        penalty_mask: ``Tensor[B, A]`` bool or ``None``: the anchors the background penalty may act on (dense
            pseudo-targets: where the teacher is confident there is nothing); ``None``: every background anchor.
        class_weight: ``Tensor[B, A, C]`` or ``None``: a weight on each anchor's and class's classification loss
            (the trust estimate's, :func:`weigh_by_trust`); ``None``: 1.
        box_weight: ``Tensor[B, A]`` or ``None``: a weight on each foreground anchor's box and DFL losses.
        penalty_weight: ``Tensor[B, A]`` or ``None``: a weight on each background anchor's penalty.
        target_labels: ``Tensor[B, A]`` long or ``None``: the class of each foreground anchor's object (TAL's; a
            foreground anchor's target score may be 0, so its class cannot always be read from ``target_scores``).
    """

    fg_mask: Tensor
    target_scores: Tensor
    target_bboxes: Tensor
    target_gt_idx: Tensor
    normalizer: Tensor
    ignore_mask: Tensor | None = None
    regress_mask: Tensor | None = None
    penalty_mask: Tensor | None = None
    class_weight: Tensor | None = None
    box_weight: Tensor | None = None
    target_labels: Tensor | None = None
    penalty_weight: Tensor | None = None

    @property
    def background(self) -> Tensor:
        """``Tensor[B, A]`` bool, the anchors the background penalty acts on: no object, nothing uncertain, and
        within ``penalty_mask`` if given."""
        background = ~self.fg_mask if self.ignore_mask is None else ~self.fg_mask & ~self.ignore_mask
        return background if self.penalty_mask is None else background & self.penalty_mask

    @property
    def box_mask(self) -> Tensor:
        """``Tensor[B, A]`` bool, the anchors the box and DFL losses act on."""
        return self.fg_mask if self.regress_mask is None else self.fg_mask & self.regress_mask


class BackgroundPenaltyDetectionLoss(v8DetectionLoss):
    """``v8DetectionLoss`` plus ``lambda_bg`` times a penalty on confident scores of background anchors.

    Background anchors are those outside TAL's foreground mask. Loss items: ``box_loss``, ``cls_loss``,
    ``dfl_loss`` (as Ultralytics; ``l1_loss`` for heads without DFL) and ``bg_loss``; each carries its gain
    (``bg_loss`` the ``cls`` gain, as in the source document's code, where the penalty is part of the classification
    term), and their sum is the loss.

    Normalisations of the classification term (docs/spec.md §3.3):

    - ``bce`` (default): ``[sum BCE + lambda_bg sum_bg L_bg] / max(sum target_scores, 1)``: the penalty is
      summed and normalised like Ultralytics' BCE, so on a background anchor it weighs as much as that
      anchor's BCE, and Ultralytics' classification term is unchanged.
    - ``bg_mean`` (the source document's code): Ultralytics' BCE plus ``lambda_bg`` times the penalty *averaged
      over background anchors*. The penalty's gradient on one anchor is then ``lambda_bg / N_bg`` (thousands of
      anchors per batch), two to three orders of magnitude below BCE's: too weak to change a run (docs/BENCHMARKS.md,
      "The background penalty's normalisations (supervised)"), which is why it is not the default.
    - ``joint`` (the source document's formula):
      ``1 / (N_pos + N_bg) * [sum_i BCE_i + lambda_bg sum_bg L_bg_i]`` with ``BCE_i`` the mean over classes,
      ``N_pos + N_bg`` all anchors of the batch; this also shrinks the BCE by the same factor against the box
      terms.

    Args:
        model: a de-paralleled Ultralytics ``DetectionModel`` with ``args`` (hyperparameters) set.
        lambda_bg: penalty weight (>= 0); schedules change it with :func:`set_loss_weights`.
        mode: ``max`` (the highest class score), ``focal`` (hard-negative focal form) or ``none`` (plain Ultralytics).
        normalize: ``bce``, ``bg_mean`` or ``joint``.
        gamma: exponent of the ``focal`` mode.
        logit_clamp: clamp class logits to ``[-c, c]`` before the classification losses (e.g. 10,
            docs/spec.md §3.5); ``None`` for no clamp.
        tal_topk, tal_topk2: the assigner's, as in ``v8DetectionLoss``.
    """

    weight_names = ("lambda_bg",)

    def __init__(
        self,
        model,
        lambda_bg: float = 1.0,
        mode: str = "max",
        normalize: str = "bce",
        gamma: float = 2.0,
        logit_clamp: float | None = None,
        tal_topk: int = 10,
        tal_topk2: int | None = None,
    ) -> None:
        if mode not in PENALTY_MODES:
            raise ValueError(f"mode must be one of {PENALTY_MODES}, got {mode!r}")
        if normalize not in PENALTY_NORMALIZATIONS:
            raise ValueError(f"normalize must be one of {PENALTY_NORMALIZATIONS}, got {normalize!r}")
        if logit_clamp is not None and not logit_clamp > 0:
            raise ValueError(f"logit_clamp must be > 0 or None, got {logit_clamp!r}")
        super().__init__(model, tal_topk=tal_topk, tal_topk2=tal_topk2)
        self.mode, self.normalize, self.gamma, self.logit_clamp = mode, normalize, gamma, logit_clamp
        self.set_weights(lambda_bg=lambda_bg)
        self.loss_names = (*self.loss_names, "bg_loss")

    # --- weights -------------------------------------------------------------------------------------------
    def set_weights(self, lambda_bg: float) -> None:
        """Set the penalty weight (>= 0); :func:`set_loss_weights` calls this on every criterion of a model."""
        if not lambda_bg >= 0:
            raise ValueError(f"lambda_bg must be >= 0, got {lambda_bg!r}")
        self.lambda_bg = float(lambda_bg)

    @property
    def penalized(self) -> bool:
        """Whether the penalty is computed at all (``mode`` not ``none`` and ``lambda_bg > 0``)."""
        return self.mode != "none" and self.lambda_bg > 0

    def weights(self) -> dict[str, float]:
        """The gain of each loss item: Ultralytics' ``hyp.box``, ``hyp.cls``, ``hyp.dfl``; ``bg_loss`` gets
        ``lambda_bg`` times the ``cls`` gain (the penalty is part of the classification term: docs/spec.md §4.2)."""
        box, cls, dfl, bg = self.loss_names
        return {box: self.hyp.box, cls: self.hyp.cls, dfl: self.hyp.dfl, bg: self.hyp.cls * self.lambda_bg}

    def weigh(self, terms: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """``(Tensor[4], items)``: each term times its gain from :meth:`weights`, in ``loss_names`` order."""
        weights = self.weights()
        loss = torch.stack([terms[name] * weights[name] for name in self.loss_names])
        return loss, dict(zip(self.loss_names, loss.detach(), strict=True))

    # --- assignment ----------------------------------------------------------------------------------------
    def decode(self, preds: dict[str, Tensor]) -> HeadOutputs:
        """The head's ``boxes`` ``(B, 4 reg_max, A)``, ``scores`` ``(B, C, A)`` and ``feats`` laid out per anchor."""
        distri = preds["boxes"].permute(0, 2, 1).contiguous()
        logits = preds["scores"].permute(0, 2, 1)  # a (B, A, C) view: the fused pass needs no copy
        if self.logit_clamp is not None:
            logits = logits.clamp(-self.logit_clamp, self.logit_clamp)
        anchor_points, stride_tensor = make_anchors(preds["feats"], self.stride, 0.5)
        imgsz = torch.tensor(preds["feats"][0].shape[2:], device=self.device, dtype=logits.dtype) * self.stride[0]
        return HeadOutputs(
            logits=logits,
            probs=logits.detach().float().sigmoid(),  # float32 so that the fused backward's p - y keeps precision
            distri=distri,
            bboxes=self.bbox_decode(anchor_points, distri),
            anchor_points=anchor_points,
            stride_tensor=stride_tensor,
            imgsz=imgsz,
        )

    @torch.no_grad()
    def assign(self, outputs: HeadOutputs, batch: dict[str, Tensor], **assign_kwargs) -> Assignment:
        """TAL targets for ``batch`` (``batch_idx`` ``(N,)``, ``cls`` ``(N, 1)``, normalised xywh ``bboxes``
        ``(N, 4)``), as in ``v8DetectionLoss.get_assigned_targets_and_loss``; ``assign_kwargs`` go to the assigner."""
        batch_size = outputs.logits.shape[0]
        targets = torch.cat((batch["batch_idx"].view(-1, 1), batch["cls"].view(-1, 1), batch["bboxes"]), 1)
        targets = self.preprocess(targets.to(self.device), batch_size, scale_tensor=outputs.imgsz[[1, 0, 1, 0]])
        gt_labels, gt_bboxes = targets.split((1, 4), 2)
        mask_gt = gt_bboxes.sum(2, keepdim=True).gt_(0.0)
        target_labels, target_bboxes, target_scores, fg_mask, target_gt_idx = self.assigner(
            outputs.probs,
            (outputs.bboxes * outputs.stride_tensor).type(gt_bboxes.dtype),
            outputs.anchor_points * outputs.stride_tensor,
            gt_labels,
            gt_bboxes,
            mask_gt,
            **assign_kwargs,
        )
        per_anchor = _on_anchors(batch, (REGRESS_KEY, WEIGHT_KEY), target_gt_idx, gt_labels.shape[1])
        if WEIGHT_KEY in per_anchor:  # soft targets: each object's class target scaled by its weight
            target_scores = target_scores * per_anchor[WEIGHT_KEY].unsqueeze(-1).to(target_scores.dtype)
        return Assignment(
            fg_mask=fg_mask,
            target_scores=target_scores,
            target_bboxes=target_bboxes,
            target_gt_idx=target_gt_idx,
            normalizer=target_scores.sum().clamp_(min=1),
            target_labels=target_labels,
            ignore_mask=_ignore_mask(outputs, batch, fg_mask),
            regress_mask=per_anchor.get(REGRESS_KEY),
        )

    @torch.no_grad()
    def assign_dense(self, outputs: HeadOutputs, dense: DenseTargets, k: int | None = None) -> Assignment:
        """Dense pseudo-targets (:mod:`semiyolo.pseudo.dense`) as an assignment: each image's ``k`` anchors (or
        the targets' ``fraction``) with the teacher's best scores are the foreground, with its scores and boxes as
        targets; every other anchor is a classification negative; the penalty acts only where the teacher is
        confident there is nothing. The normaliser is the number of selected anchors: a teacher growing more
        confident must not shrink the weight of its own negatives."""
        if dense.probs.shape[:2] != outputs.logits.shape[:2]:
            raise ValueError(
                f"dense targets for {tuple(dense.probs.shape[:2])} (images, anchors), the head has "
                f"{tuple(outputs.logits.shape[:2])}: the teacher's view and the student's differ in size"
            )
        selected = dense.selected(k)
        scores = (dense.probs * selected.unsqueeze(-1)).to(outputs.probs)
        return Assignment(
            fg_mask=selected,
            target_scores=scores,
            target_bboxes=dense.boxes.to(outputs.bboxes.dtype),
            target_gt_idx=torch.zeros_like(selected, dtype=torch.long),
            normalizer=selected.sum().float().clamp(min=1),
            penalty_mask=dense.penalized(selected),
        )

    # --- terms (unweighted) --------------------------------------------------------------------------------
    def classification_sums(self, outputs: HeadOutputs, assignment: Assignment) -> tuple[Tensor, Tensor]:
        """``(sum BCE, sum_bg L_bg)`` over ``logits: Tensor[B, A, C]``, unnormalised; the penalty sum is 0 unless
        :attr:`penalized`. The ``max`` mode without class weights takes one fused pass for both
        (:func:`~semiyolo.losses.bce_and_background_sums`)."""
        logits, target_scores = outputs.logits, assignment.target_scores
        plain = assignment.ignore_mask is None and assignment.penalty_mask is None and assignment.class_weight is None
        if self.class_weights is None and self.mode in ("max", "none") and plain:
            fg_mask = assignment.fg_mask
            return bce_and_background_sums(
                logits, fg_mask, target_scores[fg_mask], outputs.probs, with_penalty=self.penalized
            )
        bce = F.binary_cross_entropy_with_logits(logits, target_scores.to(logits.dtype), reduction="none")
        if self.class_weights is not None:
            bce = bce * self.class_weights
        if assignment.ignore_mask is not None:  # uncertain anchors: neither positive nor negative
            bce = bce * (~assignment.ignore_mask).unsqueeze(-1)
        if assignment.class_weight is not None:
            bce = bce * assignment.class_weight
        bce_sum = bce.sum()
        if not self.penalized:
            return bce_sum, bce_sum * 0.0
        if assignment.penalty_weight is None:
            return bce_sum, background_penalty(logits, assignment.background, self.mode, self.gamma, reduction="sum")
        penalty = background_penalty(logits, assignment.background, self.mode, self.gamma, reduction="none")
        return bce_sum, (penalty * assignment.penalty_weight).sum()

    def loss_classification(self, bce_sum: Tensor, assignment: Assignment, normalizer: Tensor) -> dict[str, Tensor]:
        """``cls_loss``: ``sum BCE / normalizer`` (``bce``, ``bg_mean``: Ultralytics'), or ``sum BCE / (C A_all)``
        (``joint``: the source document's mean over classes and over all ``B A`` anchors)."""
        if self.normalize == "joint":
            return {"cls_loss": bce_sum / (assignment.target_scores.shape[-1] * assignment.fg_mask.numel())}
        return {"cls_loss": bce_sum / normalizer}

    def loss_background(self, penalty_sum: Tensor, assignment: Assignment, normalizer: Tensor) -> dict[str, Tensor]:
        """``bg_loss`` before ``lambda_bg``: ``sum_bg L_bg`` over ``normalizer`` (``bce``), over the number of
        background anchors (``bg_mean``) or over all ``B A`` anchors (``joint``); see the class docstring."""
        if self.normalize == "joint":
            return {"bg_loss": penalty_sum / assignment.fg_mask.numel()}
        if self.normalize == "bce":
            return {"bg_loss": penalty_sum / normalizer}
        return {"bg_loss": penalty_sum / assignment.background.sum().clamp(min=1)}

    def loss_boxes(self, outputs: HeadOutputs, assignment: Assignment, normalizer: Tensor) -> dict[str, Tensor]:
        """``box_loss`` (CIoU) and ``dfl_loss`` (or ``l1_loss``) from Ultralytics' ``BboxLoss``: sums over
        foreground anchors weighted by their target score (times ``box_weight``), over ``normalizer``."""
        weights = assignment.target_scores
        if assignment.box_weight is not None:
            weights = weights * assignment.box_weight.unsqueeze(-1).to(weights.dtype)
        box, dfl = self.bbox_loss(
            outputs.distri,
            outputs.bboxes,
            outputs.anchor_points,
            assignment.target_bboxes / outputs.stride_tensor,
            weights,
            normalizer,
            assignment.box_mask,
            outputs.imgsz,
            outputs.stride_tensor,
        )
        return {self.loss_names[0]: box, self.loss_names[2]: dfl}

    def terms(self, outputs: HeadOutputs, assignment: Assignment, normalizer: Tensor) -> dict[str, Tensor]:
        """Every term, unweighted, keyed by loss item name."""
        bce_sum, penalty_sum = self.classification_sums(outputs, assignment)
        return {
            **self.loss_classification(bce_sum, assignment, normalizer),
            **self.loss_background(penalty_sum, assignment, normalizer),
            **self.loss_boxes(outputs, assignment, normalizer),
        }

    # --- calls ---------------------------------------------------------------------------------------------
    def forward(
        self,
        preds: dict[str, Tensor],
        batch: dict[str, Any],
        normalizer_floor: Tensor | float | None = None,
        dense_k: int | None = None,
        trust: TrustWeights | None = None,
        **kw,
    ) -> tuple[Tensor, dict[str, Tensor], HeadOutputs, Assignment]:
        """Assign (TAL, or the batch's dense pseudo-targets), weigh the anchors by ``trust`` if given
        (:func:`weigh_by_trust`), compute the terms over ``max(assignment.normalizer, normalizer_floor)``, weigh
        them.

        Returns ``(loss, items, outputs, assignment)``: ``loss`` is ``Tensor[4]`` (not times the batch size),
        ``items`` its detached values by name. ``dense_k``: the positives per image of dense targets without a
        fraction (:meth:`assign_dense`). ``kw`` goes to the assigner.
        """
        outputs = self.decode(preds)
        dense = batch.get(DENSE_KEY)
        assignment = self.assign(outputs, batch, **kw) if dense is None else self.assign_dense(outputs, dense, dense_k)
        if trust is not None:
            assignment = weigh_by_trust(assignment, trust, outputs.probs)
        normalizer = assignment.normalizer
        if normalizer_floor is not None:
            normalizer = torch.maximum(normalizer, torch.as_tensor(normalizer_floor).to(normalizer))
        loss, items = self.weigh(self.terms(outputs, assignment, normalizer))
        return loss, items, outputs, assignment

    def get_assigned_targets_and_loss(self, preds: dict[str, Tensor], batch: dict[str, Any], **assign_kwargs):
        """Ultralytics' contract: ``((fg_mask, target_gt_idx, target_bboxes, anchor_points, stride_tensor),
        Tensor[4], items)``, the loss not times the batch size."""
        loss, items, outputs, a = self.forward(preds, batch, **assign_kwargs)
        return (a.fg_mask, a.target_gt_idx, a.target_bboxes, outputs.anchor_points, outputs.stride_tensor), loss, items

    def loss(
        self,
        preds: dict[str, Tensor],
        batch: dict[str, Any],
        normalizer_floor: Tensor | float | None = None,
        dense_k: int | None = None,
        trust: TrustWeights | None = None,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """``(Tensor[4] * B, items)`` as ``v8DetectionLoss.loss`` (``E2ELoss`` calls this on each branch);
        ``normalizer_floor``, ``dense_k``, ``trust``: see :meth:`forward`."""
        loss, items, _, _ = self.forward(preds, batch, normalizer_floor, dense_k, trust)
        return loss * preds["boxes"].shape[0], items


def weigh_by_trust(assignment: Assignment, trust: TrustWeights, probs: Tensor) -> Assignment:
    """``assignment`` with the trust estimate's per-class weights (:class:`~semiyolo.pseudo.TrustWeights`) laid
    on its anchors: a foreground anchor's classification loss (every class) and box losses by the class of its
    target, the other anchors' loss on class ``c`` by ``negative[c]``, and the background penalty of an anchor by
    ``negative`` of its highest-scoring class.

    Args:
        assignment: the pseudo-labeled images' targets (``target_scores: Tensor[B, A, C]``, ``fg_mask``).
        trust: ``Tensor[C]`` weights each.
        probs: ``Tensor[B, A, C]`` the student's class probabilities (the penalty's class).
    """
    device, dtype = assignment.target_scores.device, assignment.target_scores.dtype
    positive, negative, box = (w.to(device, dtype) for w in (trust.positive, trust.negative, trust.box))
    target_class = assignment.target_labels  # (B, A): the class of a foreground anchor's object
    if target_class is None:  # dense targets: each selected anchor's best class
        target_class = assignment.target_scores.argmax(-1)
    target_class = torch.where(assignment.fg_mask, target_class.long(), 0)  # TAL pads the others with nc
    fg = assignment.fg_mask.unsqueeze(-1)
    class_weight = torch.where(fg, positive[target_class].unsqueeze(-1), negative)
    box_weight = torch.where(assignment.fg_mask, box[target_class], 0.0)
    penalty_weight = negative[probs.argmax(-1)]
    return replace(assignment, class_weight=class_weight, box_weight=box_weight, penalty_weight=penalty_weight)


def _ignore_mask(outputs: HeadOutputs, batch: dict[str, Any], fg_mask: Tensor) -> Tensor | None:
    """``Tensor[B, A]``: background anchors whose centre lies in one of the batch's uncertain pseudo-labels
    (:func:`~semiyolo.batch.ignore_regions`); ``None`` when the batch has none."""
    regions = ignore_regions(batch, out_fmt="xyxy", image_size=outputs.imgsz)
    if regions is None:
        return None
    image, boxes = regions
    points = outputs.anchor_points * outputs.stride_tensor
    covered = anchors_in_boxes(points, boxes.to(points.device), image, fg_mask.shape[0])
    return covered & ~fg_mask


def _on_anchors(
    batch: dict[str, Any], keys: tuple[str, ...], target_gt_idx: Tensor, max_objects: int
) -> dict[str, Tensor]:
    """For each of ``keys`` the batch carries (per-target ``Tensor[N]``: its ``regress`` flags, its target
    weights), ``Tensor[B, A]``: the value of each anchor's assigned object (``target_gt_idx``, in ``preprocess``'s
    per-image order of appearance); zero (False) where the image has no object."""
    present = [k for k in keys if k in batch]
    if not present:
        return {}
    image = batch["batch_idx"].long().to(target_gt_idx.device)
    sorted_image, by_image = image.sort(stable=True)
    counts = torch.bincount(image, minlength=target_gt_idx.shape[0])
    order = torch.empty_like(image)  # each target's position among its image's targets, in order of appearance
    order[by_image] = torch.arange(image.numel(), device=image.device) - (counts.cumsum(0) - counts)[sorted_image]
    on_anchors = {}
    for key in present:
        values = batch[key].to(image.device)
        padded = torch.zeros(target_gt_idx.shape[0], max(max_objects, 1), dtype=values.dtype, device=image.device)
        padded[image, order] = values
        on_anchors[key] = padded.gather(1, target_gt_idx.long())
    return on_anchors


# --- criteria inside wrappers -------------------------------------------------------------------------------
def inner_criteria(criterion) -> list:
    """``criterion`` and every criterion inside it, outermost first: ``E2ELoss``'s ``one2many`` and ``one2one``,
    and the ``criterion`` of a wrapper such as :class:`~.semi_criterion.SemiSupervisedLoss`."""
    if isinstance(criterion, E2ELoss):
        return [criterion, *inner_criteria(criterion.one2many), *inner_criteria(criterion.one2one)]
    inner = getattr(criterion, "criterion", None)
    return [criterion, *inner_criteria(inner)] if inner is not None else [criterion]


def penalized_criteria(criterion) -> list[BackgroundPenaltyDetectionLoss]:
    """The :class:`BackgroundPenaltyDetectionLoss` instances inside ``criterion`` (itself, or E2E's two)."""
    return [c for c in inner_criteria(criterion) if isinstance(c, BackgroundPenaltyDetectionLoss)]


def set_loss_weights(criterion, **weights: float) -> None:
    """Set loss weights (``lambda_bg``, ``lambda_unsup``) on every criterion inside ``criterion`` that has them.

    Works on :class:`BackgroundPenaltyDetectionLoss`, :class:`~.semi_criterion.SemiSupervisedLoss` and
    ``E2ELoss`` around either. Raises ``ValueError`` for a name no criterion inside takes, or a negative value.
    """
    owners = [c for c in inner_criteria(criterion) if hasattr(c, "set_weights")]
    known = {name for c in owners for name in c.weight_names}
    unknown = sorted(set(weights) - known)
    if unknown:
        raise ValueError(f"unknown loss weights {unknown}: {type(criterion).__name__} takes {sorted(known)}")
    for c in owners:
        own = {k: v for k, v in weights.items() if k in c.weight_names}
        if own:
            c.set_weights(**own)


# --- construction -------------------------------------------------------------------------------------------
def _head_criterion(model, wrap: Callable | None = None, **kwargs):
    criterion = BackgroundPenaltyDetectionLoss(model, **kwargs)
    return criterion if wrap is None else wrap(criterion)


def build_criterion(model, wrap: Callable | None = None, **penalty_kwargs):
    """The penalised criterion for ``model``: YOLOv8 / YOLO11 heads get :class:`BackgroundPenaltyDetectionLoss`,
    end-to-end heads (YOLO26, YOLOv10) get Ultralytics' ``E2ELoss`` with one for each branch.

    ``wrap``, if given, is applied to each head criterion (both branches of an end-to-end head), e.g.
    ``partial(SemiSupervisedLoss, lambda_unsup=0.0)``: ``E2ELoss`` then combines the wrapped criteria.
    """
    if getattr(model.model[-1], "one2one_cv2", None) is not None:
        return E2ELoss(model, loss_fn=partial(_head_criterion, wrap=wrap, **penalty_kwargs))
    return _head_criterion(model, wrap=wrap, **penalty_kwargs)


def resume_e2e_schedule(criterion, start_epoch: int) -> None:
    """Advance an end-to-end criterion's one-to-many / one-to-one weights to ``start_epoch`` (as Ultralytics
    does for its own on resume); other criteria are left alone."""
    for c in inner_criteria(criterion):
        if isinstance(c, E2ELoss):
            c.updates = start_epoch - 1
            c.update()
