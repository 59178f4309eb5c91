"""Dense one-stage detection losses, depending on PyTorch alone.

Every loss takes ``reduction`` in ``none | mean | sum``, computes half and bfloat16 input in float32, and
returns a zero still attached to the graph for empty input.
"""

from .background import (
    BACKGROUND_MODES,
    PENALTY_MODES,
    PENALTY_NORMALIZATIONS,
    background_penalty,
    bce_and_background_sums,
)
from .focal import focal_loss, inverse_frequency_alpha, sigmoid_focal_loss, varifocal_loss
from .gfl import distribution_focal_loss, integral_decode, quality_focal_loss
from .iou import IOU_KINDS, box_iou_paired, iou_loss

__all__ = [
    "BACKGROUND_MODES",
    "IOU_KINDS",
    "PENALTY_MODES",
    "PENALTY_NORMALIZATIONS",
    "background_penalty",
    "bce_and_background_sums",
    "box_iou_paired",
    "distribution_focal_loss",
    "focal_loss",
    "integral_decode",
    "inverse_frequency_alpha",
    "iou_loss",
    "quality_focal_loss",
    "sigmoid_focal_loss",
    "varifocal_loss",
]
