"""Unlabeled images for online training, batched and sharded by DDP rank, in a resumable order, decoded in loader
workers: letterboxed weak views (``semi.unlabeled_view: letterbox``), or Ultralytics' own mosaic / affine / flip
views (``ultralytics``).

Hidden labels (a benchmark split whose unlabeled images still have YOLO label files) are loaded alongside,
in the same letterboxed pixel frame, for auditing pseudo-labels only: they never reach a loss.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import cached_property, partial
from pathlib import Path
from typing import TypeVar

import cv2
import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from torchvision.ops import box_convert
from ultralytics.data import YOLODataset
from ultralytics.utils import LOGGER
from ultralytics.utils.patches import imread

from ...data import label_path, list_images, read_image_list, read_label_file
from ...errors import DataError
from ...reproducibility import pass_order, stream_generator

T = TypeVar("T")


def letterbox_geometry(w: int, h: int, size: int) -> tuple[tuple[int, int], float, tuple[int, int]]:
    """``((new_w, new_h), ratio, (pad_x, pad_y))`` of :func:`letterbox` for a ``w x h`` image: a point ``p`` of
    the original lands at ``p * ratio + pad``."""
    ratio = size / max(h, w)
    nw, nh = max(1, round(w * ratio)), max(1, round(h * ratio))
    return (nw, nh), ratio, ((size - nw) // 2, (size - nh) // 2)


def letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, float, tuple[int, int]]:
    """Resize the longer side to ``size`` and pad to ``size x size`` (grey 114, centred, like Ultralytics).

    Returns ``(image, ratio, (pad_x, pad_y))``.
    """
    h, w = image.shape[:2]
    (nw, nh), ratio, (pad_x, pad_y) = letterbox_geometry(w, h, size)
    resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR) if (nw, nh) != (w, h) else image
    out = np.full((size, size, 3), 114, dtype=np.uint8)
    out[pad_y : pad_y + nh, pad_x : pad_x + nw] = resized
    return out, ratio, (pad_x, pad_y)


class UndecodableImage(DataError):
    """An image the decoder cannot read (truncated or corrupt), though it passed the up-front check."""


class DecodeSkips:
    """Items read by index, where an image the decoder cannot read is skipped with a warning naming it (once per
    image and process), ``key`` naming where the images come from."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.failed: set[int] = set()

    def read(self, index: int, read: Callable[[int], T], path: Callable[[int], object], count: int = 0) -> T | None:
        """``read(index)``; where its image cannot be decoded, the next index (of ``count``, wrapping) whose image
        can, or with ``count`` 0, None. Raises :class:`DataError` when none of the ``count`` images can be."""
        for candidate in ((index + step) % count for step in range(count)) if count else (index,):
            if candidate in self.failed:
                continue
            try:
                return read(candidate)
            except UndecodableImage:
                self.failed.add(candidate)
                LOGGER.warning(f"{self.key}: skipping {path(candidate)}: it cannot be decoded (truncated or corrupt)")
        if count:
            raise DataError(f"{self.key}: none of the {count} images can be decoded (truncated or corrupt)")
        return None


class UnlabeledImages(Dataset):
    """``(image uint8 Tensor[3, S, S] RGB, hidden labels Tensor[n, 5] (class, x1, y1, x2, y2), path)``; an image the
    decoder cannot read raises :class:`UndecodableImage` naming ``key`` (:func:`unlabeled_batches` skips it).
    ``labels_for`` says what a label file that cannot be read is left out of, in its warning."""

    def __init__(
        self, paths: list[Path], imgsz: int, key: str = "semi.unlabeled", labels_for: str = "the pseudo-label audit"
    ) -> None:
        self.paths, self.imgsz, self.key, self.labels_for = list(paths), imgsz, key, labels_for
        self.skipped: list[Path] = []
        self.bad_labels: set[Path] = set()  # hidden label files that could not be read (warned once each)

    @classmethod
    def from_folder(cls, folder: str | Path, imgsz: int, key: str = "semi.unlabeled") -> UnlabeledImages:
        """The readable images under ``folder``; unreadable or corrupt ones are skipped, counted and listed
        (``skipped``), with a warning. Raises :class:`DataError`, naming ``key``, if the folder is missing or has
        no image."""
        paths, skipped = readable_images(folder, key)
        dataset = cls(paths, imgsz, key)
        dataset.skipped = skipped
        return dataset

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        path = self.paths[index]
        image = imread(path)  # cv2.imdecode of the bytes: any file name, UTF-8 or not
        if image is None:
            raise UndecodableImage(f"{self.key}: cannot decode image {path} (truncated or corrupt)")
        h, w = image.shape[:2]
        boxed, ratio, (px, py) = letterbox(image, self.imgsz)
        tensor = torch.from_numpy(np.ascontiguousarray(boxed[..., ::-1].transpose(2, 0, 1)))
        return tensor, self._hidden_labels(path, w, h, ratio, px, py), str(path)

    def _hidden_labels(self, path: Path, w: int, h: int, ratio: float, px: int, py: int) -> torch.Tensor:
        """The image's label file, if any, in the letterboxed pixel frame; a malformed one is left out of the
        audit with a warning (it never reaches a loss)."""
        label = label_path(path)
        try:
            rows = torch.from_numpy(read_label_file(label))
        except DataError as err:
            if label not in self.bad_labels:
                self.bad_labels.add(label)
                LOGGER.warning(f"{err}; this label file is left out of {self.labels_for}")
            return torch.zeros(0, 5)
        xyxy = box_convert(rows[:, 1:] * rows.new_tensor([w, h, w, h]), "cxcywh", "xyxy") * ratio
        return torch.cat((rows[:, :1], xyxy + torch.tensor([px, py, px, py])), 1)


def readable_images(folder: str | Path, key: str = "semi.unlabeled") -> tuple[list[Path], list[Path]]:
    """``(readable, skipped)`` images under ``folder``; the unreadable or corrupt ones are listed in a warning.
    Raises :class:`DataError`, naming ``key``, if the folder is missing or has no readable image."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{key}: {folder} is not a folder of images")
    candidates = list_images(folder)
    if not candidates:
        raise DataError(f"{key}: no images found in {folder}")
    paths = [p for p in candidates if _readable(p)]
    skipped = sorted(set(candidates) - set(paths))
    if not paths:
        raise DataError(f"{key}: none of the {len(candidates)} images in {folder} can be read")
    if skipped:
        listed = ", ".join(str(p) for p in skipped[:10]) + (" ..." if len(skipped) > 10 else "")
        LOGGER.warning(f"{key}: skipping {len(skipped)} unreadable or corrupt image(s): {listed}")
    return paths, skipped


def _readable(path: Path) -> bool:
    try:
        with Image.open(path) as image:
            image.verify()
        return True
    except Exception:  # PIL raises many kinds on a broken file; any of them means "skip it"
        return False


class _Decodable(Dataset):
    """``dataset``'s items with the images the decoder cannot read skipped (:class:`DecodeSkips`): the next
    readable image takes the place of one (``keep_size``), or the item is None."""

    def __init__(self, dataset: UnlabeledImages, keep_size: bool) -> None:
        self.dataset, self.keep_size = dataset, keep_size
        self.skips = DecodeSkips(dataset.key)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        count = len(self.dataset) if self.keep_size else 0
        return self.skips.read(index, self.dataset.__getitem__, self.dataset.paths.__getitem__, count)


def _collate(items, imgsz: int):
    """A batch of the items that are not None: ``(images, hidden labels, paths)``, empty if none is left."""
    items = [item for item in items if item is not None]
    if not items:
        return torch.zeros((0, 3, imgsz, imgsz), dtype=torch.uint8), [], []
    images, labels, paths = zip(*items, strict=True)
    return torch.stack(images), list(labels), list(paths)


def batch_indices(
    n: int,
    batch: int,
    seed: int,
    rank: int = -1,
    world_size: int = 1,
    skip: int = 0,
    max_passes: int | None = None,
    shuffle: bool = True,
) -> Iterator[list[int]]:
    """The index batches of a stream over ``range(n)``, in a new order every pass (unless ``shuffle`` is off),
    endlessly (or for ``max_passes``); each DDP rank reads its own shard. Pass ``k``'s order depends on
    ``(seed, k)`` only (:func:`~semiyolo.reproducibility.pass_order`), so ``skip`` (batches already consumed)
    resumes a stream exactly, without reading the skipped items."""
    world = max(world_size, 1)
    if n == 0:
        return
    shard_size = -(-n // world)  # as DistributedSampler: ranks pad with the order's first images
    drop_last = shuffle and shard_size >= batch
    per_pass = shard_size // batch if drop_last else -(-shard_size // batch)
    first_pass, skip_in_pass = divmod(skip, per_pass) if per_pass else (0, 0)
    pass_index = first_pass
    while max_passes is None or pass_index < max_passes:
        order = pass_order(n, seed, pass_index) if shuffle else list(range(n))
        order = (order * world)[: shard_size * world][max(rank, 0) :: world]
        for b in range(skip_in_pass if pass_index == first_pass else 0, per_pass):
            yield order[b * batch : (b + 1) * batch]
        pass_index += 1


def unlabeled_batches(
    dataset: UnlabeledImages,
    batch: int,
    seed: int,
    *args,
    workers: int = 0,
    pin_memory: bool = False,
    keep_size: bool = True,
    **kwargs,
) -> Iterator:
    """Batches ``(images uint8 Tensor[B, 3, S, S], hidden labels, paths)`` of ``dataset`` in the order of
    :func:`batch_indices` (same arguments), decoded in ``workers`` loader processes (0: in this process). An image
    the decoder cannot read is skipped with a warning: the next readable image takes its place (``keep_size``, so
    the stream and its resume are unchanged), or its batch is one image shorter (possibly empty)."""
    sampler = batch_indices(len(dataset), batch, seed, *args, **kwargs)
    collate = partial(_collate, imgsz=dataset.imgsz)
    generator = _loader_generator(seed, kwargs.get("rank", -1))
    yield from _loader(_Decodable(dataset, keep_size), sampler, collate, workers, pin_memory, generator)


def _loader(
    dataset: Dataset, sampler: Iterator[list[int]], collate, workers: int, pin_memory: bool, generator: torch.Generator
) -> DataLoader:
    """A loader of the batches ``sampler`` names, in its order; prefetched batches are not counted as consumed,
    so a resume that skips the consumed ones is exact."""
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=workers,
        collate_fn=collate,
        pin_memory=pin_memory,
        persistent_workers=workers > 0,
        generator=generator,
    )


def _loader_generator(seed: int, rank: int) -> torch.Generator:
    """The stream's own generator, which seeds its loader workers: without one, each (re)opening draws from the
    global torch generator, and a resumed run, which reopens the stream, would leave that generator elsewhere than
    a run that never stopped."""
    return stream_generator(seed, max(rank, 0))


class UnlabeledYOLODataset(YOLODataset):
    """Ultralytics' training dataset over a folder of unlabeled images, so that they go through its own mosaic,
    affine and flip transforms: the geometric view the teacher labels (``semi.unlabeled_view: ultralytics``).

    Ultralytics refuses a folder without labels; here every image has a label entry: its hidden label file's
    rows where one exists (they follow the geometry, for the pseudo-label audit only), none otherwise. An image the
    decoder cannot read is skipped with a warning: the next one takes its place.
    """

    def get_img_files(self, img_path: str) -> list[str]:
        """The readable images of the folder (:func:`readable_images`; corrupt ones are skipped with a warning), or
        the images a list file names."""
        if Path(img_path).is_file():
            return [str(p) for p in read_image_list(img_path)]
        return [str(p) for p in readable_images(img_path)[0]]

    def get_labels(self) -> list[dict]:
        return [self._label(Path(path)) for path in self.im_files]

    @cached_property
    def decode_skips(self) -> DecodeSkips:
        return DecodeSkips("semi.unlabeled")

    def load_image(self, i: int, *args, **kwargs):
        try:
            return super().load_image(i, *args, **kwargs)
        except FileNotFoundError:  # Ultralytics' answer to a file its decoder cannot read
            raise UndecodableImage(f"semi.unlabeled: cannot decode image {self.im_files[i]}") from None

    def get_image_and_label(self, index: int) -> dict:
        """The image and hidden labels of ``index`` (also a mosaic's partners); where the image cannot be decoded,
        the next one's (:class:`DecodeSkips`)."""
        read = super().get_image_and_label
        return self.decode_skips.read(index, read, self.im_files.__getitem__, len(self.im_files))

    @staticmethod
    def _label(path: Path) -> dict:
        try:
            rows = read_label_file(label_path(path))
        except DataError:  # a malformed hidden label file only costs the audit this image
            rows = np.zeros((0, 5), np.float32)
        with Image.open(path) as image:
            width, height = image.size
        return {
            "im_file": str(path),
            "shape": (height, width),
            "cls": rows[:, :1],
            "bboxes": rows[:, 1:],
            "segments": [],
            "keypoints": None,
            "normalized": True,
            "bbox_format": "xywh",
        }


def ultralytics_view_batches(
    dataset: UnlabeledYOLODataset, batch: int, seed: int, *args, workers: int = 0, pin_memory: bool = False, **kwargs
) -> Iterator:
    """Batches ``(images uint8 Tensor[B, 3, S, S], hidden labels, paths)`` of ``dataset``'s augmented views, in
    the order of :func:`batch_indices` (same arguments), decoded in ``workers`` loader processes. The order resumes
    exactly; the mosaic partners (drawn from each worker's buffer) do not."""
    sampler = batch_indices(len(dataset), batch, seed, *args, **kwargs)
    size = None
    generator = _loader_generator(seed, kwargs.get("rank", -1))
    for views in _loader(dataset, sampler, YOLODataset.collate_fn, workers, pin_memory, generator):
        size = size or views["img"].shape[-1]
        yield views["img"], _hidden_in_view(views, size), list(views["im_file"])


def _hidden_in_view(views: dict, size: int) -> list[Tensor]:
    """Per image, ``Tensor[n, 5]`` (class, x1, y1, x2, y2) in pixels of the ``size x size`` view."""
    xyxy = box_convert(views["bboxes"].float() * size, "cxcywh", "xyxy")
    rows = torch.cat((views["cls"].view(-1, 1).float(), xyxy), 1)
    return [rows[views["batch_idx"] == i] for i in range(views["img"].shape[0])]
