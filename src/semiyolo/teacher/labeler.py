"""The teacher's pseudo-labels: one no-grad forward, class-aware NMS with cluster spread, the filter chain."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torchvision.ops import box_convert

from ..pseudo import Detections, FilterChain
from ..pseudo.nms import nms_with_spread


def _head_outputs(out) -> tuple[Tensor, dict]:
    decoded, raw = out if isinstance(out, (tuple, list)) else (out, {})
    if isinstance(raw, dict) and "one2many" in raw:
        raw = raw["one2many"]
    return decoded, raw


def per_anchor(decoded: Tensor) -> tuple[Tensor, Tensor]:
    """``(probs Tensor[B, A, C], boxes Tensor[B, A, 4] xyxy pixels)``, float32, of a detection head's decoded
    inference output ``Tensor[B, 4 + C, A]`` (cxcywh pixels, then class probabilities)."""
    boxes = box_convert(decoded[:, :4].float().transpose(1, 2), "cxcywh", "xyxy")
    return decoded[:, 4:].float().transpose(1, 2), boxes


class TeacherPseudoLabeler:
    """Detections of a (teacher) Ultralytics detection model on a batch, then the filter chain.

    Args:
        filters: the configured chain.
        min_score: candidates below this never reach NMS (bounds its cost; the filters decide the rest).
        nms_iou: NMS IoU threshold, also the cluster threshold of the NMS spread.
        max_candidates: the best-scoring candidates per image kept for NMS.
        amp_dtype: on CUDA, the forward runs under autocast to this dtype (the host trainer's AMP: ``float16`` or
            ``bfloat16``), as the host's own validation does; ``None``: float32. Post-processing is float32.
    """

    def __init__(
        self,
        filters: FilterChain,
        min_score: float = 0.1,
        nms_iou: float = 0.7,
        max_candidates: int = 3000,
        max_det: int = 300,
        amp_dtype: torch.dtype | None = None,
    ) -> None:
        self.filters, self.min_score, self.nms_iou = filters, min_score, nms_iou
        self.max_candidates, self.max_det = max_candidates, max_det
        self.amp_dtype = amp_dtype

    @torch.no_grad()
    def forward(self, teacher: nn.Module, images: Tensor) -> tuple[Tensor, dict]:
        """The teacher's eval-mode head outputs on ``images: Tensor[B, 3, H, W]`` in [0, 1]."""
        was_training = teacher.training
        teacher.eval()
        amp = self.amp_dtype is not None and images.device.type == "cuda"
        try:
            with torch.autocast("cuda", dtype=self.amp_dtype or torch.float16, enabled=amp):
                return _head_outputs(teacher(images))
        finally:
            teacher.train(was_training)

    @torch.no_grad()
    def postprocess(self, decoded: Tensor, raw: dict) -> list[Detections]:
        """Per image: candidates above ``min_score``, class-aware NMS with cluster spread, DFL logits kept."""
        reg_max = raw["boxes"].shape[1] // 4 if isinstance(raw, dict) and "boxes" in raw else 1
        probs, boxes = per_anchor(decoded)
        scores, classes = probs.max(-1)
        return [self._image(boxes[i], scores[i], classes[i], raw, i, reg_max) for i in range(decoded.shape[0])]

    def detect(self, teacher: nn.Module, images: Tensor) -> list[Detections]:
        """Detections after NMS, before the filters."""
        return self.postprocess(*self.forward(teacher, images))

    def _image(self, boxes: Tensor, scores: Tensor, classes: Tensor, raw: dict, i: int, reg_max: int) -> Detections:
        candidates = (scores > self.min_score).nonzero().squeeze(1)
        if candidates.numel() > self.max_candidates:
            candidates = candidates[scores[candidates].topk(self.max_candidates).indices]
        if candidates.numel() == 0:
            return Detections.empty(reg_max if reg_max > 1 else None, boxes.device)
        keep, spread = nms_with_spread(
            boxes[candidates], scores[candidates], classes[candidates], self.nms_iou, self.max_det
        )
        anchors = candidates[keep]
        bins = raw["boxes"][i][:, anchors].T.reshape(-1, 4, reg_max).float() if reg_max > 1 else None
        return Detections(boxes[anchors], scores[anchors], classes[anchors], bins, spread)

    def __call__(self, teacher: nn.Module, images: Tensor) -> list[Detections]:
        """Pseudo-labels: :meth:`detect` then the filter chain, per image."""
        return [self.filters(d) for d in self.detect(teacher, images)]
