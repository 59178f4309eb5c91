"""What to label next, measured (issue 32, item 3): the reviewed arms of ``semiyolo ablate``, their spread order on
hand-built thumbnails, their report on hand-built rows, and a tiny end-to-end run of two orders."""

import csv
import itertools
import json
import math
import subprocess
import sys
import threading

import pytest
import torch

from semiyolo.errors import ConfigError
from semiyolo.experiments.protocol import DEFAULT_REVIEW_K, Protocol, arms_to_run, continuation_arms
from semiyolo.experiments.review_arms import chosen_images, reviewed_names, write_reviewed
from semiyolo.experiments.review_report import review_markdown
from semiyolo.review.doubt import ScoredBox
from semiyolo.review.sources import ImageSource, Proposal, page_order
from semiyolo.review.spread import near_duplicate_distance, rms_distances, spread_order, thumbnail


def test_near_duplicates_count_once_in_the_spread_order():
    # rows in the page's order; 4 values each, so the RMS distance is |difference| / 2 where one value differs:
    # 0 and 1 differ by 0.02 in one value (RMS 0.01), 2 and 3 by 0.04 (RMS 0.02); every other pair by 0.5 or more
    features = torch.tensor(
        [
            [0.0, 0.0, 0.0, 0.0],
            [0.02, 0.0, 0.0, 0.0],
            [1.0, 1.0, 1.0, 1.0],
            [1.0, 1.0, 1.0, 0.96],
            [0.5, 0.5, 0.5, 0.5],
        ]
    )
    assert rms_distances(features)[0, 1].item() == pytest.approx(0.01)
    # below 0.1, row 1 duplicates row 0 and row 3 row 2: the distinct rows first, the duplicates after, in order
    assert spread_order(features, 0.1) == [0, 2, 4, 1, 3]
    assert spread_order(features, 0.015) == [0, 2, 3, 4, 1]  # 0.02 is far enough apart: only row 1 is a duplicate
    assert spread_order(features, 0.0) == [0, 1, 2, 3, 4]  # nothing is a duplicate: the page's order


def test_the_near_duplicate_distance_is_a_share_of_the_median_pair():
    # three images on a line at 0, 0.2 and 1 (one value each): pairs 0.2, 1.0, 0.8, median 0.8, a quarter 0.2
    features = torch.tensor([[0.0], [0.2], [1.0]])
    assert near_duplicate_distance(features) == pytest.approx(0.2)
    assert near_duplicate_distance(features[:1]) == 0.0
    white = torch.full((3, 32, 48), 255, dtype=torch.uint8)
    assert torch.equal(thumbnail(white), torch.ones(3 * 16 * 16))  # [0, 1] pixels, averaged down to 16 x 16


class _Scored(ImageSource):
    def __init__(self, scores):
        super().__init__(None, {name: None for name in scores}, {0: "a"})
        self.scores = scores

    def load(self, name):
        score = self.scores[name]
        return None if score is None else Proposal(boxes=[ScoredBox(0, 0.5, 0.5, 0.2, 0.2, score=score)])


def test_the_page_order_is_the_most_worth_first_then_by_name():
    # worth = 1 - score: b 0.9, a and c 0.3 (by name), d not labelled yet (last)
    source = _Scored({"c.png": 0.7, "a.png": 0.7, "d.png": None, "b.png": 0.1})
    assert page_order(source) == ["b.png", "a.png", "c.png", "d.png"]


def test_random_choices_are_reproducible_under_the_seed_and_nested():
    orders = {
        "unlabeled": "u",
        "page": [f"{i}.png" for i in range(20)],
        "spread": [f"{i}.png" for i in range(19, -1, -1)],
    }
    assert chosen_images(orders, "page", 3, seed=0) == ["0.png", "1.png", "2.png"]
    assert chosen_images(orders, "spread", 2, seed=0) == ["19.png", "18.png"]
    five = chosen_images(orders, "random", 5, seed=7)
    assert five == chosen_images(orders, "random", 5, seed=7) and len(set(five)) == 5
    assert chosen_images(orders, "random", 3, seed=7) == five[:3]  # a larger k adds to a smaller one's images
    assert chosen_images(orders, "random", 5, seed=8) != five
    with pytest.raises(ConfigError, match=r"--review-k 21: the unlabeled folder u has only 20 images"):
        chosen_images(orders, "page", 21, seed=0)


def test_reviewed_arms_are_off_unless_asked():
    assert not [a for a in continuation_arms(Protocol(seeds=1), [0]) if a.review]
    protocol = Protocol(seeds=1, only=("reviewed",))
    assert protocol.review_k == DEFAULT_REVIEW_K
    arms = arms_to_run(protocol, continuation_arms(protocol, [0]), 0, hidden_labels=True)
    assert [a.name for a in arms][:3] == [
        "seed0/reviewed_k5_page",
        "seed0/reviewed_k5_random",
        "seed0/reviewed_k5_spread",
    ]
    assert len(arms) == 9 and {a.semi["mode"] for a in arms} == {"online"}
    assert arms_to_run(protocol, continuation_arms(protocol, [0]), 0, hidden_labels=False) == []
    with pytest.raises(ConfigError, match=r"--review-orders: expected some of page, random, spread"):
        Protocol(review_k=(5,), review_orders=("best",))


def _row(order, k, seed, value, split=0):
    return {
        "kind": "reviewed",
        "run": f"seed{seed}/reviewed_k{k}_{order}",
        "seed": seed,
        "label_split": split,
        "review_k": k,
        "review_order": order,
        "metrics/mAP50-95(B)": value,
    }


def test_the_review_table_gives_the_gain_per_reviewed_image_against_random():
    rows = [
        _row("random", 10, 0, 0.50),
        _row("random", 10, 1, 0.52),
        _row("random", 10, 2, 0.50),
        _row("page", 10, 0, 0.53),
        _row("page", 10, 1, 0.56),
        _row("page", 10, 2, 0.53),  # +0.03 / 10, +0.04 / 10, +0.03 / 10: 0.00333 ± 0.00058
        _row("spread", 10, 0, 0.51),
        _row("spread", 10, 1, 0.51),
        _row("spread", 10, 2, 0.50),  # +0.001, -0.001, 0: 0 ± 0.001
    ]
    md = review_markdown(rows)
    assert "| 10 | random | 3 | 0.507 ± 0.012 | - |" in md
    assert "| 10 | page | 3 | 0.540 ± 0.017 | +0.0033 ± 0.0006 |" in md
    assert "page at k=10: +0.0033 ± 0.0006 mAP50-95 per reviewed image over random (3 pairs): beats random" in md
    assert "spread at k=10: +0.0000 ± 0.0010 mAP50-95 per reviewed image over random (3 pairs): does NOT beat" in md
    # two pairs give a standard deviation, but not one to trust: +0.0035 ± 0.0007 gets no verdict
    two = review_markdown([r for r in rows if r["seed"] < 2])
    assert "page at k=10: +0.0035 ± 0.0007 mAP50-95 per reviewed image over random (2 pairs); too few" in two
    assert review_markdown([r for r in rows if r["seed"] == 0]).endswith("(at least 3), no verdict")
    assert review_markdown([{"kind": "online", "run": "seed0/online_bg1", "seed": 0}]) == ""


def test_two_orders_end_to_end(tmp_path):
    from semiyolo.cli import main
    from semiyolo.data import SynthSpec, label_path, write_dataset
    from semiyolo.experiments.runs import ROW_FILE

    data = write_dataset(tmp_path / "data", SynthSpec(images=24, imgsz=64, seed=3))
    assert main(["split", str(data), "--fraction", "0.5", "--out", str(tmp_path / "split")]) == 0
    out = tmp_path / "ablation"
    overrides = ["train.epochs=1", "train.imgsz=64", "train.batch=4", "train.workers=0", "train.plots=false"]
    args = ["ablate", str(tmp_path / "split" / "config.yaml"), *overrides, "semi.validate_teacher=false"]
    args += ["--out", str(out), "--steps", "2", "--seeds", "1", "--only", "reviewed"]
    assert main([*args, "--review-k", "3", "--review-orders", "page", "random"]) == 0
    table = [r for r in csv.DictReader((out / "ablation.csv").open()) if r["kind"] == "reviewed"]
    assert [(r["run"], r["review_k"], r["review_order"], r["optimizer_steps"]) for r in table] == [
        ("seed0/reviewed_k3_page", "3", "page", "2"),
        ("seed0/reviewed_k3_random", "3", "random", "2"),
    ]
    chosen = {o: json.loads((out / f"seed0/reviewed_k3_{o}" / ROW_FILE).read_text()) for o in ("page", "random")}
    page, random = chosen["page"]["reviewed_images"], chosen["random"]["reviewed_images"]
    assert len(page) == len(random) == 3 and page != random
    orders = json.loads((out / "review_order.json").read_text())
    assert page == orders["page"][:3] and random == chosen_images(orders, "random", 3, seed=0)
    worth = [orders["worth"][name] for name in orders["page"]]
    assert all(a >= b - 1e-4 for a, b in itertools.pairwise(worth))  # the most worth first
    # the reviewed images joined the labeled training images, with their hidden labels as the reviewer's
    listing = (out / "seed0/reviewed_k3_page" / "labeled_with_reviewed.txt").read_text().splitlines()
    reviewed = out / "simulated_reviews" / "seed0" / "reviewed_k3_page" / "images"
    assert all(str(reviewed / name) in listing for name in page)
    hidden = label_path(tmp_path / "split" / "unlabeled" / "images" / page[0])
    assert label_path(reviewed / page[0]).read_text() == (hidden.read_text() if hidden.is_file() else "")
    md = (out / "ablation.md").read_text()
    assert "## What to label next, on the validation split" in md and "| 3 | page | 1 |" in md
    assert not math.isnan(float(table[0]["mAP50-95"]))


def test_the_spread_order_stops_looking_at_its_limit_and_the_median_is_sampled_for_large_sets(monkeypatch):
    import semiyolo.review.spread as spread

    features = torch.tensor([[0.0], [0.01], [1.0], [1.01], [2.0]])
    # rows 1 and 3 are near-duplicates of 0 and 2; with a limit of 2 the search stops after taking 0 and 2
    assert spread_order(features, 0.1, limit=2) == [0, 2, 1, 3, 4]
    assert spread_order(features, 0.1, limit=10) == spread_order(features, 0.1) == [0, 2, 4, 1, 3]
    # above MAX_PAIRS the median comes from a seeded sample of pairs: the same answer twice, near the exact one
    exact = near_duplicate_distance(features)
    monkeypatch.setattr(spread, "MAX_PAIRS", 4)
    sampled = near_duplicate_distance(features)
    assert sampled == near_duplicate_distance(features) and 0 < sampled <= 0.25 * 2.0 and exact > 0


def test_a_reviewed_folder_another_process_is_writing_is_waited_for_not_cleared(tmp_path, monkeypatch):
    from semiyolo.experiments import runs

    monkeypatch.setattr(runs, "LOCK_POLL_SECONDS", 0.05)
    unlabeled = tmp_path / "unlabeled"
    unlabeled.mkdir()
    for name in ("a.png", "b.png"):
        (unlabeled / name).write_bytes(b"png")
    (unlabeled / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")  # b.png has no label file: no objects
    folder = tmp_path / "simulated_reviews" / "seed0" / "reviewed_k2_page"
    script = (
        "import sys, time; from pathlib import Path; from semiyolo.runfiles import RunLock; "
        "f = Path(sys.argv[1]); RunLock(f.parent, '.' + f.name + '.lock').acquire(); "
        "(f / 'images').mkdir(parents=True); (f / 'images' / 'half.txt').write_text('mid-write'); "
        "print('held', flush=True); time.sleep(60)"
    )
    holder = subprocess.Popen([sys.executable, "-c", script, str(folder)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        writer = threading.Thread(target=write_reviewed, args=(folder, ["a.png", "b.png"], unlabeled))
        writer.start()
        writer.join(timeout=1.0)
        assert writer.is_alive()  # waiting for the holder, which is still writing
        assert (folder / "images" / "half.txt").read_text() == "mid-write"  # its work untouched meanwhile
    finally:
        holder.kill()
        holder.wait()
    writer.join(timeout=10)
    assert not writer.is_alive() and reviewed_names(folder) == ["a.png", "b.png"]
    from semiyolo.data import label_path

    assert label_path(folder / "images" / "a.png").read_text() == "0 0.5 0.5 0.2 0.2\n"
    assert label_path(folder / "images" / "b.png").read_text() == "" and not (folder / "images" / "half.txt").exists()
