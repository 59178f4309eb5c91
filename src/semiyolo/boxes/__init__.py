"""Box coders, anchor target assignment by IoU, and class-aware NMS."""

from .assign import IGNORE, NEGATIVE, RETINANET_MATCHER, YOLOV2_MATCHER, YOLOV3_MATCHER, IoUMatcher
from .coders import (
    SCALED_YOLOV4_CODER,
    YOLOV3_CODER,
    YOLOV4_CODER,
    YoloBoxCoder,
    decode_deltas,
    encode_deltas,
)
from .nms import nms

__all__ = [
    "IGNORE",
    "NEGATIVE",
    "RETINANET_MATCHER",
    "SCALED_YOLOV4_CODER",
    "YOLOV2_MATCHER",
    "YOLOV3_CODER",
    "YOLOV3_MATCHER",
    "YOLOV4_CODER",
    "IoUMatcher",
    "YoloBoxCoder",
    "decode_deltas",
    "encode_deltas",
    "nms",
]
