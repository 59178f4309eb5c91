"""The student's strong view of an unlabeled batch, with the pseudo-boxes carried through it (torch only).

Geometric: a random horizontal flip and a random scale and translation (per image, a bilinear resize pasted at
a whole-pixel offset onto grey 114 like Ultralytics' letterbox; the boxes' corners go through the same map,
are clipped to the image, and boxes that lose most of their area are dropped, their visible parts kept aside:
:class:`StrongView`). With no flip, scale or
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

from ..pixels import PIXEL_MAX

GREY = 114 / PIXEL_MAX  # Ultralytics' padding value, in [0, 1]


@dataclass(frozen=True)
class _Placement:
    """Where one image lands in its view: resized to ``width x height`` pixels, its top-left corner at
    ``(left, top)`` of a grey canvas of the original size, then mirrored left-right if ``flip``."""

    width: int
    height: int
    left: int
    top: int
    flip: bool


def _place(image: Tensor, p: _Placement) -> Tensor:
    """``image: Tensor[3, H, W]`` resized bilinearly and pasted per ``p`` onto grey 114 (what falls outside is
    cropped), mirrored if ``p.flip``; a box's corners move by ``x -> x * width / W + left`` (then ``W - x``)."""
    _, h, w = image.shape
    resized = F.interpolate(image[None], size=(p.height, p.width), mode="bilinear", align_corners=False)[0]
    canvas = image.new_full(image.shape, GREY)
    x0, y0 = max(p.left, 0), max(p.top, 0)
    x1, y1 = min(p.left + p.width, w), min(p.top + p.height, h)
    if x1 > x0 and y1 > y0:
        canvas[:, y0:y1, x0:x1] = resized[:, y0 - p.top : y1 - p.top, x0 - p.left : x1 - p.left]
    return canvas.flip(-1) if p.flip else canvas


def place_all(images: Tensor, placements: list[_Placement]) -> Tensor:
    """:func:`_place` of every image at once, ``images: Tensor[B, 3, H, W]``: one ``F.grid_sample`` over the batch.

    Output pixel ``x`` shows canvas column ``c = x`` (``c = W - 1 - x`` mirrored); within the pasted image, its
    column ``u = c - left`` samples the source at ``(u + 1/2) W / width - 1/2``, which is where ``F.interpolate``'s
    bilinear resize (``align_corners=False``) samples it, the coordinate clamped to the image as there (``border``
    padding); outside it, grey. Likewise in y. The same images as image by image, within float rounding."""
    _, _, h, w = images.shape
    device = images.device
    table = torch.tensor([[p.width, p.height, p.left, p.top, p.flip] for p in placements], device=device).float()
    width, height, left, top, flip = table.unbind(1)
    x = torch.arange(w, device=device, dtype=torch.float32)
    column = torch.where(flip[:, None].bool(), w - 1 - x, x)  # (B, W) the canvas column each output pixel shows
    u, v = column - left[:, None], torch.arange(h, device=device, dtype=torch.float32) - top[:, None]
    inside = ((u >= 0) & (u < width[:, None]))[:, None, :] & ((v >= 0) & (v < height[:, None]))[:, :, None]
    gx, gy = 2 * (u + 0.5) / width[:, None] - 1, 2 * (v + 0.5) / height[:, None] - 1
    grid = torch.stack(torch.broadcast_tensors(gx[:, None, :], gy[:, :, None]), -1)  # (B, H, W, 2)
    placed = F.grid_sample(images, grid.to(images.dtype), mode="bilinear", padding_mode="border", align_corners=False)
    return torch.where(inside[:, None], placed, torch.full_like(placed, GREY))


CUT_OBJECTS = ("drop", "ignore")  # semi.cut_objects: what a box the strong view cuts becomes (MeanTeacher)


@dataclass(frozen=True)
class StrongView:
    """A strong view of a batch and its boxes, all xyxy pixels of the view.

    ``images: Tensor[B, 3, H, W]`` in [0, 1]. Per image: ``boxes[i]: Tensor[k_i, 4]`` the boxes kept and
    ``kept[i]: Tensor[k_i]`` their indices among the input's; ``cut_boxes[i]: Tensor[c_i, 4]`` the visible part
    (positive area) of the boxes dropped though still partly in view and ``cut[i]: Tensor[c_i]`` their indices.
    """

    images: Tensor
    boxes: list[Tensor]
    kept: list[Tensor]
    cut_boxes: list[Tensor]
    cut: list[Tensor]


@dataclass(frozen=True)
class BatchedStrongView:
    """A strong view of a batch and the boxes of all its images at once, xyxy pixels of the view.

    ``images: Tensor[B, 3, H, W]`` in [0, 1]; ``boxes: Tensor[N, 4]`` every input box moved and clipped to the view;
    ``kept: Tensor[N]`` bool, the boxes the view keeps; ``cut: Tensor[N]`` bool, those it drops though still partly
    in view (``boxes`` then holds their visible part). :meth:`StrongAugment.view`'s, row by row.
    """

    images: Tensor
    boxes: Tensor
    kept: Tensor
    cut: Tensor


@dataclass(frozen=True)
class StrongAugment:
    flip: float = 0.5
    scale: tuple[float, float] = (0.6, 1.4)
    translate: float = 0.15
    brightness: float = 0.3
    contrast: float = 0.3
    saturation: float = 0.4
    noise: float = 0.0  # Gaussian pixel noise; off by default, for its time (docs/BENCHMARKS.md, online step)
    grayscale: float = 0.0  # probability of a grey image
    cutout: int = 0  # grey rectangles per image, each up to cutout_size of the side
    cutout_size: float = 0.2
    min_area_kept: float = 0.3  # a box keeps at least this share of its area after clipping, or is dropped

    @property
    def moves_boxes(self) -> bool:
        return self.flip > 0 or self.scale != (1.0, 1.0) or self.translate > 0

    def __call__(self, images: Tensor, boxes: list[Tensor], generator: torch.Generator | None = None):
        """``images: Tensor[B, 3, H, W]`` in [0, 1]; ``boxes[i]: Tensor[n_i, 4]`` xyxy pixels.

        Returns ``(images, boxes, kept)`` with ``kept[i]`` the indices of image ``i``'s boxes that survive
        (:meth:`view`'s first three).
        """
        view = self.view(images, boxes, generator)
        return view.images, view.boxes, view.kept

    def view(self, images: Tensor, boxes: list[Tensor], generator: torch.Generator | None = None) -> StrongView:
        """The strong view of ``images: Tensor[B, 3, H, W]`` in [0, 1] with ``boxes[i]: Tensor[n_i, 4]`` xyxy
        pixels carried through it, the boxes it cuts included (:class:`StrongView`)."""
        _, _, h, w = images.shape
        placements, geometric = self._geometric(images, generator)
        mapped = [self._map_boxes(bx, p, w, h) for bx, p in zip(boxes, placements, strict=True)]
        kept = [keep.nonzero().squeeze(1) for _, keep in mapped]
        cut = [(~keep & _visible(moved)).nonzero().squeeze(1) for moved, keep in mapped]
        return StrongView(
            self._photometric(geometric, generator),
            [moved[k] for (moved, _), k in zip(mapped, kept, strict=True)],
            kept,
            [moved[c] for (moved, _), c in zip(mapped, cut, strict=True)],
            cut,
        )

    def view_batched(
        self, images: Tensor, boxes: Tensor, image: Tensor, generator: torch.Generator | None = None
    ) -> BatchedStrongView:
        """:meth:`view` with the boxes of all images at once: ``boxes: Tensor[N, 4]`` xyxy pixels, ``image: Tensor[N]``
        int64 the image of each. The same draws from ``generator`` in the same order, so the same images."""
        _, _, h, w = images.shape
        placements, geometric = self._geometric(images, generator)
        moved, kept = self._map_batched_boxes(boxes.reshape(-1, 4), image, placements, w, h)
        return BatchedStrongView(self._photometric(geometric, generator), moved, kept, ~kept & _visible(moved))

    def _geometric(self, images: Tensor, generator: torch.Generator | None) -> tuple[list[_Placement], Tensor]:
        """Each image's placement (drawn from ``generator``) and the images placed."""
        b, _, h, w = images.shape
        if not self.moves_boxes:  # the identity map: no resampling; boxes are clipped and filtered as below
            return [_Placement(w, h, 0, 0, False)] * b, images
        draws = torch.rand(b, 4, generator=generator).tolist()  # flip, scale, shift x, shift y
        placements = [self._placement(d, w, h) for d in draws]
        return placements, place_all(images, placements)

    def _placement(self, draws: list[float], w: int, h: int) -> _Placement:
        """Scale ``s`` about the centre, shift by ``t`` of half the side, in whole pixels: the image is resized to
        ``round(s W) x round(s H)`` and pasted at ``round((W - s W) / 2 + t W / 2)`` (likewise in y)."""
        flip, scale, tx, ty = draws
        s = self.scale[0] + scale * (self.scale[1] - self.scale[0])
        tx, ty = ((2 * t - 1) * self.translate for t in (tx, ty))
        nw, nh = max(1, round(s * w)), max(1, round(s * h))
        return _Placement(nw, nh, round((w - nw) / 2 + tx * w / 2), round((h - nh) / 2 + ty * h / 2), flip < self.flip)

    def _map_boxes(self, boxes: Tensor, p: _Placement, w: int, h: int) -> tuple[Tensor, Tensor]:
        """``(Tensor[n, 4], Tensor[n] bool)``: ``boxes: Tensor[n, 4]`` xyxy pixels of the ``w x h`` image moved by
        placement ``p`` and clipped to the view (xyxy pixels of the view), and whether each survives: it keeps
        ``min_area_kept`` of its area and 2 pixels a side."""
        boxes = boxes.reshape(-1, 4)
        factor = boxes.new_tensor([p.width / w, p.height / h] * 2)
        moved = boxes * factor + boxes.new_tensor([p.left, p.top] * 2)
        if p.flip:
            moved = torch.stack((w - moved[:, 2], moved[:, 1], w - moved[:, 0], moved[:, 3]), 1)
        return self._clip(moved, w, h)

    def _map_batched_boxes(
        self, boxes: Tensor, image: Tensor, placements: list[_Placement], w: int, h: int
    ) -> tuple[Tensor, Tensor]:
        """:meth:`_map_boxes` of ``boxes: Tensor[N, 4]`` xyxy pixels, each by its image's placement (``image:
        Tensor[N]``), at once: the same arithmetic."""
        table = [[p.width / w, p.height / h, p.left, p.top, p.flip] for p in placements]
        table = boxes.new_tensor(table).reshape(-1, 5)[image]  # (N, 5)
        moved = boxes * table[:, [0, 1, 0, 1]] + table[:, [2, 3, 2, 3]]
        mirrored = torch.stack((w - moved[:, 2], moved[:, 1], w - moved[:, 0], moved[:, 3]), 1)
        return self._clip(torch.where(table[:, 4:].bool(), mirrored, moved), w, h)

    def _clip(self, moved: Tensor, w: int, h: int) -> tuple[Tensor, Tensor]:
        """``moved: Tensor[n, 4]`` xyxy pixels of the view clipped to it, and whether each keeps ``min_area_kept`` of
        its area and 2 pixels a side."""
        area = (moved[:, 2] - moved[:, 0]) * (moved[:, 3] - moved[:, 1])
        moved = torch.stack(
            (moved[:, 0].clamp(0, w), moved[:, 1].clamp(0, h), moved[:, 2].clamp(0, w), moved[:, 3].clamp(0, h)), 1
        )
        clipped = (moved[:, 2] - moved[:, 0]) * (moved[:, 3] - moved[:, 1])
        keep = (
            (clipped >= self.min_area_kept * area) & (moved[:, 2] - moved[:, 0] >= 2) & (moved[:, 3] - moved[:, 1] >= 2)
        )
        return moved, keep

    def _photometric(self, images: Tensor, generator: torch.Generator | None) -> Tensor:
        n = images.shape[0]

        def factor(strength: float) -> Tensor:
            return (1 + (torch.rand(n, 1, 1, 1, generator=generator) * 2 - 1) * strength).to(images)

        # saturation s about the grey image g, contrast c about its mean m (the mean of x and of g agree), brightness
        # b: b (m + c (g + s (x - g) - m)) = (b c s) x + b c (1 - s) g + b (1 - c) m, in one pass
        s, c, b = factor(self.saturation), factor(self.contrast), factor(self.brightness)
        gray = images.mean(1, keepdim=True)
        mean = gray.mean((2, 3), keepdim=True)
        images = torch.addcmul(b * c * (1 - s) * gray + b * (1 - c) * mean, images, b * c * s)
        if self.grayscale > 0:
            grey = torch.rand(n, 1, 1, 1, generator=generator).to(images.device) < self.grayscale
            images = torch.where(grey, images.mean(1, keepdim=True).expand_as(images), images)
        if self.noise > 0:
            images = images + torch.randn(images.shape, generator=generator).to(images) * self.noise
        if self.cutout > 0:
            images = self._cutout(images, generator)
        return images.clamp_(0, 1)  # a new tensor by now: addcmul made one

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


def _visible(boxes: Tensor) -> Tensor:
    """``Tensor[n]`` bool: whether each of ``boxes: Tensor[n, 4]`` xyxy has a positive area."""
    return (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])


TEACHER_VIEWS = ("letterbox", "ultralytics")  # semi.unlabeled_view: what the teacher labels


def student_view(teacher_view: str, same_geometry: bool = False, flip: float = 0.5) -> StrongAugment:
    """The student's strong view of what the teacher labeled: over a letterboxed image, a geometric and
    photometric view, mirrored with probability ``flip`` (the trainer passes Ultralytics' ``fliplr``, so objects a
    mirror changes, such as digits or text, are not mirrored when the labeled images are not); over Ultralytics' own
    mosaic / affine / flip view, or wherever the student must see the teacher's geometry (``same_geometry``: dense
    pseudo-targets map anchor to anchor), a photometric one: colour jitter, grayscale and cutout."""
    if teacher_view not in TEACHER_VIEWS:
        raise ValueError(f"teacher_view must be one of {TEACHER_VIEWS}, got {teacher_view!r}")
    if teacher_view == "letterbox" and not same_geometry:
        return StrongAugment(flip=flip)
    return StrongAugment(flip=0.0, scale=(1.0, 1.0), translate=0.0, grayscale=0.1, cutout=2)
