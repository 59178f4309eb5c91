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
MAX_PAIRS = 200_000  # above this many pairs the median is taken over a seeded sample of them (memory stays bounded)


def thumbnail(image: Tensor, side: int = THUMBNAIL_SIDE) -> Tensor:
    """``Tensor[3, H, W]`` uint8 -> ``Tensor[3 * side * side]`` float32: the image in [0, 1], averaged down."""
    pooled = adaptive_avg_pool2d(to_unit_range(image[None]).float(), side)
    return pooled.flatten()


def rms_distances(features: Tensor) -> Tensor:
    """``Tensor[N, D]`` -> ``Tensor[N, N]``: the root-mean-square difference of every pair of rows."""
    return torch.cdist(features.double(), features.double()) / math.sqrt(features.shape[1])


def near_duplicate_distance(features: Tensor, share: float = NEAR_DUPLICATE_SHARE, seed: int = 0) -> float:
    """``share`` of the median RMS distance between two different rows of ``features: Tensor[N, D]`` (0 for fewer
    than two rows): over every pair up to :data:`MAX_PAIRS` pairs, else over that many pairs drawn with ``seed``
    (a folder of 100,000 images would need 40 GB for every pair)."""
    n = features.shape[0]
    if n < 2:
        return 0.0
    if n * (n - 1) // 2 <= MAX_PAIRS:
        pairs = rms_distances(features)[torch.triu_indices(n, n, offset=1).unbind()]
        return share * float(pairs.median())
    generator = torch.Generator().manual_seed(seed)
    first = torch.randint(n, (MAX_PAIRS,), generator=generator)
    second = (first + torch.randint(1, n, (MAX_PAIRS,), generator=generator)) % n  # never the same row
    differences = features[first].double() - features[second].double()
    return share * float(differences.pow(2).mean(1).sqrt().median())


def spread_order(features: Tensor, min_distance: float, limit: int | None = None) -> list[int]:
    """The rows of ``features: Tensor[N, D]`` (in the page's order) as a permutation of ``range(N)``: each row whose
    RMS distance to every row taken before it is at least ``min_distance``, in order, then the rows skipped as
    near-duplicates, in order. ``limit``: stop looking once that many are taken (the rest follow in order), so a
    large folder costs ``limit`` rows' distances, not ``N x N``."""
    taken: list[int] = []
    skipped: list[int] = []
    rows = features.shape[0]
    for row in range(rows):
        if limit is not None and len(taken) >= limit:
            return taken + skipped + list(range(row, rows))
        distance = rms_distances(torch.cat((features[row : row + 1], features[taken])))[0, 1:] if taken else None
        duplicate = distance is not None and bool((distance < min_distance).any())
        (skipped if duplicate else taken).append(row)
    return taken + skipped
