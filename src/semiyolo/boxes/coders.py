"""Box coders: YOLO's grid-cell parameterisations and the R-CNN / RetinaNet anchor deltas.

YOLO (Redmon and Farhadi, YOLO9000 / YOLOv3; Bochkovskiy et al., YOLOv4; Wang et al., Scaled-YOLOv4)::

    b_xy = s * sigmoid(t_xy) - (s - 1) / 2 + c_xy      s = 1 (v2/v3), 1.1 (v4 grid sensitivity), 2 (Scaled-YOLOv4)
    b_wh = p_wh * exp(t_wh)                            (v2/v3/v4)
    b_wh = p_wh * (2 sigmoid(t_wh))^2                  (Scaled-YOLOv4: at most 4 p_wh)

``c_xy`` is the integer cell index and ``p_wh`` the anchor (prior) size, all in grid-cell units; boxes are
``(cx, cy, w, h)``. ``s > 1`` lets a centre reach the cell's edges, which ``sigmoid`` alone only approaches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

WH_MODES = ("exp", "sigmoid_squared")


def _logit(p: Tensor, eps: float) -> Tensor:
    p = p.clamp(eps, 1 - eps)
    return torch.log(p) - torch.log1p(-p)


@dataclass(frozen=True)
class YoloBoxCoder:
    """Encode ``(cx, cy, w, h)`` boxes to YOLO's ``t = (t_x, t_y, t_w, t_h)`` and decode them back.

    Args:
        xy_scale: ``s`` above (>= 1).
        wh_mode: ``"exp"`` or ``"sigmoid_squared"``.
        eps: encoding clamps reachable fractions to ``[eps, 1 - eps]``: a centre on the boundary of what
            the cell can reach (or a size of 4 anchors in ``sigmoid_squared``) maps to a large finite ``t``.
    """

    xy_scale: float = 1.0
    wh_mode: str = "exp"
    eps: float = 1e-6

    def __post_init__(self) -> None:
        if not self.xy_scale >= 1:
            raise ValueError(f"xy_scale must be >= 1, got {self.xy_scale!r}")
        if self.wh_mode not in WH_MODES:
            raise ValueError(f"wh_mode must be one of {WH_MODES}, got {self.wh_mode!r}")

    @property
    def _shift(self) -> float:
        return (self.xy_scale - 1) / 2

    def decode(self, t: Tensor, cells: Tensor, anchors: Tensor) -> Tensor:
        """``t``: ``Tensor[*, 4]``; ``cells``, ``anchors``: ``Tensor[*, 2]`` (broadcastable). Returns cxcywh."""
        xy = torch.sigmoid(t[..., :2]) * self.xy_scale - self._shift + cells
        if self.wh_mode == "exp":
            wh = anchors * torch.exp(t[..., 2:])
        else:
            wh = anchors * (2 * torch.sigmoid(t[..., 2:])).square()
        return torch.cat((xy, wh), dim=-1)

    def encode(self, boxes: Tensor, cells: Tensor, anchors: Tensor) -> Tensor:
        """Inverse of :meth:`decode`: ``boxes`` cxcywh ``Tensor[*, 4]`` with positive sizes."""
        fraction = (boxes[..., :2] - cells + self._shift) / self.xy_scale
        t_xy = _logit(fraction, self.eps)
        ratio = boxes[..., 2:] / anchors
        if self.wh_mode == "exp":
            t_wh = torch.log(ratio.clamp(min=self.eps))
        else:
            t_wh = _logit(ratio.clamp(min=0).sqrt() / 2, self.eps)
        return torch.cat((t_xy, t_wh), dim=-1)


YOLOV3_CODER = YoloBoxCoder(1.0, "exp")  # also YOLOv2
YOLOV4_CODER = YoloBoxCoder(1.1, "exp")
SCALED_YOLOV4_CODER = YoloBoxCoder(2.0, "sigmoid_squared")

_DELTA_CLAMP = math.log(1000.0 / 16)  # torchvision's bound on dw, dh before exp


def encode_deltas(anchors: Tensor, boxes: Tensor, weights: tuple[float, float, float, float] = (1, 1, 1, 1)) -> Tensor:
    """R-CNN / RetinaNet deltas of ``boxes`` relative to ``anchors`` (both xyxy ``Tensor[N, 4]``).

    ``d_x = w_x (x - x_a) / w_a``, ``d_y`` likewise, ``d_w = w_w log(w / w_a)``, ``d_h`` likewise, with
    ``(x, y)`` box centres. Same as torchvision's detection ``BoxCoder`` (a private utility there).
    """
    wx, wy, ww, wh = weights
    a_wh = anchors[:, 2:] - anchors[:, :2]
    a_ctr = anchors[:, :2] + 0.5 * a_wh
    b_wh = boxes[:, 2:] - boxes[:, :2]
    b_ctr = boxes[:, :2] + 0.5 * b_wh
    d_xy = (b_ctr - a_ctr) / a_wh * torch.tensor([wx, wy], dtype=boxes.dtype, device=boxes.device)
    d_wh = torch.log(b_wh / a_wh) * torch.tensor([ww, wh], dtype=boxes.dtype, device=boxes.device)
    return torch.cat((d_xy, d_wh), dim=1)


def decode_deltas(anchors: Tensor, deltas: Tensor, weights: tuple[float, float, float, float] = (1, 1, 1, 1)) -> Tensor:
    """Inverse of :func:`encode_deltas`; ``d_w, d_h`` are clamped at ``log(1000 / 16)`` before ``exp``."""
    wx, wy, ww, wh = weights
    scale = torch.tensor([wx, wy, ww, wh], dtype=deltas.dtype, device=deltas.device)
    deltas = deltas / scale
    a_wh = anchors[:, 2:] - anchors[:, :2]
    a_ctr = anchors[:, :2] + 0.5 * a_wh
    ctr = a_ctr + deltas[:, :2] * a_wh
    half = 0.5 * a_wh * torch.exp(deltas[:, 2:].clamp(max=_DELTA_CLAMP))
    return torch.cat((ctr - half, ctr + half), dim=1)
