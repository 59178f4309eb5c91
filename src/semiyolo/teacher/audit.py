"""What the teacher taught in an epoch: pseudo-labels per image, their confidence and, where the unlabeled
images have hidden labels (a benchmark split), their precision, recall and how well the found ones are placed (the
mean IoU of each true pseudo-label with its object). Observes; never reaches a loss."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from torch import Tensor

from ..metrics import match_pairs
from ..pseudo import Detections


class PseudoLabelAudit:
    """Counts over one epoch; :meth:`metrics` gives the ``semi/...`` figures, :meth:`reset` starts the next."""

    def __init__(self) -> None:
        self.counts: dict[str, float] = defaultdict(float)

    def reset(self) -> None:
        self.counts.clear()

    def observe(self, detections: Sequence[Detections], hidden: Sequence[Tensor]) -> None:
        """``detections[i]``: image ``i``'s pseudo-labels; ``hidden[i]``: ``Tensor[n, 5]`` (class, x1, y1, x2, y2)
        in the same pixel frame, empty when the image has no label file."""
        c = self.counts
        c["images"] += len(detections)
        for dets, truth in zip(detections, hidden, strict=True):
            c["pseudo_labels"] += len(dets)
            c["confidence_sum"] += float(dets.scores.sum())
            if truth.numel():
                matched, iou = match_pairs(
                    dets.boxes.cpu(),
                    dets.scores.cpu(),
                    dets.classes.cpu(),
                    truth[:, 1:].cpu(),
                    truth[:, 0].long().cpu(),
                )
                c["hidden_tp"] += int((matched >= 0).sum())
                c["hidden_iou_sum"] += float(iou.sum())
                c["hidden_pl"] += len(dets)
                c["hidden_gt"] += truth.shape[0]

    def metrics(self) -> dict[str, float]:
        c = self.counts
        return {
            "semi/pseudo_per_image": c["pseudo_labels"] / max(c["images"], 1),
            "semi/teacher_conf": c["confidence_sum"] / max(c["pseudo_labels"], 1),
            "semi/pl_precision": c["hidden_tp"] / c["hidden_pl"] if c["hidden_pl"] else float("nan"),
            "semi/pl_recall": c["hidden_tp"] / c["hidden_gt"] if c["hidden_gt"] else float("nan"),
            "semi/pl_iou": c["hidden_iou_sum"] / c["hidden_tp"] if c["hidden_tp"] else float("nan"),
        }
