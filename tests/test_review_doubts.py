"""Each box's likely error on the review page (``semiyolo.review.doubt.likely_error``): hand-built signals, and the
field the API adds to an image's boxes and dropped candidates."""

import json

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from semiyolo.review.app import create_app
from semiyolo.review.doubt import (
    BADLY_LOCATED,
    LIKELY_ERRORS,
    MISSED,
    SPURIOUS,
    WRONG_CLASS,
    ScoredBox,
    box_errors,
    likely_error,
    missed_candidates,
)
from semiyolo.review.sources import LabelFolderSource, Proposal, open_folder_source
from semiyolo.review.store import ReviewStore


def test_the_likely_error_of_hand_built_signals():
    assert likely_error(0.9, 0.0, 0.1, None) is None  # confident, sharp sides, no rival
    assert likely_error(0.6, 0.45, None, None) == WRONG_CLASS  # margin 0.15 < 0.25
    assert likely_error(0.9, 0.6, None, None) is None  # margin 0.3: the class is clear
    assert likely_error(0.4, 0.0, None, None) == SPURIOUS  # 0.4 < 0.5
    assert likely_error(0.4, 0.3, None, None) == WRONG_CLASS  # margin 0.1: the class is named before the score
    assert likely_error(0.9, 0.0, None, False) == SPURIOUS  # the run's student has no box of its class there
    assert likely_error(0.9, 0.0, 0.6, None) == BADLY_LOCATED  # entropy 0.6 >= 0.5
    assert likely_error(0.9, 0.0, 0.5, True) == BADLY_LOCATED  # the threshold itself counts
    assert likely_error(0.3, 0.0, 0.9, None) == SPURIOUS  # a box unlikely to be there: its place does not matter
    assert likely_error(None, 0.0, None, None) is None  # a person's box on its own
    assert likely_error(None, 0.0, None, None, overlaps_other_class=True) == WRONG_CLASS
    assert likely_error(None, 0.0, None, None, overlaps_same_class=True) == SPURIOUS  # a duplicate


def test_box_errors_take_the_rival_class_from_an_overlapping_box():
    # classes 0 and 1 on one place (IoU 1): 0.6 - 0.55 = 0.05 and 0.55 - 0.6 < 0.25: both wrong class; a third box
    # apart at 0.95 with entropy 0.7: badly located; two unscored boxes of class 2 at IoU 0.905: duplicates
    boxes = [
        ScoredBox(0, 0.3, 0.3, 0.2, 0.2, score=0.6),
        ScoredBox(1, 0.3, 0.3, 0.2, 0.2, score=0.55),
        ScoredBox(0, 0.8, 0.2, 0.1, 0.1, score=0.95, entropy=0.7),
        ScoredBox(2, 0.5, 0.7, 0.4, 0.4),
        ScoredBox(2, 0.52, 0.7, 0.4, 0.4),
    ]
    assert box_errors(boxes) == [WRONG_CLASS, WRONG_CLASS, BADLY_LOCATED, SPURIOUS, SPURIOUS]
    assert box_errors([]) == []


def test_a_dropped_candidate_no_kept_box_overlaps_is_possibly_missed():
    kept = [ScoredBox(0, 0.25, 0.25, 0.2, 0.2, score=0.9)]
    dropped = [
        ScoredBox(1, 0.27, 0.25, 0.2, 0.2, score=0.3),  # IoU 0.18 * 0.2 / (0.08 - 0.036) = 0.818 with the kept box
        ScoredBox(0, 0.75, 0.75, 0.2, 0.2, score=0.4),  # apart: IoU 0
        ScoredBox(0, 0.4, 0.25, 0.2, 0.2, score=0.4),  # IoU 0.05 * 0.2 / (0.08 - 0.01) = 0.143 < 0.3
    ]
    assert missed_candidates(kept, dropped) == [False, True, True]
    assert missed_candidates([], dropped[:1]) == [True]
    assert missed_candidates(kept, []) == []


class _Proposed(LabelFolderSource):
    """One image whose proposal is given (a run's signals without a model)."""

    def __init__(self, root, images, proposal: Proposal) -> None:
        super().__init__(root, images, {0: "a", 1: "b"}, kind="run")
        self.given = proposal

    def load(self, name: str) -> Proposal:
        return self.given


def test_the_api_gives_each_box_its_likely_error(tmp_path):
    root = tmp_path / "images"
    root.mkdir()
    Image.new("RGB", (40, 20)).save(root / "u.png")
    kept = [
        ScoredBox(0, 0.25, 0.25, 0.2, 0.2, score=0.95, entropy=0.1),
        ScoredBox(1, 0.7, 0.5, 0.2, 0.2, score=0.3, entropy=0.2),
    ]
    dropped = [ScoredBox(1, 0.25, 0.75, 0.2, 0.2, score=0.2, dropped_by="score")]  # apart from both: missed
    source = _Proposed(root, {"u.png": root / "u.png"}, Proposal(boxes=kept, dropped=dropped))
    client = TestClient(create_app(source, ReviewStore(tmp_path / "reviewed", user="t")))
    body = client.get("/api/labels/u.png").json()
    assert [b["likely_error"] for b in body["boxes"]] == [None, SPURIOUS]
    assert [b["likely_error"] for b in body["proposal"]] == [None, SPURIOUS]
    assert [b["likely_error"] for b in body["dropped"]] == [MISSED]
    # a saved review is the person's: its boxes (no scores, apart) have none
    saved = [{k: b[k] for k in ("cls", "cx", "cy", "w", "h")} for b in body["boxes"]]
    assert client.put("/api/labels/u.png", json={"action": "accept", "boxes": saved}).status_code == 200
    assert [b["likely_error"] for b in client.get("/api/labels/u.png").json()["boxes"]] == [None, None]


@pytest.fixture
def pseudo(tmp_path):
    folder = tmp_path / "pseudo"
    (folder / "images").mkdir(parents=True)
    (folder / "labels").mkdir()
    Image.new("RGB", (40, 20)).save(folder / "images" / "h.png")
    (folder / "labels" / "h.txt").write_text("0 0.5 0.5 0.2 0.2\n1 0.5 0.5 0.2 0.2\n0 0.1 0.1 0.1 0.1\n")
    entry = {"image": str(folder / "images" / "h.png"), "name": "h.png", "scores": [0.6, 0.55, 0.92]}
    (folder / "manifest.jsonl").write_text(json.dumps(entry) + "\n")
    (folder / "summary.json").write_text(json.dumps({"names": ["x", "y"]}))
    return folder


def test_every_likely_error_the_api_sends_is_one_the_page_knows(pseudo):
    source = open_folder_source(pseudo, pseudo / "reviewed")
    client = TestClient(create_app(source, ReviewStore(pseudo / "reviewed", user="t")))
    body = client.get("/api/labels/h.png").json()
    # two classes on one box: margins 0.05 and -0.05, both < 0.25; the third box: 0.92, no rival, no entropy
    assert [b["likely_error"] for b in body["boxes"]] == [WRONG_CLASS, WRONG_CLASS, None]
    assert all(b["likely_error"] in (*LIKELY_ERRORS, None) for b in body["boxes"] + body["dropped"])
