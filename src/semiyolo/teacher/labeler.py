"""The teacher's pseudo-labels: one no-grad forward, class-aware NMS with cluster spread, the filter chain."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import box_convert

from ..pseudo import BatchedDetections, Detections, FilterChain
from ..pseudo.fusion import fuse_views
from ..pseudo.nms import batched_nms_with_spread, nms_with_spread
from .folding import FoldedTeacher
from .mirror import mirror_views, views_mean

VIEW_FUSION = ("anchor", "boxes")  # semi.teacher_fusion: how the teacher's views combine


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


def scaled_size(height: int, width: int, scale: float, stride: int) -> tuple[int, int]:
    """``(height, width) * scale`` rounded to the nearest multiple of ``stride``, halves up (at least one stride)."""
    return tuple(stride * max(1, math.floor(n * scale / stride + 0.5)) for n in (height, width))


def _model_stride(model: nn.Module) -> int:
    """The largest stride of an Ultralytics model (its ``stride`` attribute); 32 where it has none."""
    stride = getattr(model, "stride", None)
    return int(torch.as_tensor(stride).max()) if stride is not None else 32


def _in_pixels(outputs: tuple[Tensor, dict], seen: tuple[int, int], size: tuple[int, int]) -> tuple[Tensor, dict]:
    """``(decoded, raw)`` of images the teacher saw at ``seen`` (height, width), boxes mapped to the images' ``size``:
    ``align_corners=False`` resizes pixel coordinates by exactly the size ratio."""
    decoded, raw = outputs
    if seen == size:
        return decoded, raw
    decoded = decoded.float()  # not the ratio rounded to half precision under AMP
    ratio = decoded.new_tensor([size[1] / seen[1], size[0] / seen[0]] * 2)
    return torch.cat([decoded[:, :4] * ratio[:, None], decoded[:, 4:]], 1), raw


def _expand(index: Tensor, width: int) -> Tensor:
    """``index: Tensor[B, k]`` as ``Tensor[B, k, width]``, to gather rows of a ``(B, A, width)`` tensor."""
    return index[..., None].expand(-1, -1, width)


class TeacherPseudoLabeler:
    """Detections of a (teacher) Ultralytics detection model on a batch, then the filter chain.

    Args:
        filters: the configured chain.
        min_score: candidates below this never reach NMS (bounds its cost; the filters decide the rest).
        nms_iou: NMS IoU threshold, also the cluster threshold of the NMS spread.
        max_candidates: the best-scoring candidates per image kept for NMS.
        amp_dtype: on CUDA, the forward runs under autocast to this dtype (the host trainer's AMP: ``float16`` or
            ``bfloat16``), as the host's own validation does; ``None``: float32. Post-processing is float32.
        fold: the forward runs through a copy of the teacher with its BatchNorms folded into the convolutions, in
            channels-last memory (:class:`~.folding.FoldedTeacher`: the same outputs, faster); False: the teacher
            runs itself.
        mirror: the outputs are a flip ensemble, the mean of the teacher's outputs on each image and on its
            left-right mirror mapped back, anchor by anchor (:func:`~.mirror.mirror_average`): one forward of
            twice the batch.
        scale: the teacher sees the images resized by this factor (bilinear, to the nearest multiple of the
            model's largest stride), and its boxes are mapped back to the images' pixels: a teacher that finds small
            objects better when they are larger (``benchmarks/teacher_scale.py`` measures the choice on the labeled
            images). The per-anchor outputs are then on the resized image's grid; the DFL logits stay in its
            stride units, so a ``dfl_entropy`` threshold asks for a little more precision in pixels. A box side
            reaches at most ``reg_max - 1`` strides from its anchor (15 x 32 = 480 px for YOLOv8): an object as
            wide as the image needs ``S x imgsz / 2`` px, so above ``S = 1.5`` at 640 px the largest objects are
            cut short (docs/BENCHMARKS.md, "A teacher that labels larger images", tries 1.2 and 1.4).
        fusion: how the views combine: ``anchor`` (the flip ensemble's outputs averaged anchor by anchor, one scale)
            or ``boxes`` (:meth:`detect_fused`: every view post-processed on its own, the detections fused by
            :func:`~semiyolo.pseudo.fusion.fuse_views`).
        more_scales: with ``boxes``, further scales the teacher labels at, each one more view (with its mirror too
            under ``mirror``): one forward per scale.
    """

    def __init__(
        self,
        filters: FilterChain,
        min_score: float = 0.1,
        nms_iou: float = 0.7,
        max_candidates: int = 3000,
        max_det: int = 300,
        amp_dtype: torch.dtype | None = None,
        fold: bool = True,
        mirror: bool = False,
        scale: float = 1.0,
        fusion: str = "anchor",
        more_scales: tuple[float, ...] = (),
    ) -> None:
        if not all(s > 0 for s in (scale, *more_scales)):
            raise ValueError(f"scales must be > 0, got {(scale, *more_scales)}")
        if fusion not in VIEW_FUSION:
            raise ValueError(f"fusion must be one of {VIEW_FUSION}, got {fusion!r}")
        if more_scales and fusion != "boxes":
            raise ValueError("more scales need fusion 'boxes': anchors of different scales do not line up")
        self.filters, self.min_score, self.nms_iou = filters, min_score, nms_iou
        self.max_candidates, self.max_det = max_candidates, max_det
        self.amp_dtype = amp_dtype
        self.folded = FoldedTeacher() if fold else None
        self.mirror, self.scale = mirror, scale
        self.fusion, self.more_scales = fusion, tuple(more_scales)

    @property
    def has_views(self) -> bool:
        """Whether the teacher sees each image more than once (its mirror, or more scales)."""
        return self.mirror or bool(self.more_scales)

    @torch.no_grad()
    def forward(self, teacher: nn.Module, images: Tensor) -> tuple[Tensor, dict]:
        """The teacher's eval-mode head outputs on ``images: Tensor[B, 3, H, W]`` in [0, 1] (with ``mirror``, the
        flip ensemble's): ``decoded: Tensor[B, 4 + C, A]``, boxes ``(cx, cy, w, h)`` in ``images``' pixels and class
        probabilities, and ``raw``, the head's training outputs. With ``scale`` the ``A`` anchors are those of the
        resized images' grid, and so are ``raw``'s DFL logits (in its stride units)."""
        return self.forward_views(teacher, images, views=False)[0]

    @torch.no_grad()
    def forward_views(
        self, teacher: nn.Module, images: Tensor, views: bool = True
    ) -> tuple[tuple[Tensor, dict], list[tuple[Tensor, dict]]]:
        """:meth:`forward`'s ``(decoded, raw)`` and, with ``mirror`` and ``views``, each view's own outputs from the
        same forward, on the same anchors and in the same pixels: the image's, then its mirror's mapped back
        (:func:`~.mirror.mirror_views`); otherwise ``[]``."""
        height, width = images.shape[-2:]
        outputs, seen = self._head_on(teacher, images, self.scale)
        each = mirror_views(*outputs, seen[1]) if self.mirror else []
        fused = views_mean(each) if self.mirror else outputs
        return _in_pixels(fused, seen, (height, width)), [_in_pixels(v, seen, (height, width)) for v in each if views]

    @torch.no_grad()
    def view_detections(self, teacher: nn.Module, images: Tensor) -> list[list[Detections]]:
        """Per view, each image's detections on its own (candidate floor, NMS), in ``images``' pixels: for each
        scale (``scale``, then ``more_scales``) the images, then with ``mirror`` their mirrors mapped back; one
        forward per scale."""
        height, width = images.shape[-2:]
        found = []
        for scale in (self.scale, *self.more_scales):
            outputs, seen = self._head_on(teacher, images, scale)
            for decoded, raw in mirror_views(*outputs, seen[1]) if self.mirror else [outputs]:
                decoded, raw = _in_pixels((decoded, raw), seen, (height, width))
                found.append(self.postprocess(*per_anchor(decoded), raw))
        return found

    def detect_fused(self, teacher: nn.Module, images: Tensor) -> tuple[list[Detections], list[list[Detections]]]:
        """:meth:`detect_views` with the views fused at the detection level: each image's detections from every
        view (:meth:`view_detections`) fused by :func:`~semiyolo.pseudo.fusion.fuse_views` (those whose fused
        score, the views' mean, falls to ``min_score`` or under dropped, as candidates under it are), and per image
        each view's own."""
        per_view = self.view_detections(teacher, images)
        per_image = [list(views) for views in zip(*per_view, strict=True)]
        fused = [fuse_views(views)[0] for views in per_image]
        return [d.select(d.scores > self.min_score) for d in fused], per_image  # the views' mean, above the floor

    def _head_on(self, teacher: nn.Module, images: Tensor, scale: float) -> tuple[tuple[Tensor, dict], tuple[int, int]]:
        """The head's outputs on the images resized by ``scale`` (with ``mirror`` their mirrors too), and the
        ``(height, width)`` the teacher saw."""
        was_training = teacher.training
        teacher.eval()
        amp = self.amp_dtype is not None and images.device.type == "cuda"
        if scale != 1:
            size = scaled_size(*images.shape[-2:], scale, _model_stride(teacher))
            images = F.interpolate(images, size=size, mode="bilinear", align_corners=False)
        inputs = torch.cat([images, images.flip(-1)]) if self.mirror else images
        try:
            with torch.autocast("cuda", dtype=self.amp_dtype or torch.float16, enabled=amp):
                outputs = _head_outputs(self.folded(teacher, inputs) if self.folded else teacher(inputs))
        finally:
            teacher.train(was_training)
        return outputs, tuple(images.shape[-2:])

    @torch.no_grad()
    def postprocess_batched(self, probs: Tensor, boxes: Tensor, raw: dict) -> BatchedDetections:
        """:meth:`postprocess`'s detections of the whole batch in one :class:`BatchedDetections`, never split."""
        return self._candidates(probs, boxes, raw, batched=True)

    @torch.no_grad()
    def postprocess(self, probs: Tensor, boxes: Tensor, raw: dict, batched: bool = True) -> list[Detections]:
        """Per image: the best ``max_candidates`` candidates above ``min_score``, class-aware NMS with cluster
        spread, DFL logits kept; on the CPU. ``probs``, ``boxes``: :func:`per_anchor` of the head's decoded output;
        ``raw``: its training outputs (the DFL logits). ``batched``: NMS for the whole batch at once
        (:func:`~..pseudo.nms.batched_nms_with_spread`); False: image by image, the same detections.

        The candidates of the whole batch are gathered where the head ran and moved to the CPU in one transfer:
        after that, a few hundred boxes per image cost a GPU more in kernel launches and waits than the CPU in
        arithmetic (see docs/BENCHMARKS.md, "On a GPU")."""
        found = self._candidates(probs, boxes, raw, batched)
        return found.split() if isinstance(found, BatchedDetections) else found

    def _candidates(
        self, probs: Tensor, boxes: Tensor, raw: dict, batched: bool
    ) -> BatchedDetections | list[Detections]:
        """:meth:`postprocess`: batched, one :class:`BatchedDetections`; else image by image."""
        reg_max = raw["boxes"].shape[1] // 4 if isinstance(raw, dict) and "boxes" in raw else 1
        n_bins = reg_max if reg_max > 1 else None
        scores, classes = probs.max(-1)  # (B, A)
        k = min(int((scores > self.min_score).sum(1).max()) if scores.numel() else 0, self.max_candidates)
        if k == 0 and batched:
            return BatchedDetections.empty(scores.shape[0], n_bins)
        if k == 0:
            return [Detections.empty(n_bins) for _ in range(scores.shape[0])]
        top, index = scores.topk(k, dim=1)  # (B, k), best first
        columns = [top[..., None], classes.gather(1, index)[..., None].float(), boxes.gather(1, _expand(index, 4))]
        if n_bins:
            distri = raw["boxes"].transpose(1, 2)  # (B, A, 4 reg_max)
            columns.append(distri.gather(1, _expand(index, distri.shape[-1])).float())
        candidates = torch.cat(columns, -1).cpu()  # (B, k, 6 [+ 4 reg_max])
        if batched:
            return self._batch(candidates, n_bins)
        return [self._image(c[c[:, 0] > self.min_score], n_bins) for c in candidates]

    def detect(self, teacher: nn.Module, images: Tensor) -> list[Detections]:
        """Detections after NMS, before the filters (on the CPU); with ``fusion: boxes``, the fused ones."""
        if self.fusion == "boxes":
            return self.detect_fused(teacher, images)[0]
        decoded, raw = self.forward(teacher, images)
        return self.postprocess(*per_anchor(decoded), raw)

    def detect_batched(self, teacher: nn.Module, images: Tensor) -> BatchedDetections:
        """:meth:`detect`'s detections of the whole batch in one :class:`BatchedDetections`."""
        if self.fusion == "boxes":
            return BatchedDetections.from_list(self.detect(teacher, images))
        decoded, raw = self.forward(teacher, images)
        return self.postprocess_batched(*per_anchor(decoded), raw)

    def detect_views(self, teacher: nn.Module, images: Tensor) -> tuple[list[Detections], list[list[Detections]]]:
        """:meth:`detect`'s detections and, per image, each view's own (with ``mirror``: the image's, then the
        mirror's mapped back; none without), each through the same candidate floor and NMS; from one forward. With
        ``fusion: boxes``, :meth:`detect_fused`'s."""
        if self.fusion == "boxes":
            return self.detect_fused(teacher, images)
        (decoded, raw), views = self.forward_views(teacher, images)
        per_view = [self.postprocess(*per_anchor(d), r) for d, r in views]  # [view][image]
        fused = self.postprocess(*per_anchor(decoded), raw)
        return fused, [list(v) for v in zip(*per_view, strict=True)] if per_view else [[] for _ in fused]

    def _batch(self, candidates: Tensor, n_bins: int | None) -> BatchedDetections:
        """One NMS over the batch's candidates ``Tensor[B, k, 6 (+ 4 n_bins)]`` (score, class, xyxy box (, DFL
        logits)): the batch's detections, image by image."""
        scores, classes = candidates[..., 0], candidates[..., 1].long()
        image, index, spread = batched_nms_with_spread(
            candidates[..., 2:6], scores, classes, scores > self.min_score, self.nms_iou, self.max_det
        )
        kept = candidates[image, index]  # (N, 6 [+ 4 n_bins]), image by image
        bins = kept[:, 6:].reshape(-1, 4, n_bins) if n_bins else None
        return BatchedDetections(
            kept[:, 2:6], kept[:, 0], kept[:, 1].long(), bins, spread, image, num_images=candidates.shape[0]
        )

    def _image(self, candidates: Tensor, n_bins: int | None) -> Detections:
        """NMS over one image's candidates ``Tensor[K, 6 (+ 4 n_bins)]``: score, class, xyxy box (, DFL logits)."""
        if candidates.shape[0] == 0:
            return Detections.empty(n_bins)
        scores, classes, boxes = candidates[:, 0], candidates[:, 1].long(), candidates[:, 2:6]
        keep, spread = nms_with_spread(boxes, scores, classes, self.nms_iou, self.max_det)
        bins = candidates[keep, 6:].reshape(-1, 4, n_bins) if n_bins else None
        return Detections(boxes[keep], scores[keep], classes[keep], bins, spread)

    def __call__(self, teacher: nn.Module, images: Tensor) -> list[Detections]:
        """Pseudo-labels: :meth:`detect` then the filter chain, per image."""
        return [self.filters(d) for d in self.detect(teacher, images)]
