"""What the review page's order finds before any training: the wrong boxes in the images it lists first, against
random orders and the best possible order, on a controlled-protocol label split whose unlabeled images carry hidden
labels (:mod:`semiyolo.experiments.review_yield`). Nothing trains; each split's images are labelled once by its
converged run, as ``semiyolo review`` and the reviewed arms label them.

    python benchmarks/review_yield.py /tmp/abl/c_shapes/controls/split0 /tmp/abl/c_shapes/controls/split1 \
        --k 5 10 20 --draws 2000

Each SPLIT is a label split's folder of ``semiyolo ablate`` with its finished ``supervised_converged/`` run (whose
dataset has a labelled val split). Prints per split: the errors of the whole unlabeled set, the calibration
(:mod:`semiyolo.review.calibration`, on the run's validation images), the rank correlation of each worth with each
image's wrong boxes, which order the reviewed arms used (``review_order.json``, made here as they make it when they
have not run yet), and per error kind a table of the errors the first ``k`` images hold in the orders of
:data:`ORDERS` (the page's worth before calibration, that worth plus each possible miss's score, the calibrated worth
the page now uses, the spread order), the trained random arm's order (seed 0), 2000 random orders (mean and the
central 90 %) and the best order.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")  # before Ultralytics is imported

import torch
from scipy.stats import spearmanr  # Ultralytics' own dependency

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
)
from semiyolo.experiments.runs import CONVERGED
from semiyolo.integrations.ultralytics.review_source import (
    RunSource,
    is_run_folder,
    read_semi_state,
    run_semi_settings,
)
from semiyolo.review.calibration import box_rows, possible_misses
from semiyolo.review.doubt import image_worth
from semiyolo.review.sources import page_rank

UNCALIBRATED = "uncalibrated"  # the worth of review.doubt (scores as they are): the page's order before calibration
WITH_MISSES = "uncalibrated + misses"  # that worth plus each possible miss's score (measured, not shipped)
CALIBRATED = "calibrated"  # the page's order where the run has labelled validation images (review.calibration)
ORDERS = (UNCALIBRATED, WITH_MISSES, CALIBRATED, SPREAD)
RANDOM_ARM = "random arm (seed 0)"


def split_errors(split: Path, orders: dict) -> tuple[dict[str, ImageErrors], dict[str, dict[str, float]], str]:
    """Each unlabeled image's errors (the converged run's proposal against its hidden labels), its worth by each rule
    of :data:`ORDERS` but the spread one, and the calibration's line."""
    run, root = split / CONVERGED, Path(orders["unlabeled"])
    state = read_semi_state(run)
    semi = run_semi_settings(run, None, state).model_copy(update={"unlabeled": str(root)})
    source = RunSource(run, semi, split / REVIEWS_FOLDER, state)
    source.calibrate()
    if source.rates is None:
        raise SystemExit(f"{run}: no labelled validation images to calibrate on (its args.yaml data's val split)")
    errors, worths = {}, {UNCALIBRATED: {}, WITH_MISSES: {}, CALIBRATED: {}}
    for name in orders[PAGE]:
        proposal = source.proposal(name)
        if proposal.error:
            raise SystemExit(f"{root / name}: {proposal.error}")
        rows = box_rows(proposal.boxes)
        labels = torch.from_numpy(read_label_file(label_path(root / name)))
        errors[name] = image_errors(rows, labels)
        worths[UNCALIBRATED][name] = image_worth(proposal.boxes, proposal.student_only)
        misses = possible_misses(proposal.boxes, proposal.dropped)
        worths[WITH_MISSES][name] = worths[UNCALIBRATED][name] + sum(box.score or 0.0 for box in misses)
        worths[CALIBRATED][name] = proposal.worth
    return errors, worths, source.rates.describe()


def kind_table(errors: dict[str, ImageErrors], orders: dict, ks: list[int], kind: str, draws: int) -> list[str]:
    """A markdown table of ``kind`` errors found in the first ``k`` images of each order."""
    total = sum(e.count(kind) for e in errors.values())
    named = {label: orders[label] for label in ORDERS}
    named |= {RANDOM_ARM: chosen_images(orders, RANDOM, max(ks), 0), "best": best_order(errors, kind)}
    found = {label: order_yields(errors, order, ks, kind) for label, order in named.items()}
    randoms = random_yields(errors, ks, kind, draws=draws)
    lines = [
        f"{kind} boxes (the set holds {total}):",
        "",
        f"| k | {' | '.join(ORDERS)} | {RANDOM_ARM} | random, mean [90 %] | best |",
        "|---|" + "---|" * (len(ORDERS) + 3),
    ]
    for i, k in enumerate(ks):
        r = randoms[i]
        cells = [str(found[label][i]) for label in (*ORDERS, RANDOM_ARM)]
        lines.append(f"| {k} | {' | '.join(cells)} | {r.mean:.1f} [{r.low:.0f}, {r.high:.0f}] | {found['best'][i]} |")
    return [*lines, ""]


def split_orders(split: Path) -> dict:
    """The split's ``review_order.json``, made as the reviewed arms make it when they have not run yet."""
    run = split / CONVERGED
    if not (split / ORDER_FILE).is_file() and not is_run_folder(run):
        raise SystemExit(f"{split}: no {ORDER_FILE} and no finished {CONVERGED} run (expected an ablate label split)")
    unlabeled = run_semi_settings(run, None, read_semi_state(run)).unlabeled
    return review_orders(split, run, unlabeled)


def worth_order(worth: dict[str, float]) -> list[str]:
    """The images by ``worth``, as the page sorts them (:func:`page_rank`)."""
    return sorted(worth, key=lambda name: page_rank(False, False, worth[name], name))


def _which(page: list[str], orders: dict) -> str:
    same = [label for label in (UNCALIBRATED, CALIBRATED) if orders[label] == page]
    return same[0] if same else "neither uncalibrated nor calibrated"


def first_difference(first: list[str], second: list[str]) -> int | str:
    """The first position (from 0) where two orders differ, or ``"none"``."""
    return next((i for i, (a, b) in enumerate(zip(first, second, strict=True)) if a != b), "none")


def report(split: Path, ks: list[int], draws: int) -> list[str]:
    orders = split_orders(split)
    errors, worths, calibration = split_errors(split, orders)
    names = orders[PAGE]
    orders = {**orders, **{key: worth_order(w) for key, w in worths.items()}}
    wrong = [errors[n].wrong for n in names]
    correlations = ", ".join(
        f"{key} {spearmanr([w[n] for n in names], wrong).statistic:+.3f}" for key, w in worths.items()
    )
    lines = [
        f"## {split}",
        "",
        f"{len(names)} unlabeled images, {sum(e.wrong > 0 for e in errors.values())} with a wrong box; "
        f"labelled by {orders['teacher']}",
        calibration,
        f"rank correlation of each worth with each image's wrong boxes: {correlations}",
        f"the order the reviewed arms used ({ORDER_FILE}) is the {_which(names, orders)} one",
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
