"""Teacher predictions after NMS, of one image or of a batch at once: what the pseudo-label filters see."""

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


@dataclass
class BatchedDetections:
    """Kept detections of a batch of images, image by image in one set of tensors (``image`` never decreases).

    Attributes:
        boxes, scores, classes, bin_logits, cluster_spread: as :class:`Detections`', ``N`` rows over the batch.
        image: ``Tensor[N]`` int64, the image each row belongs to, in ``[0, num_images)``.
        num_images: the batch's size (images without a detection included).
    """

    boxes: Tensor
    scores: Tensor
    classes: Tensor
    bin_logits: Tensor | None
    cluster_spread: Tensor | None
    image: Tensor
    num_images: int

    def __len__(self) -> int:
        return self.scores.shape[0]

    def select(self, keep: Tensor) -> BatchedDetections:
        """The rows where ``keep`` (bool mask or ascending indices) holds, still image by image."""
        rows = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "num_images"}
        kept = {k: v[keep] if v is not None else None for k, v in rows.items()}
        return BatchedDetections(**kept, num_images=self.num_images)

    def counts(self) -> Tensor:
        """``Tensor[num_images]`` int64: the rows of each image."""
        return torch.bincount(self.image, minlength=self.num_images)

    def split(self) -> list[Detections]:
        """Each image's :class:`Detections` (views of these tensors)."""
        counts = self.counts().tolist()
        columns = [getattr(self, f.name) for f in fields(Detections)]
        parts = [c.split(counts) if c is not None else [None] * len(counts) for c in columns]
        return [Detections(*each) for each in zip(*parts, strict=True)]

    @staticmethod
    def from_list(images: list[Detections]) -> BatchedDetections:
        """The detections of ``images`` (one :class:`Detections` each) in one batch."""
        if not images:
            return BatchedDetections.empty(0)
        counts = torch.tensor([len(d) for d in images])
        image = torch.repeat_interleave(torch.arange(len(images)), counts).to(images[0].scores.device)
        columns = {}
        for f in fields(Detections):
            values = [getattr(d, f.name) for d in images]
            columns[f.name] = None if any(v is None for v in values) else torch.cat(values)
        return BatchedDetections(**columns, image=image, num_images=len(images))

    @staticmethod
    def empty(num_images: int, n_bins: int | None = None, device: torch.device | str = "cpu") -> BatchedDetections:
        none = Detections.empty(n_bins, device)
        rows = {f.name: getattr(none, f.name) for f in fields(Detections)}
        return BatchedDetections(**rows, image=torch.zeros(0, dtype=torch.long, device=device), num_images=num_images)
