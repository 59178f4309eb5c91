"""Pseudo-mosaic: an image of the batch tiled with three earlier images at half scale, with every tile's targets
(torch only).

After MixPL (Chen et al., "Mixed Pseudo Labels for Semi-Supervised Object Detection", 2023, its "Pseudo Mosaic"):
four pseudo-labeled images, taken from a cache of earlier batches, are put side by side in one image with the
union of their pseudo-labels. Downscaled, the objects the teacher found while they were large become small
objects, which a teacher misses most. Ours keeps the batch's image size: the mosaic is the training size
``(H, W)``, each tile an image at half its side (MixPL builds a larger image of its own), so a mosaic row joins the
batch like any other and costs nothing more to train. The row's own image is one of the four tiles; the other three
are drawn from :class:`MosaicCache`, the last ``size`` images of earlier batches with their targets (MixPL's
cache), so partners come from earlier teacher states and other batches.

Targets keep every per-target field (class, ``regress``, weight) and the uncertain ignore regions, their boxes
halved and moved into their tile; a box that ends under :data:`MIN_SIDE` pixels a side becomes an ignore region
(Ultralytics' own augmentations drop boxes under 2 pixels, which then train as background). The same function
mosaics labeled images (``semi.labeled_mosaic``), the augmentation-only control of a pseudo-mosaic arm.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..batch import IGNORE_BOXES_KEY, IGNORE_INDEX_KEY, PER_TARGET_KEYS, REGRESS_KEY, WEIGHT_KEY
from ..pixels import PIXEL_MAX, to_unit_range

MIN_SIDE = 2.0  # pixels: a mosaic target smaller than this a side becomes an ignore region
TILES = 4  # a 2 x 2 mosaic
_FILL = {REGRESS_KEY: True, WEIGHT_KEY: 1.0}  # a per-target field a tile lacks takes this (labeled targets' value)


def check_mosaic(probability: float, cache_size: int) -> None:
    """Raise ``ValueError`` unless ``probability`` lies in [0, 1] and the cache holds at least three images."""
    if not 0 <= probability <= 1:
        raise ValueError(f"mosaic probability must lie in [0, 1], got {probability!r}")
    if cache_size < TILES - 1:
        raise ValueError(f"the mosaic cache must hold at least {TILES - 1} images, got {cache_size!r}")


@dataclass
class Tile:
    """One image at half scale with its targets, as the cache keeps it.

    Attributes:
        image: ``Tensor[3, H / 2, W / 2]`` uint8 (the batch's values times ``PIXEL_MAX``, rounded).
        targets: per-target fields of the image's targets (``cls: Tensor[n, 1]``, ``bboxes: Tensor[n, 4]`` cxcywh
            normalised to the image, and ``regress`` / ``target_weight`` where the batch has them).
        ignored: ``Tensor[m, 4]`` cxcywh normalised, the image's ignore regions.
    """

    image: Tensor
    targets: dict[str, Tensor]
    ignored: Tensor


class MosaicCache:
    """The last ``size`` images that passed through :func:`mosaic_rows`, at half scale, with their targets, on the
    CPU (uint8 images: a 640-px image costs 0.3 MB). Its :meth:`state_dict` is what an exact resume needs."""

    def __init__(self, size: int = 32) -> None:
        check_mosaic(0.0, size)
        self.size = size
        self.tiles: list[Tile] = []

    def __len__(self) -> int:
        return len(self.tiles)

    def push(self, tiles: list[Tile]) -> None:
        self.tiles = (self.tiles + tiles)[-self.size :]

    def state_dict(self) -> dict[str, Any]:
        return {"size": self.size, "tiles": [vars(t).copy() for t in self.tiles]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.size = int(state["size"])
        self.tiles = [Tile(**{k: _cpu(v) for k, v in t.items()}) for t in state["tiles"]]


def _cpu(value):
    return {k: v.cpu() for k, v in value.items()} if isinstance(value, dict) else value.cpu()


def halve(images: Tensor) -> Tensor:
    """``Tensor[B, 3, H / 2, W / 2]``: ``images: Tensor[B, 3, H, W]`` (``H``, ``W`` even) at half scale, each output
    pixel the mean of a 2 x 2 block (``F.avg_pool2d``)."""
    if images.shape[-2] % 2 or images.shape[-1] % 2:
        raise ValueError(f"a mosaic needs an even image size, got {tuple(images.shape[-2:])}")
    return F.avg_pool2d(images.float(), 2).to(images.dtype)


def mosaic_rows(
    batch: dict, cache: MosaicCache, rows: Tensor, probability: float, generator: torch.Generator | None = None
) -> tuple[dict, int]:
    """``(new batch, mosaics made)``: each image ``rows[i]`` of ``batch``, with probability ``probability``, becomes a
    2 x 2 mosaic of itself and three images of ``cache`` at half scale (its own tile's corner and the three drawn
    uniformly without repeats), with the targets of all four; then the images of ``rows`` join ``cache``, as they
    were. No mosaic is made while the cache holds fewer than three images.

    The draws use ``generator`` alone, in a fixed order, so a resumed run (its cache restored) draws the same
    mosaics. The images are written in place, in ``batch["img"]``, like pseudo-mixup's.

    Args:
        batch: Ultralytics' preprocessed batch, or one :func:`~semiyolo.batch.append_pseudo_labeled` made:
            ``img: Tensor[B, 3, H, W]`` in [0, 1] (``H``, ``W`` even), ``batch_idx: Tensor[N]``, ``cls``, ``bboxes``
            (cxcywh normalised) and any other per-target fields and ignore regions.
        cache: the partners, and where ``rows`` go after.
        rows: ``Tensor[R]`` long, the batch rows that may be mosaicked (the pseudo-labeled ones, or every labeled one).
        probability: in [0, 1].
    """
    check_mosaic(probability, cache.size)
    img = batch["img"]
    rows = rows.long().cpu()
    draws = torch.rand(rows.numel(), generator=generator) < probability
    corners = torch.randint(TILES, (rows.numel(),), generator=generator)
    partners = [torch.randperm(max(len(cache), 1), generator=generator)[: TILES - 1] for _ in range(rows.numel())]
    halved = halve(img[rows.to(img.device)])
    own = _tiles(batch, rows, halved)
    chosen = [i for i in range(rows.numel()) if draws[i]] if len(cache) >= TILES - 1 else []
    if not chosen:
        cache.push(own)
        return batch, 0
    height, width = img.shape[-2:]
    pieces: list[tuple[int, Tile, int]] = []  # (batch row, tile, corner) of every tile of every mosaic
    for i in chosen:
        others = iter(cache.tiles[int(j)] for j in partners[i])
        for corner in range(TILES):
            mine = corner == int(corners[i])
            tile = own[i] if mine else next(others)
            top, left = (corner // 2) * (height // 2), (corner % 2) * (width // 2)
            image = halved[i] if mine else _tile_image(tile, img, height, width)  # its own tile at full precision
            img[rows[i], :, top : top + height // 2, left : left + width // 2] = image
            pieces.append((int(rows[i]), tile, corner))
    cache.push(own)
    return _with_tile_targets(batch, pieces, (height, width)), len(chosen)


def _tiles(batch: dict, rows: Tensor, halved: Tensor) -> list[Tile]:
    """The images ``rows`` of ``batch`` as the cache keeps them (``halved``: those images at half scale), on the
    CPU, with their targets and ignore regions."""
    images = (halved.float() * PIXEL_MAX).round().clamp(0, PIXEL_MAX).to(torch.uint8).cpu()
    fields = {k: batch[k].detach().cpu() for k in PER_TARGET_KEYS if k in batch}  # one transfer each, not per row
    image_of = batch["batch_idx"].long().cpu()
    has_ignore = IGNORE_INDEX_KEY in batch
    ignore_of = batch[IGNORE_INDEX_KEY].long().cpu() if has_ignore else torch.zeros(0, dtype=torch.long)
    ignore_boxes = batch[IGNORE_BOXES_KEY].detach().cpu() if has_ignore else torch.zeros(0, 4)
    tiles = []
    for image, row in zip(images, rows.tolist(), strict=True):
        mine = image_of == row
        tiles.append(Tile(image, {k: v[mine] for k, v in fields.items()}, ignore_boxes[ignore_of == row]))
    return tiles


def _tile_image(tile: Tile, img: Tensor, height: int, width: int) -> Tensor:
    """``tile``'s image in ``img``'s dtype, device and value range, at ``(height / 2, width / 2)`` (resized where an
    earlier batch had another size: Ultralytics' multi-scale)."""
    image = to_unit_range(tile.image.to(img.device))
    if image.shape[-2:] != (height // 2, width // 2):
        image = F.interpolate(image[None], size=(height // 2, width // 2), mode="bilinear", align_corners=False)[0]
    return image.to(img.dtype)


def _with_tile_targets(batch: dict, pieces: list[tuple[int, Tile, int]], size: tuple[int, int]) -> dict:
    """``batch`` whose mosaicked rows' targets and ignore regions are their tiles', boxes halved into their corner;
    a target under :data:`MIN_SIDE` pixels a side in the mosaic joins the ignore regions. Targets stay sorted by
    image, each row's in tile order."""
    device, idx_dtype = batch["batch_idx"].device, batch["batch_idx"].dtype
    mosaicked = torch.tensor(sorted({row for row, _, _ in pieces}), device=device)
    keep = ~torch.isin(batch["batch_idx"].long(), mosaicked)
    keys = [k for k in PER_TARGET_KEYS if k in batch]
    fields = {k: [batch[k][keep]] for k in keys}
    image_of = [batch["batch_idx"][keep]]
    has_ignore = IGNORE_BOXES_KEY in batch
    if has_ignore:
        kept_ignore = ~torch.isin(batch[IGNORE_INDEX_KEY].long(), mosaicked)
        ignore_of, ignored = [batch[IGNORE_INDEX_KEY][kept_ignore]], [batch[IGNORE_BOXES_KEY][kept_ignore]]
    else:
        ignore_of, ignored = [], []
    frame = torch.tensor([size[1], size[0]] * 2, dtype=torch.float32)
    for row, tile, corner in pieces:
        boxes = _into_corner(tile.targets["bboxes"].float(), corner)
        small = ((boxes[:, 2:] * frame[2:]) < MIN_SIDE).any(1)
        for k in keys:
            value = boxes if k == "bboxes" else tile.targets.get(k)
            if value is None:
                value = torch.full((boxes.shape[0],), _FILL[k], dtype=batch[k].dtype)
            fields[k].append(value[~small].to(device, batch[k].dtype))
        image_of.append(torch.full((int((~small).sum()),), row, dtype=idx_dtype, device=device))
        regions = torch.cat((_into_corner(tile.ignored.float(), corner), boxes[small]))
        ignore_of.append(torch.full((regions.shape[0],), row, dtype=idx_dtype, device=device))
        ignored.append(regions.to(device, batch["bboxes"].dtype))
    out = dict(batch)
    order = torch.cat(image_of).long().argsort(stable=True)
    out["batch_idx"] = torch.cat(image_of)[order]
    out.update({k: torch.cat(v)[order] for k, v in fields.items()})
    regions = torch.cat(ignored)
    if has_ignore or regions.shape[0]:
        ignore_order = torch.cat(ignore_of).long().argsort(stable=True)
        out[IGNORE_INDEX_KEY], out[IGNORE_BOXES_KEY] = torch.cat(ignore_of)[ignore_order], regions[ignore_order]
    return out


def _into_corner(boxes: Tensor, corner: int) -> Tensor:
    """``boxes: Tensor[n, 4]`` cxcywh normalised to a tile, in the mosaic's frame: halved, and moved right by half
    the width for the right-hand corners (1, 3) and down by half the height for the lower ones (2, 3)."""
    offset = boxes.new_tensor([(corner % 2) * 0.5, (corner // 2) * 0.5, 0.0, 0.0])
    return boxes * 0.5 + offset
