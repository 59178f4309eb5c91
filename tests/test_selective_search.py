import numpy as np
import pytest
from skimage.segmentation import felzenszwalb

from semiyolo.proposals import (
    Region,
    adjacent_pairs,
    fill_similarity,
    hierarchical_grouping,
    histogram_intersection,
    selective_search,
    similarity,
    size_similarity,
)


def _one_hot(k: int, n: int = 3) -> np.ndarray:
    return np.eye(n)[k]


def _two_rectangles() -> np.ndarray:
    # 32x32 grey background, red rectangle rows 4..11 x cols 4..13, blue rectangle rows 18..27 x cols 16..27
    image = np.full((32, 32, 3), 200, np.uint8)
    image[4:12, 4:14] = (255, 0, 0)
    image[18:28, 16:28] = (0, 0, 255)
    return image


def _noise(size: int = 24, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def test_histogram_intersection():
    h = np.array([0.2, 0.3, 0.5])
    assert histogram_intersection(h, h) == pytest.approx(1.0)
    assert histogram_intersection(_one_hot(0), _one_hot(2)) == 0.0
    # min(0.5, 0) + min(0.5, 0.5) + min(0, 0.5) = 0.5
    assert histogram_intersection(np.array([0.5, 0.5, 0]), np.array([0, 0.5, 0.5])) == pytest.approx(0.5)


def test_size_fill_and_weighted_similarity_by_hand():
    # two 2x2 regions in opposite corners of a 5x5 box, image of 10x10 = 100 pixels
    r_i = Region(4, (0, 0, 2, 2), _one_hot(0), _one_hot(1))
    r_j = Region(4, (3, 3, 5, 5), _one_hot(0), _one_hot(2))
    # s_size = 1 - (4 + 4) / 100 = 0.92; s_fill = 1 - (25 - 4 - 4) / 100 = 0.83
    assert size_similarity(r_i, r_j, 100) == pytest.approx(0.92)
    assert fill_similarity(r_i, r_j, 100) == pytest.approx(0.83)
    # colour identical (1), texture disjoint (0): 1 + 0 + 0.92 + 0.83 = 2.75
    assert similarity(r_i, r_j, 100, (1, 1, 1, 1)) == pytest.approx(2.75)
    assert similarity(r_i, r_j, 100, (0, 1, 0, 1)) == pytest.approx(0.83)


def test_merge_is_size_weighted():
    a = Region(1, (0, 0, 1, 1), _one_hot(0), _one_hot(0))
    b = Region(3, (1, 2, 4, 3), _one_hot(1), _one_hot(0))
    m = a.merge(b)
    # (1 * [1, 0, 0] + 3 * [0, 1, 0]) / 4 = [0.25, 0.75, 0]
    assert m.size == 4 and m.box == (0, 0, 4, 3)
    np.testing.assert_allclose(m.colour, [0.25, 0.75, 0])
    np.testing.assert_allclose(m.texture, [1, 0, 0])


def test_flat_image_histograms():
    # colour bin = min(floor(25 v), 24): 255 -> 24, 0 -> 0, 128/255 * 25 = 12.55 -> 12; channels offset by 25
    image = np.empty((4, 5, 3), np.uint8)
    image[:] = (255, 0, 128)
    (region,) = hierarchical_grouping(image, np.zeros((4, 5), int))
    expected = np.zeros(75)
    expected[[24, 25, 62]] = 1 / 3
    np.testing.assert_allclose(region.colour, expected)
    # no gradient anywhere: each of the 3 x 8 (channel, orientation) histograms has everything in its bin 0
    expected = np.zeros(240)
    expected[::10] = 1 / 24
    np.testing.assert_allclose(region.texture, expected)
    assert region.size == 20 and region.box == (0, 0, 5, 4)


def test_texture_of_a_horizontal_ramp():
    # v = x / 11 on a 12x12 image: the Gaussian (sigma 1, radius 4) keeps a ramp a ramp, so g_x is constant and the
    # largest response for columns 5..6 (far enough from the border), g_y = 0. Steered responses cos(45 o deg) g_x,
    # positive part, over the max g_x: o = 0 -> 1 (bin 9), o = 1, 7 -> 0.707 (bin 7), the others 0 (bin 0).
    image = np.repeat(np.tile(np.arange(12) / 11, (12, 1))[..., None], 3, axis=2)
    labels = np.zeros((12, 12), int)
    labels[:, 5:7] = 1
    texture = hierarchical_grouping(image, labels)[1].texture
    bins = {0: 9, 1: 7, 7: 7}
    expected = np.zeros(240)
    for channel in range(3):
        for o in range(8):
            expected[(channel * 8 + o) * 10 + bins.get(o, 0)] = 1 / 24
    np.testing.assert_allclose(texture, expected)


def test_adjacent_pairs():
    labels = np.array([[0, 0, 1], [2, 2, 1], [2, 3, 3]])
    # rows: 0|1, 2|1, 2|3; columns: 0/2 (twice), 2/3, 1/3; 0 and 3 do not touch
    assert adjacent_pairs(labels) == [(0, 1), (0, 2), (1, 2), (1, 3), (2, 3)]


def test_grouping_by_size_merges_small_regions_first():
    # 4x6 image, vertical strips of widths 1, 2, 3 (sizes 4, 8, 12 of 24); pairs (0, 1) and (1, 2)
    # s_size(0, 1) = 1 - 12/24 = 0.5 > s_size(1, 2) = 1 - 20/24: 0 + 1 -> region 3, then 3 + 2 -> region 4
    labels = np.array([[0, 1, 1, 2, 2, 2]] * 4)
    regions = hierarchical_grouping(np.zeros((4, 6)), labels, weights=(0, 0, 1, 0))
    assert [r.box for r in regions] == [(0, 0, 1, 4), (1, 0, 3, 4), (3, 0, 6, 4), (0, 0, 3, 4), (0, 0, 6, 4)]
    assert [r.size for r in regions] == [4, 8, 12, 12, 24]


def test_grouping_by_colour_merges_same_colour_first():
    # 2x3 image, one column each: red | blue | blue. Colour intersection: (0, 1) = 1/3 (green bin 0 shared),
    # (1, 2) = 1, so 1 + 2 merge first into columns 1..2
    image = np.zeros((2, 3, 3))
    image[:, 0, 0] = image[:, 1:, 2] = 1.0
    labels = np.array([[0, 1, 2]] * 2)
    regions = hierarchical_grouping(image, labels, weights=(1, 0, 0, 0))
    assert [r.box for r in regions[3:]] == [(1, 0, 3, 2), (0, 0, 3, 2)]


def test_number_of_regions_is_initial_plus_merges():
    image = _noise()
    labels = felzenszwalb(image, scale=100, sigma=0.8, min_size=10, channel_axis=-1)
    n = len(np.unique(labels))
    regions = hierarchical_grouping(image, labels)
    assert n > 2
    assert len(regions) == n + (n - 1)
    assert regions[-1].box == (0, 0, 24, 24) and regions[-1].size == 24 * 24
    np.testing.assert_allclose(regions[-1].colour.sum(), 1.0)


def test_two_rectangles_exact():
    # sigma = 0: three flat regions (background, red, blue), boxes x2/y2 exclusive. Both merges give the
    # whole image again (the background's box), so deduplication leaves the three initial boxes.
    boxes = selective_search(_two_rectangles(), sigma=0.0)
    assert boxes.dtype == np.int64
    assert sorted(boxes.tolist()) == [[0, 0, 32, 32], [4, 4, 14, 12], [16, 18, 28, 28]]
    np.testing.assert_array_equal(selective_search(_two_rectangles() / 255.0, sigma=0.0), boxes)


def test_two_rectangles_default_parameters():
    # the default blur adds thin regions along the edges; the rectangles' own boxes still come out
    boxes = selective_search(_two_rectangles()).tolist()
    for box in ([0, 0, 32, 32], [4, 4, 14, 12], [16, 18, 28, 28]):
        assert box in boxes


def test_boxes_are_valid_unique_and_include_the_whole_image():
    boxes = selective_search(_noise(), min_size=10)
    assert boxes.ndim == 2 and boxes.shape[1] == 4 and len(boxes) > 1
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2:] <= 24).all() and (boxes[:, 2:] > boxes[:, :2]).all()
    assert len(np.unique(boxes, axis=0)) == len(boxes)
    assert [0, 0, 24, 24] in boxes.tolist()


def test_boxes_follow_the_hierarchy_order():
    image = _noise()
    labels = felzenszwalb(image, scale=100, sigma=0.8, min_size=10, channel_axis=-1)
    expected = []
    for region in hierarchical_grouping(image, labels):
        if list(region.box) not in expected:
            expected.append(list(region.box))
    assert selective_search(image, min_size=10).tolist() == expected


def test_size_only_weights_still_propose():
    boxes = selective_search(_noise(), min_size=10, weights=(0, 0, 1, 0))
    assert len(boxes) > 1 and [0, 0, 24, 24] in boxes.tolist()


def test_min_box_size():
    boxes = selective_search(_noise(), min_size=10, min_box_size=8)
    assert len(boxes) > 0 and (boxes[:, 2:] - boxes[:, :2] >= 8).all()
    assert selective_search(_noise(), min_box_size=25).shape == (0, 4)


def test_grayscale_is_broadcast():
    grey = _noise()[..., 0]
    np.testing.assert_array_equal(selective_search(grey), selective_search(np.stack([grey] * 3, axis=-1)))


def test_deterministic():
    image = _noise(32, seed=1)
    np.testing.assert_array_equal(selective_search(image), selective_search(image.copy()))


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"image": np.zeros(5)}, "image"),
        ({"image": np.zeros((2, 4, 4, 3))}, "image"),
        ({"image": np.zeros((4, 4, 4))}, "image"),
        ({"image": np.zeros((0, 4, 3))}, "image"),
        ({"image": np.full((4, 4, 3), 2.0)}, "image"),
        ({"image": np.zeros((4, 4, 3), np.int8)}, "image"),
        ({"weights": (0, 0, 0, 0)}, "weights"),
        ({"weights": (1, 1, 1)}, "weights"),
        ({"weights": (1, -1, 1, 1)}, "weights"),
        ({"min_box_size": -1}, "min_box_size"),
    ],
)
def test_bad_input_raises(kwargs, name):
    kwargs = {"image": np.zeros((4, 4, 3)), **kwargs}
    with pytest.raises(ValueError, match=name):
        selective_search(**kwargs)


def test_labels_shape_mismatch_raises():
    with pytest.raises(ValueError, match="labels"):
        hierarchical_grouping(np.zeros((4, 4, 3)), np.zeros((4, 5), int))
