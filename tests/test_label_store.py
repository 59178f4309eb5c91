"""The teacher's detections kept between visits (issue 31, item 3): visit counting, the store and its state."""

import pytest
import torch

from semiyolo.pseudo import Detections
from semiyolo.teacher.label_store import LabelStore, merge_labeled


def _dets(score: float) -> Detections:
    return Detections(torch.tensor([[0.0, 0.0, 4.0, 4.0]]), torch.tensor([score]), torch.tensor([1]), None, None)


def test_an_image_is_labeled_on_its_first_visit_and_every_nth_after():
    store = LabelStore(every=3)
    seen = []
    for _ in range(7):
        now = store.due(["a"])[0]
        seen.append(now)
        if now:
            store.put("a", (_dets(0.5), []))
    # visits 1, 4 and 7 are labeled (visit - 1 divisible by 3); the others are served
    assert seen == [True, False, False, True, False, False, True]


def test_an_image_the_store_lacks_is_labeled_whatever_its_visit():
    store = LabelStore(every=3)
    assert store.due(["a", "b"]) == [True, True]
    store.put("a", (_dets(0.5), [_dets(0.4), _dets(0.6)]))  # b's labels never came back (left out of the batch)
    assert store.due(["a", "b"]) == [False, True]
    served, views = store.get("a")
    assert served.scores.tolist() == [0.5] and [v.scores.item() for v in views] == pytest.approx([0.4, 0.6])


def test_every_visit_labeled_keeps_nothing_and_bad_every_is_refused():
    store = LabelStore(every=1)
    assert store.due(["a"]) == [True]
    store.put("a", (_dets(0.5), []))
    assert store.entries == {} and store.due(["a"]) == [True]
    with pytest.raises(ValueError, match="positive number of visits"):
        LabelStore(every=0)


def test_a_restored_store_serves_and_counts_as_the_saved_one():
    store = LabelStore(every=2)
    store.due(["a"])
    store.put("a", (_dets(0.7), []))
    again = LabelStore()
    again.load_state_dict(store.state_dict())
    assert again.due(["a"]) == store.due(["a"]) == [False]  # visit 2 of every 2: served
    assert again.get("a")[0].scores.tolist() == pytest.approx([0.7])


def test_merging_keeps_the_batch_order_and_refuses_a_count_mismatch():
    labeled, served = [(_dets(0.1), []), (_dets(0.3), [])], [(_dets(0.2), [])]
    merged = merge_labeled([True, False, True], labeled, served)
    assert [e[0].scores.item() for e in merged] == pytest.approx([0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="2 labeled and 1 served entries for 2 images"):
        merge_labeled([True, False], labeled, served)


def test_a_moved_candidate_floor_forgets_what_was_kept():
    store = LabelStore(every=3)
    store.at_floor(0.1)
    store.due(["a"])
    store.put("a", (_dets(0.5), []))
    store.at_floor(0.1)
    assert store.due(["a"]) == [False]  # the same floor: served
    store.at_floor(0.05)  # negative_coverage lowered it: the kept detections lack the candidates in between
    assert store.entries == {} and store.due(["a"]) == [True]
