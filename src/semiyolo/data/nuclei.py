"""A detection set of real nuclei: crops of the one annotated fluorescence image that the ``stardist`` package ships
(``stardist/data/images/img2d.tif`` and ``mask2d.tif``: 512 x 512, 125 nuclei, from the 2018 Data Science Bowl,
BBBC038, whose masks people drew), one box per instance of the mask.

Train, val and test come from disjoint regions of the image (:data:`REGIONS`); every nucleus belongs to the split
whose region holds most of its pixels, is labeled only there, and in the other splits' crops its pixels (grown by
two) are replaced by background pixels drawn from the image, so no split shows a nucleus of another. In a crop, a
nucleus of its own split is labeled (the tight box of its visible pixels) when at least ``min_visible`` of its area
lies inside the crop; otherwise the crop records nothing for it and it stays visible. Crops are ``crop`` pixels
square at random positions inside their region, each turned by one of the 8 flips / 90-degree rotations, then
resized to ``imgsz``; they overlap, so images are correlated though every object is real. Deterministic in
``(seed, index)``. The package's files are read with OpenCV: stardist itself (csbdeep, TensorFlow) is never imported.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np

from ..errors import DataError, UserInputError
from ..pixels import PIXEL_MAX
from .synth import check_layout, write_yolo_dataset

NUCLEI_PACKAGE = "stardist"
NUCLEI_FILES = ("stardist/data/images/img2d.tif", "stardist/data/images/mask2d.tif")
NUCLEI_NAMES = ("nucleus",)
SPLITS = ("train", "val", "test")
SOURCE_SHAPE = (512, 512)
# x1, y1, x2, y2 in pixels of the source: the left half trains, the right quarters validate and test.
REGIONS = {"train": (0, 0, 256, 512), "val": (256, 0, 512, 256), "test": (256, 256, 512, 512)}
_NUCLEUS_SIDE = (0.02, 0.3)  # nucleus sides (3 to 38 px) as fractions of a 128-px crop, for check_layout


@dataclass(frozen=True)
class NucleiSpec:
    images: int = 300
    imgsz: int = 160
    val_fraction: float = 0.2
    seed: int = 0
    test_images: int = 0
    crop: int = 128  # crop side in source pixels, resized to imgsz
    min_visible: float = 0.5  # share of a nucleus' area a crop must hold for it to be labeled there

    def __post_init__(self) -> None:
        check_layout(self.images, self.val_fraction, self.imgsz, *_NUCLEUS_SIDE, self.test_images)
        side = min(min(x2 - x1, y2 - y1) for x1, y1, x2, y2 in REGIONS.values())
        if not 16 <= self.crop <= side:
            raise UserInputError(f"crop must lie in [16, {side}] (the smallest region's side), got {self.crop}")
        if not 0 < self.min_visible <= 1:
            raise UserInputError(f"min_visible must lie in (0, 1], got {self.min_visible}")


def nuclei_files(package: str = NUCLEI_PACKAGE) -> tuple[Path, Path]:
    """The installed package's image and instance mask, located without importing the package.

    Raises:
        DataError: the distribution is not installed or lacks the files.
    """
    try:
        dist = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        raise DataError(f"the nuclei set is read from the {package!r} package: pip install {package}") from None
    paths = tuple(Path(str(dist.locate_file(name))) for name in NUCLEI_FILES)
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise DataError(f"{package} {dist.version} lacks {', '.join(missing)}")
    return paths[0], paths[1]


@cache
def load_nuclei() -> tuple[np.ndarray, np.ndarray]:
    """``(uint8 image [H, W] scaled so its maximum is 255, int64 instance mask [H, W], 0 = background)``."""
    image_path, mask_path = nuclei_files()
    image, mask = (cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in (image_path, mask_path))
    if image is None or mask is None or image.shape != SOURCE_SHAPE or mask.shape != SOURCE_SHAPE:
        raise DataError(f"{image_path}, {mask_path}: expected an image and a mask of {SOURCE_SHAPE} (REGIONS')")
    scaled = np.round(image.astype(np.float64) * PIXEL_MAX / max(1, int(image.max())))
    return scaled.astype(np.uint8), mask.astype(np.int64)


def instance_boxes(mask: np.ndarray) -> dict[int, tuple[int, int, int, int]]:
    """Tight boxes of the instances of ``mask`` (int [H, W], 0 = background): ``{id: (x1, y1, x2, y2)}`` xyxy in
    pixel edges (a one-pixel instance at column x, row y gives ``(x, y, x + 1, y + 1)``), ids ascending."""
    boxes = {}
    for instance in np.unique(mask):
        if instance == 0:
            continue
        ys, xs = np.nonzero(mask == instance)
        boxes[int(instance)] = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    return boxes


def instance_splits(mask: np.ndarray, regions: dict[str, tuple[int, int, int, int]] = REGIONS) -> dict[int, str]:
    """``{id: split}``: each instance of ``mask`` (int [H, W]) goes to the region (xyxy pixels) holding most of its
    pixels; ties go to the region named first. Pixels outside every region are not counted."""
    counts = np.stack(
        [np.bincount(mask[y1:y2, x1:x2].ravel(), minlength=int(mask.max()) + 1) for x1, y1, x2, y2 in regions.values()]
    )
    names = list(regions)
    return {int(i): names[int(np.argmax(counts[:, i]))] for i in np.unique(mask) if i != 0 and counts[:, i].any()}


@cache
def _owners() -> dict[int, str]:
    return instance_splits(load_nuclei()[1])


def split_of_index(spec: NucleiSpec, index: int) -> str:
    """The split of image ``index``, as :func:`semiyolo.data.synth.write_yolo_dataset` assigns it."""
    n_val = max(1, round(spec.images * spec.val_fraction))
    return "test" if index >= spec.images else "val" if index >= spec.images - n_val else "train"


@dataclass(frozen=True)
class NucleiCrop:
    image: np.ndarray  # uint8 [imgsz, imgsz, 3] BGR
    mask: np.ndarray  # int64 [crop, crop]: the source mask under the crop, turned like the image, before blanking
    labels: list[tuple[int, float, float, float, float]]  # (class, cx, cy, w, h) normalised
    labeled: tuple[int, ...]  # instance ids of the labels, in order


def _window(spec: NucleiSpec, split: str, rng: np.random.Generator) -> tuple[slice, slice]:
    x1, y1, x2, y2 = REGIONS[split]
    x = int(rng.integers(x1, x2 - spec.crop + 1))
    y = int(rng.integers(y1, y2 - spec.crop + 1))
    return slice(y, y + spec.crop), slice(x, x + spec.crop)


def _turn(array: np.ndarray, turn: int) -> np.ndarray:
    """One of the 8 symmetries of the square: ``turn % 4`` quarter turns, then a left-right flip if ``turn >= 4``."""
    turned = np.rot90(array, turn % 4)
    return np.array(turned[:, ::-1] if turn >= 4 else turned)  # a copy: the source stays as read


def blank_instances(
    image: np.ndarray, mask: np.ndarray, ids: np.ndarray, background: np.ndarray, rng: np.random.Generator
) -> None:
    """Overwrite in ``image`` (uint8 [h, w]) the pixels of the instances ``ids`` of ``mask`` (int [h, w]), grown by
    two pixels but never into another instance, with pixels drawn from ``background`` (uint8 [n])."""
    grown = cv2.dilate(np.isin(mask, ids).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    grown &= ~((mask > 0) & np.isin(mask, ids, invert=True))
    image[grown] = background[rng.integers(0, background.size, int(grown.sum()))]


def nuclei_crop(spec: NucleiSpec, index: int) -> NucleiCrop:
    """Image ``index`` of the nuclei set, with what the tests check (see the module's docstring for the rules)."""
    rng = np.random.default_rng([spec.seed, index])
    split = split_of_index(spec, index)
    source, source_mask = load_nuclei()
    rows, cols = _window(spec, split, rng)
    turn = int(rng.integers(8))
    image, mask = _turn(source[rows, cols], turn), _turn(source_mask[rows, cols], turn)
    owner = _owners()
    visible = [int(i) for i in np.unique(mask) if i != 0]
    foreign = np.array([i for i in visible if owner[i] != split], np.int64)
    blank_instances(image, mask, foreign, source[source_mask == 0], rng)
    area = np.bincount(source_mask.ravel())
    inside = np.bincount(mask.ravel(), minlength=area.size)
    boxes = instance_boxes(np.where(np.isin(mask, [i for i in visible if owner[i] == split]), mask, 0))
    labeled = tuple(i for i in boxes if inside[i] >= spec.min_visible * area[i])
    side = spec.crop
    labels = []
    for i in labeled:
        x1, y1, x2, y2 = boxes[i]
        labels.append((0, (x1 + x2) / 2 / side, (y1 + y2) / 2 / side, (x2 - x1) / side, (y2 - y1) / side))
    resized = cv2.resize(image, (spec.imgsz, spec.imgsz), interpolation=cv2.INTER_AREA)
    return NucleiCrop(cv2.cvtColor(resized, cv2.COLOR_GRAY2BGR), mask, labels, labeled)


def write_nuclei_dataset(out: str | Path, spec: NucleiSpec = NucleiSpec()) -> Path:
    """The nuclei set of ``spec``; layout as :func:`semiyolo.data.synth.write_yolo_dataset`."""
    nuclei_files()  # a missing package fails before any folder is written

    def render(index: int):
        crop = nuclei_crop(spec, index)
        return crop.image, crop.labels

    meta = {
        "nuclei": {
            **asdict(spec),
            "source": f"{NUCLEI_PACKAGE}: {', '.join(NUCLEI_FILES)}",
            "regions": {k: list(v) for k, v in REGIONS.items()},
        }
    }
    return write_yolo_dataset(out, spec.images, spec.val_fraction, render, NUCLEI_NAMES, meta, spec.test_images)
