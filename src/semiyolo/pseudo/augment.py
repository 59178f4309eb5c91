"""The student's strong view of an unlabeled batch, with the pseudo-boxes carried through it (torch only).

Geometric: a random horizontal flip and a random scale and translation (one affine map per image, applied
with ``grid_sample``, padding grey 114 like Ultralytics' letterbox; the boxes' corners go through the same map,
are clipped to the image, and boxes that lose most of their area are dropped). With no flip, scale or
translation the view is photometric only (no resampling): the choice when the geometric view
comes from Ultralytics' own transforms. Photometric: brightness, contrast and saturation jitter, grayscale,
cutout (grey rectangles, as in Unbiased Teacher's and Soft Teacher's strong views) and Gaussian noise; none of
them moves a box.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

GREY = 114 / 255  # Ultralytics' padding value, in [0, 1]


@dataclass(frozen=True)
class StrongAugment:
    flip: float = 0.5
    scale: tuple[float, float] = (0.6, 1.4)
    translate: float = 0.15
    brightness: float = 0.3
    contrast: float = 0.3
    saturation: float = 0.4
    noise: float = 0.0  # Gaussian pixel noise; off by default: a third of the augmentation time, little gain
    grayscale: float = 0.0  # probability of a grey image
    cutout: int = 0  # grey rectangles per image, each up to cutout_size of the side
    cutout_size: float = 0.2
    min_area_kept: float = 0.3  # a box keeps at least this share of its area after clipping, or is dropped

    @property
    def moves_boxes(self) -> bool:
        return self.flip > 0 or self.scale != (1.0, 1.0) or self.translate > 0

    def __call__(self, images: Tensor, boxes: list[Tensor], generator: torch.Generator | None = None):
        """``images: Tensor[B, 3, H, W]`` in [0, 1]; ``boxes[i]: Tensor[n_i, 4]`` xyxy pixels.

        Returns ``(images, boxes, kept)`` with ``kept[i]`` the indices of image ``i``'s boxes that survive.
        """
        b, _, h, w = images.shape
        dev = images.device
        if not self.moves_boxes:  # the identity map: no resampling; boxes are clipped and filtered as below
            placed = [self._move_boxes(bx, 1.0, 1.0, [0.0, 0.0], w, h) for bx in boxes]
            return self._photometric(images, generator), [p[0] for p in placed], [p[1] for p in placed]

        def uniform(lo: float, hi: float, n: int = b) -> Tensor:
            return torch.rand(n, generator=generator, device="cpu").to(dev) * (hi - lo) + lo

        flip = torch.where(uniform(0, 1) < self.flip, -1.0, 1.0)
        scale = uniform(*self.scale)
        shift = torch.stack((uniform(-self.translate, self.translate), uniform(-self.translate, self.translate)), 1)
        geometric = self._warp(images, flip, scale, shift)
        out_boxes, kept = [], []
        for i, bx in enumerate(boxes):
            moved, keep = self._move_boxes(bx, float(flip[i]), float(scale[i]), shift[i].tolist(), w, h)
            out_boxes.append(moved)
            kept.append(keep)
        return self._photometric(geometric, generator), out_boxes, kept

    @staticmethod
    def _warp(images: Tensor, flip: Tensor, scale: Tensor, shift: Tensor) -> Tensor:
        # forward map u_out = flip (s u_in + t); grid_sample wants its inverse, u_in = (flip u_out - t) / s
        theta = torch.zeros(images.shape[0], 2, 3, device=images.device, dtype=images.dtype)
        theta[:, 0, 0] = flip / scale
        theta[:, 1, 1] = 1 / scale
        theta[:, 0, 2] = -shift[:, 0] / scale
        theta[:, 1, 2] = -shift[:, 1] / scale
        grid = F.affine_grid(theta, list(images.shape), align_corners=False)
        warped = F.grid_sample(images - GREY, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        return warped + GREY  # what the map brings in from outside the image is grey 114

    def _move_boxes(self, boxes: Tensor, flip: float, scale: float, shift: list[float], w: int, h: int):
        if boxes.numel() == 0:
            return boxes.reshape(0, 4), torch.zeros(0, dtype=torch.long, device=boxes.device)
        # forward map in normalised coordinates u in [-1, 1]: u_out = flip * (s * u_in + t)
        half = boxes.new_tensor([w / 2, h / 2, w / 2, h / 2])
        u = boxes / half - 1
        u = u * scale + boxes.new_tensor([shift[0], shift[1], shift[0], shift[1]])
        if flip < 0:
            u = torch.stack((-u[:, 2], u[:, 1], -u[:, 0], u[:, 3]), 1)
        moved = (u + 1) * half
        area = (moved[:, 2] - moved[:, 0]) * (moved[:, 3] - moved[:, 1])
        moved = torch.stack(
            (moved[:, 0].clamp(0, w), moved[:, 1].clamp(0, h), moved[:, 2].clamp(0, w), moved[:, 3].clamp(0, h)), 1
        )
        clipped = (moved[:, 2] - moved[:, 0]) * (moved[:, 3] - moved[:, 1])
        keep = (
            (
                (clipped >= self.min_area_kept * area)
                & (moved[:, 2] - moved[:, 0] >= 2)
                & (moved[:, 3] - moved[:, 1] >= 2)
            )
            .nonzero()
            .squeeze(1)
        )
        return moved[keep], keep

    def _photometric(self, images: Tensor, generator: torch.Generator | None) -> Tensor:
        b = images.shape[0]

        def factor(strength: float) -> Tensor:
            return (1 + (torch.rand(b, 1, 1, 1, generator=generator) * 2 - 1) * strength).to(images)

        gray = images.mean(1, keepdim=True)
        images = gray + (images - gray) * factor(self.saturation)
        mean = images.mean((1, 2, 3), keepdim=True)
        images = mean + (images - mean) * factor(self.contrast)
        images = images * factor(self.brightness)
        if self.grayscale > 0:
            grey = torch.rand(b, 1, 1, 1, generator=generator).to(images.device) < self.grayscale
            images = torch.where(grey, images.mean(1, keepdim=True).expand_as(images), images)
        if self.noise > 0:
            images = images + torch.randn(images.shape, generator=generator).to(images) * self.noise
        if self.cutout > 0:
            images = self._cutout(images, generator)
        return images.clamp(0, 1)

    def _cutout(self, images: Tensor, generator: torch.Generator | None) -> Tensor:
        """``cutout`` grey rectangles per image, each side up to ``cutout_size`` of the image's."""
        b, _, h, w = images.shape
        draws = torch.rand(b, self.cutout, 4, generator=generator)  # size x, size y, left, top
        ys, xs = torch.arange(h).view(1, 1, h, 1), torch.arange(w).view(1, 1, 1, w)
        sizes = (draws[..., :2] * self.cutout_size * torch.tensor([w, h])).ceil()
        corners = draws[..., 2:] * (torch.tensor([w, h]) - sizes)
        x0, y0 = corners[..., 0].view(b, -1, 1, 1), corners[..., 1].view(b, -1, 1, 1)
        x1, y1 = x0 + sizes[..., 0].view(b, -1, 1, 1), y0 + sizes[..., 1].view(b, -1, 1, 1)
        hole = ((xs >= x0) & (xs < x1) & (ys >= y0) & (ys < y1)).any(1, keepdim=True).to(images.device)
        return torch.where(hole, torch.full_like(images, GREY), images)


TEACHER_VIEWS = ("letterbox", "ultralytics")  # semi.unlabeled_view: what the teacher labels


def student_view(teacher_view: str) -> StrongAugment:
    """The student's strong view of what the teacher labeled: over a letterboxed image, a geometric and
    photometric view; over Ultralytics' own mosaic / affine / flip view, a photometric one (the geometry is
    shared, so the pseudo-boxes need no moving): colour jitter, grayscale and cutout."""
    if teacher_view not in TEACHER_VIEWS:
        raise ValueError(f"teacher_view must be one of {TEACHER_VIEWS}, got {teacher_view!r}")
    if teacher_view == "letterbox":
        return StrongAugment()
    return StrongAugment(flip=0.0, scale=(1.0, 1.0), translate=0.0, grayscale=0.1, cutout=2)
