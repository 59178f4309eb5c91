"""The page's order with near-duplicates counted once: what a reviewer should look at next when many images are
almost the same picture (frames of one video, tiles of one slide).

An image is summarised by its **thumbnail**: its pixels in [0, 1] averaged down to ``THUMBNAIL_SIDE`` x
``THUMBNAIL_SIDE`` per channel. Two images are near-duplicates when the root-mean-square difference of their
thumbnails is below ``min_distance``; by default :data:`NEAR_DUPLICATE_SHARE` of the median distance between the
images' pairs (:func:`near_duplicate_distance`), so the rule follows how different a set's images usually are.

:func:`spread_order` walks the page's order (:func:`~.sources.page_order`) and takes an image unless it is a
near-duplicate of one already taken; the images it skipped follow, in the page's order, so the first ``k`` of the
result are the ``k`` most worth looking at that are not near-duplicates of each other (while there are ``k``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.nn.functional import adaptive_avg_pool2d

from ..pixels import to_unit_range

THUMBNAIL_SIDE = 16
NEAR_DUPLICATE_SHARE = 0.25  # near-duplicates: closer than this share of the median distance between two images


def thumbnail(image: Tensor, side: int = THUMBNAIL_SIDE) -> Tensor:
    """``Tensor[3, H, W]`` uint8 -> ``Tensor[3 * side * side]`` float32: the image in [0, 1], averaged down."""
    pooled = adaptive_avg_pool2d(to_unit_range(image[None]).float(), side)
    return pooled.flatten()


def rms_distances(features: Tensor) -> Tensor:
    """``Tensor[N, D]`` -> ``Tensor[N, N]``: the root-mean-square difference of every pair of rows."""
    return torch.cdist(features.double(), features.double()) / math.sqrt(features.shape[1])


def near_duplicate_distance(features: Tensor, share: float = NEAR_DUPLICATE_SHARE) -> float:
    """``share`` of the median RMS distance between two different rows of ``features: Tensor[N, D]`` (0 for fewer
    than two rows)."""
    n = features.shape[0]
    if n < 2:
        return 0.0
    pairs = rms_distances(features)[torch.triu_indices(n, n, offset=1).unbind()]
    return share * float(pairs.median())


def spread_order(features: Tensor, min_distance: float) -> list[int]:
    """The rows of ``features: Tensor[N, D]`` (in the page's order) as a permutation of ``range(N)``: each row whose
    RMS distance to every row taken before it is at least ``min_distance``, in order, then the rows skipped as
    near-duplicates, in order."""
    distances = rms_distances(features)
    taken: list[int] = []
    skipped: list[int] = []
    for row in range(features.shape[0]):
        duplicate = bool(taken) and bool((distances[row, taken] < min_distance).any())
        (skipped if duplicate else taken).append(row)
    return taken + skipped
