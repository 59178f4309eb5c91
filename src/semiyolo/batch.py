"""The extended batch (torch only): Ultralytics' training batch with pseudo-labeled images appended.

Ultralytics' preprocessed batch holds ``img: Tensor[B, 3, H, W]``, ``batch_idx: Tensor[N]``, ``cls: Tensor[N, 1]``
and ``bboxes: Tensor[N, 4]`` cxcywh normalised to ``W, H``. :func:`append_pseudo_labeled` appends ``U`` images and
their targets (per image; :func:`append_pseudo_targets`: all images' at once), and the keys below, which this module
alone names. :func:`split_batch` and :func:`labeled_part`
take it apart again for the criterion and the pictures.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.ops import box_convert

if TYPE_CHECKING:
    from .pseudo import DenseTargets

NUM_LABELED_KEY = "num_labeled"  # int: the first ``num_labeled`` images are labeled, the rest pseudo-labeled
REGRESS_KEY = "regress"  # Tensor[N] bool per target: box and DFL losses apply (absent: every target)
WEIGHT_KEY = "target_weight"  # Tensor[N] float per target: its classification target's scale (absent: 1)
IGNORE_INDEX_KEY = "ignore_idx"  # Tensor[M] image index of each uncertain pseudo-label (an ignore region)
IGNORE_BOXES_KEY = "ignore_bboxes"  # Tensor[M, 4] its box, cxcywh normalised
DENSE_KEY = "dense_targets"  # DenseTargets of the pseudo-labeled images: the criterion's targets in their place
PER_TARGET_KEYS = ("cls", "bboxes", REGRESS_KEY, WEIGHT_KEY)  # what each target carries, beside batch_idx
IGNORE_KEYS = (IGNORE_INDEX_KEY, IGNORE_BOXES_KEY)
EXTENDED_KEYS = (NUM_LABELED_KEY, REGRESS_KEY, WEIGHT_KEY, *IGNORE_KEYS, DENSE_KEY)  # the keys appending adds


def append_pseudo_labeled(
    batch: dict,
    images: Tensor,
    boxes: Sequence[Tensor],
    classes: Sequence[Tensor],
    regressed: Sequence[Tensor] | None = None,
    ignored: Sequence[Tensor] | None = None,
    weights: Sequence[Tensor] | None = None,
    dense: DenseTargets | None = None,
    in_fmt: str = "xyxy",
) -> dict:
    """A new batch: ``batch``'s images and targets, then ``images`` with their pseudo-labels.

    Args:
        batch: Ultralytics' preprocessed batch: ``img: Tensor[B, 3, H, W]``, ``batch_idx: Tensor[N]``,
            ``cls: Tensor[N, 1]``, ``bboxes: Tensor[N, 4]`` cxcywh normalised to ``W, H``; other keys are kept.
        images: ``Tensor[U, 3, h, w]`` on the batch's device, in the batch's value range. A size other than
            ``(H, W)`` (Ultralytics' multi-scale resized the labeled images) is resized bilinearly to it.
        boxes: per appended image, ``Tensor[n_i, 4]`` in ``in_fmt``, pixels of ``images``.
        classes: per appended image, ``Tensor[n_i]`` class indices.
        regressed: per appended image, ``Tensor[n_i]`` bool, whether the box is regressed (tiered targets); the
            batch then carries ``regress: Tensor[N + sum n_i]`` (True for the labeled targets).
        ignored: per appended image, ``Tensor[m_i, 4]`` ``in_fmt`` pixels of uncertain pseudo-labels; the batch then
            carries ``ignore_idx: Tensor[M]``, ``ignore_bboxes: Tensor[M, 4]`` cxcywh normalised (``M = sum m_i``).
        weights: per appended image, ``Tensor[n_i]`` float, each target's classification scale (soft targets); the
            batch then carries ``target_weight: Tensor[N + sum n_i]`` (1 for the labeled targets).
        dense: the teacher's per-anchor targets of ``images`` (:class:`~semiyolo.pseudo.DenseTargets`), carried
            under ``dense_targets``: the criterion uses them in place of ``boxes``.
        in_fmt: the format of ``boxes`` and ``ignored``: ``xyxy``, ``xywh`` or ``cxcywh`` (``box_convert``'s).

    Returns:
        The batch with ``U`` more images, their targets at image indices ``B .. B + U - 1``, and ``num_labeled = B``.
    """
    if not len(boxes) == len(classes) == images.shape[0]:
        counts = f"{images.shape[0]} images, {len(boxes)} boxes, {len(classes)} classes"
        raise ValueError(f"expected one boxes and classes tensor per image: {counts}")
    device = batch["img"].device
    return append_pseudo_targets(
        batch,
        images,
        _image_of(boxes),
        _joined(boxes, (0, 4), torch.float32, device),
        _joined(classes, (0,), torch.long, device),
        None if regressed is None else _joined(regressed, (0,), torch.bool, device),
        None if ignored is None else (_image_of(ignored), _joined(ignored, (0, 4), torch.float32, device)),
        None if weights is None else _joined(weights, (0,), torch.float32, device),
        dense,
        in_fmt,
    )


def append_pseudo_targets(
    batch: dict,
    images: Tensor,
    image: Tensor,
    boxes: Tensor,
    classes: Tensor,
    regressed: Tensor | None = None,
    ignored: tuple[Tensor, Tensor] | None = None,
    weights: Tensor | None = None,
    dense: DenseTargets | None = None,
    in_fmt: str = "xyxy",
) -> dict:
    """:func:`append_pseudo_labeled` with the targets of all appended images at once, no loop over images.

    Args:
        image: ``Tensor[M]`` int64, the appended image (``0 .. U - 1``) of each target; image by image, so that the
            targets keep the order :func:`append_pseudo_labeled` gives them.
        boxes: ``Tensor[M, 4]`` ``in_fmt`` pixels of ``images``. classes: ``Tensor[M]``.
        regressed: ``Tensor[M]`` bool or ``None``. weights: ``Tensor[M]`` float or ``None``.
        ignored: ``(image Tensor[K] int64, boxes Tensor[K, 4] in_fmt pixels)`` of the ignore regions, or ``None``.
        batch, images, dense, in_fmt: as :func:`append_pseudo_labeled`'s.
    """
    if not image.shape[0] == boxes.shape[0] == classes.shape[0]:
        counts = f"{image.shape[0]} image indices, {boxes.shape[0]} boxes, {classes.shape[0]} classes"
        raise ValueError(f"expected one image index and class per box: {counts}")
    height, width = batch["img"].shape[-2:]
    n_labeled, device = batch["img"].shape[0], batch["img"].device
    frame = torch.tensor([images.shape[-1], images.shape[-2]] * 2, device=device, dtype=torch.float32)
    if images.shape[-2:] != (height, width):
        images = F.interpolate(images, size=(height, width), mode="bilinear", align_corners=False)
    idx, xywh = _targets(image, boxes, frame, n_labeled, batch["batch_idx"].dtype, batch["bboxes"].dtype, in_fmt)
    out = {
        **batch,
        "img": torch.cat((batch["img"], images.to(batch["img"].dtype))),
        "batch_idx": torch.cat((batch["batch_idx"], idx)),
        "cls": torch.cat((batch["cls"], classes.to(device).view(-1, 1).to(batch["cls"].dtype))),
        "bboxes": torch.cat((batch["bboxes"], xywh)),
        NUM_LABELED_KEY: n_labeled,
    }
    if regressed is not None:
        out[REGRESS_KEY] = _labeled_then(batch, REGRESS_KEY, regressed, torch.bool)
    if ignored is not None:  # after the labeled images' own (a labeled mosaic's), if they have any
        added = _targets(*ignored, frame, n_labeled, idx.dtype, xywh.dtype, in_fmt)
        out.update({k: torch.cat((batch[k], v)) if k in batch else v for k, v in zip(IGNORE_KEYS, added, strict=True)})
    if weights is not None:
        out[WEIGHT_KEY] = _labeled_then(batch, WEIGHT_KEY, weights, torch.float32)
    if dense is not None:
        out[DENSE_KEY] = dense
    return out


def _image_of(per_image: Sequence[Tensor]) -> Tensor:
    """``Tensor[sum n_i]`` int64: the index ``i`` of each row of ``per_image[i]: Tensor[n_i, ...]``."""
    counts = torch.tensor([t.shape[0] for t in per_image], dtype=torch.long)
    return torch.repeat_interleave(torch.arange(len(per_image)), counts)


def _joined(per_image: Sequence[Tensor], empty_shape: tuple[int, ...], dtype: torch.dtype, device) -> Tensor:
    """``per_image``'s tensors concatenated on ``device`` (an empty ``empty_shape`` of ``dtype`` when none)."""
    if not per_image:
        return torch.zeros(empty_shape, dtype=dtype, device=device)
    return torch.cat([t.to(device) for t in per_image])


def _labeled_then(batch: dict, key: str, appended: Tensor, dtype: torch.dtype) -> Tensor:
    """``Tensor[N + M]``: the labeled targets' ``key`` values (ones where the batch has none), then ``appended``'s."""
    device = batch["img"].device
    labeled = batch.get(key, torch.ones(batch["cls"].shape[0], dtype=dtype, device=device))
    return torch.cat((labeled, appended.to(device).to(dtype)))


def _targets(
    image: Tensor, boxes: Tensor, frame: Tensor, first: int, idx_dtype, box_dtype, in_fmt: str
) -> tuple[Tensor, Tensor]:
    """``(image index Tensor[M], cxcywh normalised Tensor[M, 4])`` of ``in_fmt`` pixel ``boxes: Tensor[M, 4]`` of the
    appended images ``image: Tensor[M]``, which get batch index ``first + image``."""
    device = frame.device
    idx = (image.to(device) + first).to(idx_dtype)
    return idx, box_convert(boxes.to(device).float() / frame, in_fmt, "cxcywh").to(box_dtype)


def num_labeled(batch: dict, default: int | None = None) -> int | None:
    """How many leading images of ``batch`` are labeled: ``B`` for a batch :func:`append_pseudo_labeled` extended,
    else ``default``."""
    n_labeled = batch.get(NUM_LABELED_KEY)
    return default if n_labeled is None else int(n_labeled)


def with_num_labeled(batch: dict, n_labeled: int | None) -> dict:
    """A new batch dict with ``num_labeled`` set to ``n_labeled`` (``None``: without it)."""
    out = {k: v for k, v in batch.items() if k != NUM_LABELED_KEY}
    return out if n_labeled is None else {**out, NUM_LABELED_KEY: n_labeled}


def labeled_part(batch: dict) -> dict:
    """The labeled images of a batch :func:`append_pseudo_labeled` extended (``batch`` itself when it was not):
    ``img[:B]`` and the targets whose image index is below ``B = num_labeled``, without the pseudo-labels' ignore
    regions or dense targets (the labeled images' own ignore regions, a labeled mosaic's, stay); other keys are
    kept."""
    n_labeled = num_labeled(batch)
    if n_labeled is None:
        return batch
    own = batch["batch_idx"] < n_labeled
    part = {k: v for k, v in batch.items() if k not in (*IGNORE_KEYS, DENSE_KEY, NUM_LABELED_KEY)}
    part.update(img=batch["img"][:n_labeled], batch_idx=batch["batch_idx"][own])
    part.update({k: batch[k][own] for k in PER_TARGET_KEYS if k in batch})
    if IGNORE_INDEX_KEY in batch and bool((batch[IGNORE_INDEX_KEY] < n_labeled).any()):
        mine = batch[IGNORE_INDEX_KEY] < n_labeled
        part.update({IGNORE_INDEX_KEY: batch[IGNORE_INDEX_KEY][mine], IGNORE_BOXES_KEY: batch[IGNORE_BOXES_KEY][mine]})
    return part


def split_batch(batch: dict[str, Tensor], num_labeled: int) -> tuple[dict, dict]:
    """Targets of the labeled images and of the pseudo-labeled ones (their image indices restarted at 0); the
    pseudo-labeled part keeps the tiered targets' ``regress`` flags, weights and uncertain boxes, or the dense
    targets, if any (:func:`append_pseudo_labeled`, :meth:`semiyolo.teacher.MeanTeacher.extend_dense`). Images are
    not sliced: the criterion slices the head's outputs."""
    labeled = batch["batch_idx"] < num_labeled
    parts = []  # the labeled targets are all regressed, at weight 1: they need only their classes and boxes
    for mask, offset, keys in ((labeled, 0, ("cls", "bboxes")), (~labeled, num_labeled, PER_TARGET_KEYS)):
        targets = {k: batch[k][mask] for k in keys if k in batch}
        parts.append({"batch_idx": batch["batch_idx"][mask] - offset, **targets})
    if IGNORE_BOXES_KEY in batch:  # the labeled images' own (a labeled mosaic's tiny boxes) stay with them
        own = batch[IGNORE_INDEX_KEY] < num_labeled
        if own.any():
            parts[0].update(
                {IGNORE_INDEX_KEY: batch[IGNORE_INDEX_KEY][own], IGNORE_BOXES_KEY: batch[IGNORE_BOXES_KEY][own]}
            )
        parts[1][IGNORE_INDEX_KEY] = batch[IGNORE_INDEX_KEY][~own] - num_labeled
        parts[1][IGNORE_BOXES_KEY] = batch[IGNORE_BOXES_KEY][~own]
    if DENSE_KEY in batch:
        parts[1][DENSE_KEY] = batch[DENSE_KEY]
    return parts[0], parts[1]


def ignore_regions(
    batch: dict, out_fmt: str = "cxcywh", image_size: Tensor | None = None
) -> tuple[Tensor, Tensor] | None:
    """``(image index Tensor[M], boxes Tensor[M, 4])`` of the batch's uncertain pseudo-labels in ``out_fmt``
    (``box_convert``'s): normalised, or in pixels when ``image_size: Tensor[2]`` ``(h, w)`` is given; ``None`` when
    the batch has none."""
    if IGNORE_BOXES_KEY not in batch:
        return None
    boxes = batch[IGNORE_BOXES_KEY]
    if image_size is not None:
        boxes = boxes.float() * image_size[[1, 0, 1, 0]].to(boxes.device)
    return batch[IGNORE_INDEX_KEY], box_convert(boxes, "cxcywh", out_fmt)
