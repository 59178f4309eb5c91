"""What the review page's order finds before any training: the wrong boxes in the images it lists first, against
random orders and the best possible order, on a controlled-protocol label split whose unlabeled images carry hidden
labels (:mod:`semiyolo.experiments.review_yield`). Nothing trains; each split's images are labelled once by its
converged run, as ``semiyolo review`` and the reviewed arms label them.

    python benchmarks/review_yield.py /tmp/abl/c_shapes/controls/split0 /tmp/abl/c_shapes/controls/split1 \
        --k 5 10 20 --draws 2000

Each SPLIT is a label split's folder of ``semiyolo ablate`` with its finished ``supervised_converged/`` run; the orders
are the reviewed arms' ``review_order.json``, made here as they make it when they have not run yet. Prints per split:
the errors of the whole unlabeled set, the rank correlation of the page's worth with each image's wrong boxes, and per
error kind a table of the errors the first ``k`` images hold in the page's order, the spread order, a variant of the
page's order that also counts possible misses (not shipped; :func:`worth_with_misses`), the trained random arm's order
(seed 0), 2000 random orders (mean and the central 90 %) and the best order.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")  # before Ultralytics is imported

import torch

from semiyolo.data import label_path, read_label_file
from semiyolo.experiments.review_arms import (
    ORDER_FILE,
    PAGE,
    RANDOM,
    REVIEWS_FOLDER,
    SPREAD,
    chosen_images,
    review_orders,
)
from semiyolo.experiments.review_yield import (
    ERROR_KINDS,
    ImageErrors,
    best_order,
    image_errors,
    order_yields,
    random_yields,
    rank_correlation,
)
from semiyolo.experiments.runs import CONVERGED
from semiyolo.integrations.ultralytics.review_source import (
    RunSource,
    is_run_folder,
    read_semi_state,
    run_semi_settings,
)
from semiyolo.review.doubt import image_worth, missed_candidates
from semiyolo.review.sources import Proposal, page_rank


def split_errors(split: Path, orders: dict) -> tuple[dict[str, ImageErrors], list[str]]:
    """Each unlabeled image's errors (the converged run's proposal against the image's hidden labels), and the
    images in the order of a worth that also counts possible misses (:func:`worth_with_misses`)."""
    run = split / CONVERGED
    state = read_semi_state(run)
    source = RunSource(run, run_semi_settings(run, None, state), split / REVIEWS_FOLDER, state)
    root = Path(orders["unlabeled"])
    errors, with_misses = {}, {}
    for name in orders[PAGE]:
        proposal = source.proposal(name)
        if proposal.error:
            raise SystemExit(f"{root / name}: {proposal.error}")
        rows = [[b.cx, b.cy, b.w, b.h, b.score or 0.0, b.cls] for b in proposal.boxes]
        found = torch.tensor(rows, dtype=torch.float32).reshape(-1, 6)
        labels = torch.from_numpy(read_label_file(label_path(root / name)))
        errors[name] = image_errors(found[:, :4], found[:, 4], found[:, 5], labels)
        with_misses[name] = worth_with_misses(proposal)
    return errors, sorted(with_misses, key=lambda name: page_rank(False, False, with_misses[name], name))


def worth_with_misses(proposal: Proposal) -> float:
    """A variant of the page's worth, measured here and not shipped: the image's worth plus, for each candidate
    the filters dropped that no kept box overlaps (a possibly missed object, :func:`missed_candidates`), its score
    read as the chance that it is an object."""
    missed = missed_candidates(proposal.boxes, proposal.dropped)
    return image_worth(proposal.boxes, proposal.student_only) + sum(
        box.score or 0.0 for box, flagged in zip(proposal.dropped, missed, strict=True) if flagged
    )


def kind_table(errors: dict[str, ImageErrors], orders: dict, ks: list[int], kind: str, draws: int) -> list[str]:
    """A markdown table of ``kind`` errors found in the first ``k`` images of each order."""
    total = sum(e.count(kind) for e in errors.values())
    named = {
        "page": orders[PAGE],
        "spread": orders[SPREAD],
        "page + misses": orders[WITH_MISSES],
        "random arm (seed 0)": chosen_images(orders, RANDOM, max(ks), 0),
        "best": best_order(errors, kind),
    }
    found = {label: order_yields(errors, order, ks, kind) for label, order in named.items()}
    randoms = random_yields(errors, ks, kind, draws=draws)
    lines = [
        f"{kind} boxes (the set holds {total}):",
        "",
        "| k | page | spread | page + misses | random arm (seed 0) | random, mean [90 %] | best |",
        "|---|---|---|---|---|---|---|",
    ]
    for i, k in enumerate(ks):
        r = randoms[i]
        cells = [str(found[label][i]) for label in ("page", "spread", "page + misses", "random arm (seed 0)")]
        lines.append(f"| {k} | {' | '.join(cells)} | {r.mean:.1f} [{r.low:.0f}, {r.high:.0f}] | {found['best'][i]} |")
    return [*lines, ""]


WITH_MISSES = "page + misses"


def split_orders(split: Path) -> dict:
    """The split's ``review_order.json``, made as the reviewed arms make it when they have not run yet."""
    run = split / CONVERGED
    if not (split / ORDER_FILE).is_file() and not is_run_folder(run):
        raise SystemExit(f"{split}: no {ORDER_FILE} and no finished {CONVERGED} run (expected an ablate label split)")
    unlabeled = run_semi_settings(run, None, read_semi_state(run)).unlabeled
    return review_orders(split, run, unlabeled)


def first_difference(first: list[str], second: list[str]) -> int | str:
    """The first position (from 0) where two orders differ, or ``"none"``."""
    return next((i for i, (a, b) in enumerate(zip(first, second, strict=True)) if a != b), "none")


def report(split: Path, ks: list[int], draws: int) -> list[str]:
    orders = split_orders(split)
    errors, orders[WITH_MISSES] = split_errors(split, orders)
    names = orders[PAGE]
    worth = [float(orders["worth"].get(name) or 0.0) for name in names]
    lines = [
        f"## {split}",
        "",
        f"{len(names)} unlabeled images, {sum(e.wrong > 0 for e in errors.values())} with a wrong box; "
        f"labelled by {orders['teacher']}",
        "rank correlation of the page's worth with each image's wrong boxes: "
        + f"{rank_correlation(worth, [errors[n].wrong for n in names]):+.3f}",
        f"the spread order's first difference from the page's: at position {first_difference(names, orders[SPREAD])}",
        "",
    ]
    for kind in ERROR_KINDS:
        lines += kind_table(errors, orders, ks, kind, draws)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("splits", type=Path, nargs="+")
    parser.add_argument("--k", type=int, nargs="+", default=[5, 10, 20])
    parser.add_argument("--draws", type=int, default=2000)
    args = parser.parse_args()
    for split in args.splits:
        print("\n".join(report(split, sorted(args.k), args.draws)))


if __name__ == "__main__":
    main()
