"""Classic one-stage detection criteria on toy heads: YOLOv1, YOLOv3, YOLOv4, RetinaNet and GFL.

Each takes targets in Ultralytics' batch layout, ``Tensor[n, 6]`` rows ``(image_index, class, cx, cy, w, h)``
normalised to [0, 1], and returns a dict of named loss terms (sum them for the total).
"""

from .gfl import GFLLoss, assign_points_inside
from .retinanet import RetinaNetLoss
from .yolov1 import YoloV1Loss
from .yolov3 import YOLOV3_ANCHORS, YoloV3Loss, YoloV4Loss

__all__ = [
    "YOLOV3_ANCHORS",
    "GFLLoss",
    "RetinaNetLoss",
    "YoloV1Loss",
    "YoloV3Loss",
    "YoloV4Loss",
    "assign_points_inside",
]
