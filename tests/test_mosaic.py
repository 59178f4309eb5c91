"""Pseudo-mosaic (issue 31, item 4): tiles, boxes and the cache on hand-built batches."""

import pytest
import torch

from semiyolo.batch import IGNORE_BOXES_KEY, IGNORE_INDEX_KEY, REGRESS_KEY
from semiyolo.teacher.mosaic import MosaicCache, Tile, halve, mosaic_rows


def _tile(value: float, boxes: list[list[float]], side: int = 4) -> Tile:
    """A uniform half-scale tile of ``value`` (out of 255) with class-1 targets at ``boxes`` (cxcywh normalised)."""
    targets = {"cls": torch.ones(len(boxes), 1), "bboxes": torch.tensor(boxes).view(-1, 4)}
    return Tile(torch.full((3, side, side), value, dtype=torch.uint8), targets, torch.zeros(0, 4))


def _batch() -> dict:
    """Two 8 x 8 images: row 0 (labeled, left alone) with one box, row 1 (pseudo-labeled) with one regressed box."""
    img = torch.zeros(2, 3, 8, 8)
    img[1] = 0.5
    return {
        "img": img,
        "batch_idx": torch.tensor([0.0, 1.0]),
        "cls": torch.tensor([[0.0], [2.0]]),
        "bboxes": torch.tensor([[0.5, 0.5, 0.2, 0.2], [0.5, 0.5, 0.5, 0.5]]),
        REGRESS_KEY: torch.tensor([True, False]),
    }


def _seeded_cache() -> MosaicCache:
    cache = MosaicCache(size=8)
    # 51 / 255 = 0.2, 102 / 255 = 0.4, 153 / 255 = 0.6; the third tile's box is 0.25 x 8 / 2 = 1 px a side in the mosaic
    cache.push([_tile(51, [[0.5, 0.5, 0.5, 1.0]]), _tile(102, []), _tile(153, [[0.5, 0.5, 0.25, 0.25]])])
    return cache


def test_halving_averages_two_by_two_blocks():
    image = torch.arange(16.0).view(1, 1, 4, 4)
    # the top-left block holds 0, 1, 4, 5: mean 2.5; top-right 2, 3, 6, 7: 4.5; then 10.5 and 12.5
    assert torch.equal(halve(image), torch.tensor([[[[2.5, 4.5], [10.5, 12.5]]]]))
    with pytest.raises(ValueError, match="even image size"):
        halve(torch.zeros(1, 3, 5, 4))


def test_a_mosaic_holds_its_own_image_and_three_cached_ones_with_every_tile_s_boxes():
    batch, cache = _batch(), _seeded_cache()
    generator = torch.Generator().manual_seed(0)
    out, made = mosaic_rows(batch, cache, torch.tensor([1]), 1.0, generator)
    assert made == 1
    quadrants = [out["img"][1, 0, r : r + 4, c : c + 4] for r, c in ((0, 0), (0, 4), (4, 0), (4, 4))]
    values = sorted(round(float(q.mean()), 3) for q in quadrants)
    assert values == [0.2, 0.4, 0.5, 0.6]  # the three cached tiles and the row's own image (0.5), each uniform
    assert all(float(q.max() - q.min()) == 0 for q in quadrants)
    assert torch.equal(out["img"][0], torch.zeros(3, 8, 8))  # the labeled row is left alone
    corner = {round(float(q.mean()), 3): k for k, q in enumerate(quadrants)}

    def moved(box, value):  # a box halved into the corner that shows ``value``
        k = corner[value]
        return [box[0] / 2 + 0.5 * (k % 2), box[1] / 2 + 0.5 * (k // 2), box[2] / 2, box[3] / 2]

    assert out["batch_idx"].tolist() == [0.0, 1.0, 1.0]  # sorted by image: the labeled box, then row 1's two
    assert out["cls"][0].item() == 0 and sorted(out["cls"][1:].view(-1).tolist()) == [1.0, 2.0]
    own = out["bboxes"][out["cls"].view(-1) == 2][0]
    cached = out["bboxes"][out["cls"].view(-1) == 1][0]
    assert torch.allclose(own, torch.tensor(moved([0.5, 0.5, 0.5, 0.5], 0.5)))  # 0.25 x 8 = 2 px: kept
    assert torch.allclose(cached, torch.tensor(moved([0.5, 0.5, 0.5, 1.0], 0.2)))
    assert torch.equal(out["bboxes"][0], batch["bboxes"][0])
    # the row's own target keeps its flag (not regressed); the cached tile had none: it takes the labeled default
    assert out[REGRESS_KEY][out["cls"].view(-1) == 2].tolist() == [False]
    assert out[REGRESS_KEY][out["cls"].view(-1) == 1].tolist() == [True]
    # the third tile's box, 1 px a side in the mosaic, is an ignore region of row 1, not a target
    assert out[IGNORE_INDEX_KEY].tolist() == [1.0]
    assert torch.allclose(out[IGNORE_BOXES_KEY][0], torch.tensor(moved([0.5, 0.5, 0.25, 0.25], 0.6)))
    # the row's image joined the cache as it was (uniform 0.5 = 127.5, rounded to 128), with its own target
    assert len(cache) == 4 and int(cache.tiles[-1].image.float().mean()) == 128
    assert cache.tiles[-1].targets["bboxes"].tolist() == [[0.5, 0.5, 0.5, 0.5]]


def test_nothing_is_mosaicked_until_the_cache_holds_three_images_but_the_images_join_it():
    cache = MosaicCache(size=3)
    before = _batch()
    out, made = mosaic_rows(before, cache, torch.tensor([0, 1]), 1.0, torch.Generator().manual_seed(0))
    assert made == 0 and out is before and len(cache) == 2
    out, made = mosaic_rows(_batch(), cache, torch.tensor([1]), 1.0, torch.Generator().manual_seed(0))
    assert made == 0 and len(cache) == 3  # two cached images: still short of three partners
    out, made = mosaic_rows(_batch(), cache, torch.tensor([1]), 1.0, torch.Generator().manual_seed(0))
    assert made == 1 and len(cache) == 3  # the oldest image left the cache for the newest


def test_probability_zero_leaves_the_batch_as_it_was():
    out, made = mosaic_rows(_batch(), _seeded_cache(), torch.tensor([0, 1]), 0.0, torch.Generator().manual_seed(0))
    reference = _batch()
    assert made == 0 and all(torch.equal(out[k], reference[k]) for k in reference)


def test_a_restored_cache_and_generator_draw_the_same_mosaic():
    first, generator = _seeded_cache(), torch.Generator().manual_seed(3)
    saved, generator_state = first.state_dict(), generator.get_state()
    out, _ = mosaic_rows(_batch(), first, torch.tensor([0, 1]), 1.0, generator)
    again = MosaicCache()
    again.load_state_dict(saved)
    repeat, _ = mosaic_rows(_batch(), again, torch.tensor([0, 1]), 1.0, torch.Generator().set_state(generator_state))
    assert all(torch.equal(out[k], repeat[k]) for k in out)
    assert [t.image.sum() for t in first.tiles] == [t.image.sum() for t in again.tiles]


def test_the_cache_must_hold_three_partners_and_the_probability_lie_in_the_unit_interval():
    with pytest.raises(ValueError, match="at least 3 images"):
        MosaicCache(size=2)
    with pytest.raises(ValueError, match=r"lie in \[0, 1\]"):
        mosaic_rows(_batch(), _seeded_cache(), torch.tensor([1]), 1.5)


def test_a_labeled_mosaic_s_ignore_regions_stay_with_the_labeled_images_once_pseudo_labeled_ones_join():
    from semiyolo.batch import append_pseudo_labeled, labeled_part, split_batch

    # an online batch: the labeled row 0 was mosaicked and has one ignore region (a box too small in its tile)
    labeled = {
        **_batch(),
        IGNORE_INDEX_KEY: torch.tensor([0.0]),
        IGNORE_BOXES_KEY: torch.tensor([[0.1, 0.1, 0.05, 0.05]]),
    }
    labeled.pop(REGRESS_KEY)
    # one pseudo-labeled 8 x 8 image joins with a target and an ignore region (xyxy pixels)
    boxes, ignored = [torch.tensor([[0.0, 0.0, 4.0, 4.0]])], [torch.tensor([[4.0, 4.0, 8.0, 8.0]])]
    out = append_pseudo_labeled(labeled, torch.zeros(1, 3, 8, 8), boxes, [torch.tensor([1])], ignored=ignored)
    assert out[IGNORE_INDEX_KEY].tolist() == [0.0, 2.0]  # the labeled row's own first, then the pseudo-labeled row's
    mine, theirs = split_batch(out, 2)
    assert mine[IGNORE_INDEX_KEY].tolist() == [0.0] and theirs[IGNORE_INDEX_KEY].tolist() == [0.0]  # restarted at 0
    assert theirs[IGNORE_BOXES_KEY].tolist() == [[0.75, 0.75, 0.5, 0.5]]
    assert labeled_part(out)[IGNORE_INDEX_KEY].tolist() == [0.0]
