"""Ultralytics' detection loss with document 000's background penalty as a fourth loss item, ``bg_loss``."""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from ultralytics.utils.loss import E2ELoss, v8DetectionLoss
from ultralytics.utils.tal import make_anchors

from ...losses import PENALTY_MODES, PENALTY_NORMALIZATIONS, background_penalty, bce_and_background_sums


class BackgroundPenaltyDetectionLoss(v8DetectionLoss):
    """``v8DetectionLoss`` plus ``lambda_bg`` times a penalty on confident scores of background anchors.

    Background anchors are those outside TAL's foreground mask. Loss items: ``box_loss``, ``cls_loss``,
    ``dfl_loss`` (as Ultralytics) and ``bg_loss``; each carries its gain (``bg_loss`` the ``cls`` gain, as in
    document 000's code, where the penalty is part of the classification term), and their sum is the loss.

    Normalisations of the classification term (SPEC section 3):

    - ``bce`` (default): ``[sum BCE + lambda_bg sum_bg L_bg] / max(sum target_scores, 1)``: the penalty is
      summed and normalised like Ultralytics' BCE, so on a background anchor it weighs as much as that
      anchor's BCE, and Ultralytics' classification term is unchanged.
    - ``bg_mean`` (document 000's code): Ultralytics' BCE plus ``lambda_bg`` times the penalty *averaged over
      background anchors*. The penalty's gradient on one anchor is then ``lambda_bg / N_bg`` (thousands of
      anchors per batch), two to three orders of magnitude below BCE's: at ``lambda_bg = 1`` it changed
      nothing measurable in the demo (docs/BENCHMARKS.md), which is why it is not the default.
    - ``joint`` (document 000's formula): ``1 / (N_pos + N_bg) * [sum_i BCE_i + lambda_bg sum_bg L_bg_i]``
      with ``BCE_i`` the mean over classes, ``N_pos + N_bg`` all anchors of the batch; this also shrinks the
      BCE by the same factor against the box terms.

    Args:
        model: a de-paralleled Ultralytics ``DetectionModel`` with ``args`` (hyperparameters) set.
        lambda_bg: penalty weight (>= 0); a schedule may change ``self.lambda_bg`` between epochs.
        mode: ``max`` (document 000), ``focal`` (hard-negative focal form) or ``none`` (plain Ultralytics).
        normalize: ``bce``, ``bg_mean`` or ``joint``.
        gamma: exponent of the ``focal`` mode.
        logit_clamp: clamp class logits to ``[-c, c]`` before the classification losses (document 000 uses
            10); ``None`` for no clamp.

    Attributes:
        normalizer: the last call's normaliser, ``max(sum target_scores, 1)`` (detached).
        normalizer_floor: when set (a float or a 0-d tensor), the normaliser is at least this (a caller such as
            :class:`~.semi_criterion.SemiSupervisedLoss` sets it for a batch whose targets are incomplete).
    """

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
        if not lambda_bg >= 0:
            raise ValueError(f"lambda_bg must be >= 0, got {lambda_bg!r}")
        if logit_clamp is not None and not logit_clamp > 0:
            raise ValueError(f"logit_clamp must be > 0 or None, got {logit_clamp!r}")
        super().__init__(model, tal_topk=tal_topk, tal_topk2=tal_topk2)
        self.lambda_bg, self.mode, self.normalize = float(lambda_bg), mode, normalize
        self.gamma, self.logit_clamp = gamma, logit_clamp
        self.loss_names = (*self.loss_names, "bg_loss")
        self.normalizer: Tensor | None = None
        self.normalizer_floor: float | None = None

    def get_assigned_targets_and_loss(self, preds: dict[str, Tensor], batch: dict[str, Any], **assign_kwargs):
        """Ultralytics' assignment and box losses, with the classification term of :meth:`loss_classification`.

        Returns the same structure as ``v8DetectionLoss.get_assigned_targets_and_loss`` with a fourth item.
        """
        pred_distri = preds["boxes"].permute(0, 2, 1).contiguous()
        pred_scores = preds["scores"].permute(0, 2, 1)  # a (B, A, C) view: the fused pass needs no copy
        if self.logit_clamp is not None:
            pred_scores = pred_scores.clamp(-self.logit_clamp, self.logit_clamp)
        anchor_points, stride_tensor = make_anchors(preds["feats"], self.stride, 0.5)
        dtype, batch_size = pred_scores.dtype, pred_scores.shape[0]
        imgsz = torch.tensor(preds["feats"][0].shape[2:], device=self.device, dtype=dtype) * self.stride[0]

        targets = torch.cat((batch["batch_idx"].view(-1, 1), batch["cls"].view(-1, 1), batch["bboxes"]), 1)
        targets = self.preprocess(targets.to(self.device), batch_size, scale_tensor=imgsz[[1, 0, 1, 0]])
        gt_labels, gt_bboxes = targets.split((1, 4), 2)
        mask_gt = gt_bboxes.sum(2, keepdim=True).gt_(0.0)
        pred_bboxes = self.bbox_decode(anchor_points, pred_distri)

        # the assigner's input, reused by the fused pass's backward: float32 so that p - y keeps its precision
        probs = pred_scores.detach().float().sigmoid()
        _, target_bboxes, target_scores, fg_mask, target_gt_idx = self.assigner(
            probs,
            (pred_bboxes.detach() * stride_tensor).type(gt_bboxes.dtype),
            anchor_points * stride_tensor,
            gt_labels,
            gt_bboxes,
            mask_gt,
            **assign_kwargs,
        )
        target_scores_sum = target_scores.sum().clamp_(min=1)
        if self.normalizer_floor is not None:
            floor = torch.as_tensor(self.normalizer_floor).to(target_scores_sum)
            target_scores_sum = torch.maximum(target_scores_sum, floor)
        self.normalizer = target_scores_sum.detach()
        cls, bg = self.loss_classification(pred_scores, probs, target_scores, fg_mask, target_scores_sum)
        box, dfl = self.bbox_loss(
            pred_distri,
            pred_bboxes,
            anchor_points,
            target_bboxes / stride_tensor,
            target_scores,
            target_scores_sum,
            fg_mask,
            imgsz,
            stride_tensor,
        )
        loss = torch.stack((box * self.hyp.box, cls * self.hyp.cls, dfl * self.hyp.dfl, bg * self.hyp.cls))
        assigned = (fg_mask, target_gt_idx, target_bboxes, anchor_points, stride_tensor)
        return assigned, loss, dict(zip(self.loss_names, loss.detach(), strict=True))

    def loss_classification(
        self, logits: Tensor, probs: Tensor, target_scores: Tensor, fg_mask: Tensor, target_scores_sum: Tensor
    ) -> tuple[Tensor, Tensor]:
        """``(cls, bg)`` before gains, for ``logits: Tensor[B, A, C]`` and ``fg_mask: Tensor[B, A]``."""
        background = ~fg_mask
        penalized = self.mode != "none" and self.lambda_bg > 0
        if self.class_weights is None and self.mode in ("max", "none"):
            bce_sum, penalty_sum = bce_and_background_sums(
                logits, fg_mask, target_scores[fg_mask], probs, with_penalty=penalized
            )
        else:
            bce = F.binary_cross_entropy_with_logits(logits, target_scores.to(logits.dtype), reduction="none")
            bce_sum = (bce * self.class_weights).sum() if self.class_weights is not None else bce.sum()
            penalty_sum = (
                background_penalty(logits, background, self.mode, self.gamma, reduction="sum")
                if penalized
                else bce_sum * 0.0
            )
        weight = self.lambda_bg if penalized else 0.0
        if self.normalize == "joint":
            num_anchors = fg_mask.numel()
            return bce_sum / (logits.shape[-1] * num_anchors), weight * penalty_sum / num_anchors
        if self.normalize == "bce":
            return bce_sum / target_scores_sum, weight * penalty_sum / target_scores_sum
        return bce_sum / target_scores_sum, weight * penalty_sum / background.sum().clamp(min=1)


def penalized_criteria(criterion) -> list[BackgroundPenaltyDetectionLoss]:
    """The :class:`BackgroundPenaltyDetectionLoss` instances inside ``criterion`` (itself, or E2E's two)."""
    if isinstance(criterion, BackgroundPenaltyDetectionLoss):
        return [criterion]
    if isinstance(criterion, E2ELoss):
        return [c for c in (criterion.one2many, criterion.one2one) if isinstance(c, BackgroundPenaltyDetectionLoss)]
    inner = getattr(criterion, "criterion", None)  # wrappers such as SemiSupervisedLoss
    return penalized_criteria(inner) if inner is not None else []


def build_criterion(model, **penalty_kwargs):
    """The penalised criterion for ``model``: YOLOv8 / YOLO11 heads get :class:`BackgroundPenaltyDetectionLoss`,
    end-to-end heads (YOLO26, YOLOv10) get Ultralytics' ``E2ELoss`` built from it."""
    if getattr(model.model[-1], "one2one_cv2", None) is not None:
        return E2ELoss(model, loss_fn=partial(BackgroundPenaltyDetectionLoss, **penalty_kwargs))
    return BackgroundPenaltyDetectionLoss(model, **penalty_kwargs)


def resume_e2e_schedule(criterion, start_epoch: int) -> None:
    """Advance an end-to-end criterion's one-to-many / one-to-one weights to ``start_epoch`` (as Ultralytics
    does for its own on resume); other criteria are left alone."""
    while criterion is not None and not isinstance(criterion, E2ELoss):
        criterion = getattr(criterion, "criterion", None)
    if criterion is not None:
        criterion.updates = start_epoch - 1
        criterion.update()


def set_lambda_bg(criterion, value: float) -> None:
    """Set the penalty weight on every penalised criterion inside ``criterion``."""
    for c in penalized_criteria(criterion):
        c.lambda_bg = float(value)
