"""Teacher predictions on one image, after NMS: what the pseudo-label filters see."""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import Tensor


@dataclass
class Detections:
    """Kept detections of one image.

    Attributes:
        boxes: ``Tensor[N, 4]`` xyxy pixels. scores: ``Tensor[N]``. classes: ``Tensor[N]`` int64.
        bin_logits: ``Tensor[N, 4, n_bins]``, the DFL distributions of the kept anchors (in the strides of the
            image the model saw: a teacher at ``teacher_scale`` S saw it S times larger), or ``None`` for heads
            without DFL.
        cluster_spread: ``Tensor[N]``, the spread of the boxes NMS suppressed around each kept box (see
            :func:`semiyolo.pseudo.nms.nms_with_spread`), or ``None``.
    """

    boxes: Tensor
    scores: Tensor
    classes: Tensor
    bin_logits: Tensor | None = None
    cluster_spread: Tensor | None = None

    def __len__(self) -> int:
        return self.scores.shape[0]

    def select(self, keep: Tensor) -> Detections:
        """The detections where ``keep`` (bool mask or indices) holds."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return Detections(**{k: v[keep] if v is not None else None for k, v in values.items()})

    @staticmethod
    def empty(n_bins: int | None = None, device: torch.device | str = "cpu") -> Detections:
        return Detections(
            torch.zeros(0, 4, device=device),
            torch.zeros(0, device=device),
            torch.zeros(0, dtype=torch.long, device=device),
            torch.zeros(0, 4, n_bins, device=device) if n_bins else None,
            torch.zeros(0, device=device),
        )
