"""What the review page's order finds before any training: the wrong boxes in the images it lists first, against
random orders and the best possible order, on a controlled-protocol label split whose unlabeled images carry hidden
labels (:mod:`semiyolo.experiments.review_yield`). Nothing trains; each split's images are labelled once by its
converged run, as ``semiyolo review`` and the reviewed arms label them.

    python benchmarks/review_yield.py /tmp/abl/c_shapes/controls/split0 /tmp/abl/c_shapes/controls/split1 \
        --k 5 10 20 --draws 2000

Each SPLIT is a label split's folder of ``semiyolo ablate`` with its finished ``supervised_converged/`` run; the orders
are the reviewed arms' ``review_order.json``, made here as they make it when they have not run yet. Prints per split:
the errors of the whole unlabeled set, the rank correlation of each worth with each image's wrong boxes, and per
error kind a table of the errors the first ``k`` images hold in the page's order, the spread order, two orders measured
here and not shipped (the page's worth plus each possible miss's score; the calibrated worth of
:mod:`semiyolo.experiments.review_yield`, its rates measured on the run's validation images), the trained random
arm's order (seed 0), 2000 random orders (mean and the central 90 %) and the best order.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")  # before Ultralytics is imported

import torch

from semiyolo.config import read_yaml
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
    CANDIDATE_EDGES,
    ERROR_KINDS,
    KEPT_EDGES,
    ImageErrors,
    best_order,
    binned_rates,
    calibrated_worth,
    image_errors,
    order_yields,
    proposal_hits,
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
from semiyolo.review.doubt import ScoredBox, image_worth, missed_candidates
from semiyolo.review.sources import Proposal, data_yaml_split, page_rank


def box_rows(boxes: list[ScoredBox]) -> torch.Tensor:
    """``Tensor[N, 6]``: ``cx, cy, w, h, score, class`` of ``boxes``."""
    rows = [[b.cx, b.cy, b.w, b.h, b.score or 0.0, b.cls] for b in boxes]
    return torch.tensor(rows, dtype=torch.float32).reshape(-1, 6)


def possible_misses(proposal: Proposal) -> list[ScoredBox]:
    """The candidates the filters dropped that no kept box overlaps (:func:`missed_candidates`)."""
    flags = missed_candidates(proposal.boxes, proposal.dropped)
    return [box for box, flagged in zip(proposal.dropped, flags, strict=True) if flagged]


def proposals(run: Path, folder: Path, exclude: Path) -> dict[str, Proposal]:
    """The run's proposal for every image of ``folder`` (its converged weights, as the page labels them)."""
    state = read_semi_state(run)
    semi = run_semi_settings(run, None, state).model_copy(update={"unlabeled": str(folder)})
    source = RunSource(run, semi, exclude, state)
    found = {name: source.proposal(name) for name in source.images}
    for name, proposal in found.items():
        if proposal.error:
            raise SystemExit(f"{folder / name}: {proposal.error}")
    return found


def labels_of(folder: Path, name: str) -> torch.Tensor:
    return torch.from_numpy(read_label_file(label_path(folder / name)))


def validation_rates(run: Path) -> tuple[torch.Tensor, torch.Tensor, str]:
    """The calibrated worth's rates (:func:`binned_rates`), measured on the run's validation images, and a line
    saying how many boxes and candidates each rests on."""
    val, _ = data_yaml_split(Path(read_yaml(run / "args.yaml")["data"]), "val")
    kept, candidates = [], []
    for name, proposal in proposals(run, val, run / "no_exclusions").items():
        rows, misses = box_rows(proposal.boxes), box_rows(possible_misses(proposal))
        hits = proposal_hits(rows, misses, labels_of(val, name))
        kept.append(torch.cat([rows[:, 4:5], hits[0][:, None].float()], 1))
        candidates.append(torch.cat([misses[:, 4:5], hits[1][:, None].float()], 1))
    kept_all, candidates_all = torch.cat(kept), torch.cat(candidates)
    kept_rates = binned_rates(kept_all[:, 0], kept_all[:, 1] > 0, KEPT_EDGES)
    candidate_rates = binned_rates(candidates_all[:, 0], candidates_all[:, 1] > 0, CANDIDATE_EDGES)
    said = (
        f"calibrated on {val}: {len(kept_all)} kept boxes, share matching a label by score bin {_cells(kept_rates)}; "
        f"{len(candidates_all)} possible misses, share matching a label {_cells(candidate_rates)}"
    )
    return kept_rates, candidate_rates, said


def _cells(rates: torch.Tensor) -> str:
    return "[" + ", ".join(f"{r:.2f}" for r in rates.tolist()) + "]"


def split_errors(split: Path, orders: dict) -> tuple[dict[str, ImageErrors], dict[str, dict[str, float]], str]:
    """Each unlabeled image's errors (the converged run's proposal against the image's hidden labels); each image's
    worth by the two rules measured beside the page's (the page's worth plus each possible miss's score, and
    :func:`calibrated_worth`); and the calibration's line."""
    run, root = split / CONVERGED, Path(orders["unlabeled"])
    kept_rates, candidate_rates, said = validation_rates(run)
    errors, worths = {}, {WITH_MISSES: {}, CALIBRATED: {}}
    for name, proposal in proposals(run, root, split / REVIEWS_FOLDER).items():
        rows, misses = box_rows(proposal.boxes), box_rows(possible_misses(proposal))
        errors[name] = image_errors(rows[:, :4], rows[:, 4], rows[:, 5], labels_of(root, name))
        worths[WITH_MISSES][name] = image_worth(proposal.boxes, proposal.student_only) + float(misses[:, 4].sum())
        worths[CALIBRATED][name] = calibrated_worth(rows[:, 4], misses[:, 4], kept_rates, candidate_rates)
    return errors, worths, said


def kind_table(errors: dict[str, ImageErrors], orders: dict, ks: list[int], kind: str, draws: int) -> list[str]:
    """A markdown table of ``kind`` errors found in the first ``k`` images of each order."""
    total = sum(e.count(kind) for e in errors.values())
    named = {
        "page": orders[PAGE],
        "spread": orders[SPREAD],
        WITH_MISSES: orders[WITH_MISSES],
        CALIBRATED: orders[CALIBRATED],
        "random arm (seed 0)": chosen_images(orders, RANDOM, max(ks), 0),
        "best": best_order(errors, kind),
    }
    found = {label: order_yields(errors, order, ks, kind) for label, order in named.items()}
    randoms = random_yields(errors, ks, kind, draws=draws)
    lines = [
        f"{kind} boxes (the set holds {total}):",
        "",
        f"| k | page | spread | {WITH_MISSES} | {CALIBRATED} | random arm (seed 0) | random, mean [90 %] | best |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for i, k in enumerate(ks):
        r = randoms[i]
        cells = [str(found[label][i]) for label in ("page", "spread", WITH_MISSES, CALIBRATED, "random arm (seed 0)")]
        lines.append(f"| {k} | {' | '.join(cells)} | {r.mean:.1f} [{r.low:.0f}, {r.high:.0f}] | {found['best'][i]} |")
    return [*lines, ""]


WITH_MISSES = "page + misses"  # the page's worth plus each possible miss's score (not shipped)
CALIBRATED = "calibrated"  # the expected spurious and missed boxes, scores read as validation rates (not shipped)


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


def first_difference(first: list[str], second: list[str]) -> int | str:
    """The first position (from 0) where two orders differ, or ``"none"``."""
    return next((i for i, (a, b) in enumerate(zip(first, second, strict=True)) if a != b), "none")


def report(split: Path, ks: list[int], draws: int) -> list[str]:
    orders = split_orders(split)
    errors, worths, calibration = split_errors(split, orders)
    names = orders[PAGE]
    worths = {PAGE: {name: float(orders["worth"].get(name) or 0.0) for name in names}, **worths}
    orders = {**orders, **{key: worth_order(w) for key, w in worths.items() if key != PAGE}}
    wrong = [errors[n].wrong for n in names]
    correlations = ", ".join(
        f"{key} {rank_correlation([w[n] for n in names], wrong):+.3f}" for key, w in worths.items()
    )
    lines = [
        f"## {split}",
        "",
        f"{len(names)} unlabeled images, {sum(e.wrong > 0 for e in errors.values())} with a wrong box; "
        f"labelled by {orders['teacher']}",
        calibration,
        f"rank correlation of each worth with each image's wrong boxes: {correlations}",
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
