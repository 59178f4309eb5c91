"""Selective Search region proposals.

J. R. R. Uijlings, K. E. A. van de Sande, T. Gevers and A. W. M. Smeulders, "Selective Search for Object
Recognition", International Journal of Computer Vision 104(2):154-171, 2013.

Initial regions are Felzenszwalb-Huttenlocher superpixels (:func:`skimage.segmentation.felzenszwalb`). Hierarchical
grouping then merges the most similar pair of adjacent regions, again and again, until one region is left; every
region ever formed (initial and merged) yields a box. The similarity of regions r_i and r_j of an image im is

    s(r_i, r_j) = a1 s_colour + a2 s_texture + a3 s_size + a4 s_fill        (the paper uses a_k in {0, 1})

    s_colour  = sum_k min(c_i^k, c_j^k)     c: 25-bin histogram per channel (75-d), L1-normalised
    s_texture = sum_k min(t_i^k, t_j^k)     t: 10-bin histogram per channel and orientation (240-d), L1-normalised
    s_size    = 1 - (|r_i| + |r_j|) / |im|
    s_fill    = 1 - (|BB_ij| - |r_i| - |r_j|) / |im|      BB_ij: the tight box around both regions

with sizes in pixels. A merged region r_t has |r_t| = |r_i| + |r_j|, the union of the two boxes and the histograms
h_t = (|r_i| h_i + |r_j| h_j) / |r_t|.

Texture approximates the paper's Gaussian derivatives (sigma = 1) in eight orientations: each channel is smoothed by
a Gaussian of sigma = 1 and differentiated by central differences into (g_x, g_y); the derivative steered to
theta_o = 45 o degrees (o = 0..7) is cos(theta_o) g_x + sin(theta_o) g_y, and its positive part (so opposite
orientations hold the two signs of one derivative) is binned into 10 bins spanning [0, largest response in the image].

Images are RGB, uint8/unsigned/bool (scaled to [0, 1]) or float in [0, 1]. One colour space and one set of weights
are used per call: the paper's diversification over colour spaces and weights is left to the caller.

Boxes are int ``(x1, y1, x2, y2)`` with x2 and y2 *exclusive* (like numpy slices): a region spanning columns 2..5
has x1 = 2 and x2 = 6, and the whole-image box is ``(0, 0, W, H)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from skimage.filters import gaussian
from skimage.segmentation import felzenszwalb
from skimage.util import img_as_float

COLOUR_BINS = 25
TEXTURE_BINS = 10
ORIENTATIONS = 8

Box = tuple[int, int, int, int]
Weights = tuple[float, float, float, float]


@dataclass(frozen=True, eq=False)
class Region:
    """A region of the hierarchy: pixel count, tight box (x1, y1, x2, y2 exclusive), L1-normalised histograms."""

    size: int
    box: Box
    colour: np.ndarray
    texture: np.ndarray

    def merge(self, other: Region) -> Region:
        """The union of two disjoint regions: sizes add, boxes join, histograms average weighted by size."""
        size = self.size + other.size
        a, b = self.size / size, other.size / size
        colour, texture = a * self.colour + b * other.colour, a * self.texture + b * other.texture
        return Region(size, _union_box(self.box, other.box), colour, texture)


def _union_box(a: Box, b: Box) -> Box:
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


def histogram_intersection(h_i: np.ndarray, h_j: np.ndarray) -> float:
    """``sum_k min(h_i^k, h_j^k)``: 1 for identical L1-normalised histograms, 0 for disjoint ones."""
    return float(np.minimum(h_i, h_j).sum())


def size_similarity(r_i: Region, r_j: Region, image_size: int) -> float:
    """``s_size = 1 - (|r_i| + |r_j|) / |im|``: small regions merge early."""
    return 1.0 - (r_i.size + r_j.size) / image_size


def fill_similarity(r_i: Region, r_j: Region, image_size: int) -> float:
    """``s_fill = 1 - (|BB_ij| - |r_i| - |r_j|) / |im|``: regions that fill each other's gaps merge early."""
    x1, y1, x2, y2 = _union_box(r_i.box, r_j.box)
    return 1.0 - ((x2 - x1) * (y2 - y1) - r_i.size - r_j.size) / image_size


def similarity(r_i: Region, r_j: Region, image_size: int, weights: Weights) -> float:
    """``a1 s_colour + a2 s_texture + a3 s_size + a4 s_fill`` with ``weights = (a1, a2, a3, a4)``."""
    a1, a2, a3, a4 = weights
    return (
        a1 * histogram_intersection(r_i.colour, r_j.colour)
        + a2 * histogram_intersection(r_i.texture, r_j.texture)
        + a3 * size_similarity(r_i, r_j, image_size)
        + a4 * fill_similarity(r_i, r_j, image_size)
    )


def _as_float_rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3 or image.size == 0:
        raise ValueError(f"image must be a non-empty (H, W) or (H, W, 3) array, got shape {image.shape}")
    if image.dtype.kind in "ub":
        return img_as_float(image).astype(np.float64)
    if image.dtype.kind != "f":
        raise ValueError(f"image must be unsigned-integer, bool or float, got dtype {image.dtype}")
    if not np.all((image >= 0) & (image <= 1)):
        raise ValueError("image of float dtype must hold values in [0, 1]")
    return image.astype(np.float64)


def _check_weights(weights: Sequence[float]) -> Weights:
    w = tuple(float(a) for a in weights)
    if len(w) != 4 or min(w) < 0 or max(w) == 0:
        raise ValueError(f"weights must be 4 numbers >= 0 (colour, texture, size, fill), not all 0, got {weights}")
    return w


def _histograms(bins: np.ndarray, labels: np.ndarray, n: int, n_bins: int) -> np.ndarray:
    """(n, F * n_bins) L1-normalised histograms by label of ``bins`` (H, W, F): bin b of feature f at f * n_bins + b."""
    features = bins.shape[2]
    index = labels[..., None] * (features * n_bins) + np.arange(features) * n_bins + bins
    hist = np.bincount(index.ravel(), minlength=n * features * n_bins).reshape(n, -1).astype(np.float64)
    return hist / hist.sum(axis=1, keepdims=True)


def _texture_bins(image: np.ndarray) -> np.ndarray:
    """(H, W, 3 * 8) texture bin per pixel, feature index channel * 8 + orientation (see the module docstring)."""
    gy, gx = np.gradient(gaussian(image, sigma=1.0, channel_axis=-1), axis=(0, 1))
    theta = np.arange(ORIENTATIONS) * (2 * np.pi / ORIENTATIONS)
    response = np.maximum(gx[..., None] * np.cos(theta) + gy[..., None] * np.sin(theta), 0.0)
    top = response.max()
    scaled = response / top if top > 0 else response
    return np.minimum((scaled * TEXTURE_BINS).astype(np.int64), TEXTURE_BINS - 1).reshape(*image.shape[:2], -1)


def _initial_regions(image: np.ndarray, labels: np.ndarray) -> list[Region]:
    """One region per label of a label map holding exactly the labels 0..n-1."""
    n, width = int(labels.max()) + 1, labels.shape[1]
    colour_bins = np.minimum((image * COLOUR_BINS).astype(np.int64), COLOUR_BINS - 1)
    colour = _histograms(colour_bins, labels, n, COLOUR_BINS)
    texture = _histograms(_texture_bins(image), labels, n, TEXTURE_BINS)
    sizes = np.bincount(labels.ravel(), minlength=n)
    order = np.argsort(labels.ravel(), kind="stable")
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    ys, xs = np.divmod(order, width)
    x1, y1 = np.minimum.reduceat(xs, starts), np.minimum.reduceat(ys, starts)
    x2, y2 = np.maximum.reduceat(xs, starts) + 1, np.maximum.reduceat(ys, starts) + 1
    boxes = np.stack([x1, y1, x2, y2], axis=1).tolist()
    return [Region(int(sizes[k]), tuple(boxes[k]), colour[k], texture[k]) for k in range(n)]


def adjacent_pairs(labels: np.ndarray) -> list[tuple[int, int]]:
    """Sorted pairs ``(i, j)``, i < j, of labels that touch horizontally or vertically."""
    a = np.concatenate([labels[:, :-1].ravel(), labels[:-1, :].ravel()])
    b = np.concatenate([labels[:, 1:].ravel(), labels[1:, :].ravel()])
    pairs = np.stack([np.minimum(a, b), np.maximum(a, b)], axis=1)[a != b]
    return [(int(i), int(j)) for i, j in np.unique(pairs, axis=0)]


def _merge_most_similar(
    regions: list[Region],
    neighbours: dict[int, set[int]],
    sims: dict[tuple[int, int], float],
    image_size: int,
    weights: Weights,
) -> None:
    """Merge the most similar adjacent pair into a new region; update only the pairs that involve it."""
    i, j = max(sims, key=sims.__getitem__)
    new = len(regions)
    regions.append(regions[i].merge(regions[j]))
    neighbours[new] = (neighbours.pop(i) | neighbours.pop(j)) - {i, j}
    del sims[i, j]
    for k in sorted(neighbours[new]):
        for old in (i, j):
            sims.pop((min(k, old), max(k, old)), None)
        neighbours[k] -= {i, j}
        neighbours[k].add(new)
        sims[k, new] = similarity(regions[k], regions[new], image_size, weights)


def hierarchical_grouping(
    image: np.ndarray, labels: np.ndarray, weights: Sequence[float] = (1, 1, 1, 1)
) -> list[Region]:
    """Every region of the hierarchy: the initial ones in label order, then one per merge in merge order.

    Args:
        image: (H, W, 3) or (H, W), see :func:`selective_search`.
        labels: (H, W) integer segmentation (any label values; they are renumbered in sorted order).
        weights: (a1, a2, a3, a4) for colour, texture, size and fill.

    Returns:
        ``2 n - 1`` regions for n initial ones (the adjacency graph of a label map on a pixel grid is connected);
        the last one covers the whole image.
    """
    image, weights = _as_float_rgb(image), _check_weights(weights)
    labels = np.asarray(labels)
    if labels.shape != image.shape[:2]:
        raise ValueError(f"labels must have the image's shape {image.shape[:2]}, got {labels.shape}")
    labels = np.unique(labels, return_inverse=True)[1].reshape(labels.shape)
    regions = _initial_regions(image, labels)
    neighbours: dict[int, set[int]] = {k: set() for k in range(len(regions))}
    sims: dict[tuple[int, int], float] = {}
    for i, j in adjacent_pairs(labels):
        neighbours[i].add(j)
        neighbours[j].add(i)
        sims[i, j] = similarity(regions[i], regions[j], labels.size, weights)
    while sims:
        _merge_most_similar(regions, neighbours, sims, labels.size, weights)
    return regions


def selective_search(
    image: np.ndarray,
    scale: float = 100.0,
    sigma: float = 0.8,
    min_size: int = 50,
    weights: Sequence[float] = (1, 1, 1, 1),
    min_box_size: int = 0,
) -> np.ndarray:
    """Selective Search box proposals for one image.

    Args:
        image: (H, W, 3) RGB or (H, W) grayscale (broadcast to 3 channels); uint8 or float in [0, 1].
        scale, sigma, min_size: Felzenszwalb-Huttenlocher parameters (higher ``scale``: larger initial regions).
        weights: (a1, a2, a3, a4) for colour, texture, size and fill similarity; non-negative, not all zero.
        min_box_size: boxes narrower or shorter than this many pixels are dropped.

    Returns:
        ``int64[K, 4]`` xyxy boxes, x2 and y2 exclusive, without duplicates (first occurrence kept), ordered by
        merge level: the initial regions first, then one box per merge.
    """
    weights = _check_weights(weights)
    if min_box_size < 0:
        raise ValueError(f"min_box_size must be >= 0, got {min_box_size}")
    image = _as_float_rgb(image)
    labels = felzenszwalb(image, scale=scale, sigma=sigma, min_size=min_size, channel_axis=-1)
    boxes = np.array([r.box for r in hierarchical_grouping(image, labels, weights)], dtype=np.int64)
    boxes = boxes[np.sort(np.unique(boxes, axis=0, return_index=True)[1])]  # first occurrences, in order
    return boxes[(boxes[:, 2:] - boxes[:, :2] >= min_box_size).all(axis=1)]
