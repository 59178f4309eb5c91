"""Box coders, anchor target assignment by IoU, class-aware NMS, and anchor points inside boxes."""

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
from .regions import anchors_in_boxes

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
    "anchors_in_boxes",
    "decode_deltas",
    "encode_deltas",
    "nms",
]
