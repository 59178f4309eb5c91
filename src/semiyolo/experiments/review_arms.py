"""What to label next, measured: the images of the reviewed arms (:data:`~.arms.REVIEWED`).

A simulated reviewer corrects ``k`` unlabeled images, perfectly: an image's corrected labels are its hidden labels
(none: "no objects"). They go into a reviewed folder laid out as ``semiyolo review`` writes one (``images/`` links,
``labels/``; :mod:`semiyolo.review.store`), which the arm's online run reads as ``semi.reviewed``: the images join
the labeled ones and leave the unlabeled stream
(:class:`~semiyolo.integrations.ultralytics.online_data.ReviewedImages`).

The ``k`` images are the first ``k`` of an order (:data:`~.arms.REVIEW_ORDERS`), so a larger ``k`` adds to a
smaller one's:

- ``page``: the review page's order (:func:`~semiyolo.review.sources.page_order`), each unlabeled image scored by
  the converged run's final weights as ``semiyolo review <converged run>`` scores it;
- ``random``: the unlabeled images shuffled with the arm's seed;
- ``spread``: the page's order with near-duplicates counted once (:func:`~semiyolo.review.spread.spread_order`).

The page and spread orders are made once per label split (``review_order.json``), shared by the seeds; another
process making them is waited for.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import torch

from ..data import label_path, link, write_atomically
from ..errors import ConfigError, DataError
from ..integrations.ultralytics.review_source import RunSource, read_semi_state, run_semi_settings
from ..review.sources import page_order
from ..review.spread import THUMBNAIL_SIDE, near_duplicate_distance, spread_order, thumbnail
from ..runfiles import RunLock
from .arms import REVIEW_ORDERS
from .protocol import Arm
from .runs import claim

PAGE, RANDOM, SPREAD = REVIEW_ORDERS
ORDER_FILE = "review_order.json"  # the page and spread orders of one label split's unlabeled images
REVIEWS_FOLDER = "simulated_reviews"  # under the split's folder: one reviewed folder per arm, by its run name
CHOSEN_FILE = "chosen.json"  # in a reviewed folder, written last: the names of its images, in their order


def review_orders(out: Path, converged_dir: Path, unlabeled: str) -> dict[str, Any]:
    """The unlabeled folder's images in the page's and the spread order (``review_order.json`` in ``out``, made
    once): ``{"unlabeled", "teacher", "page", "spread", "worth", "min_distance"}``, names relative to the folder."""
    path = out / ORDER_FILE
    lock = claim(RunLock(out, f".{ORDER_FILE}.lock"), ORDER_FILE, wait=True, busy="is ordering the unlabeled images")
    try:
        found = json.loads(path.read_text()) if path.is_file() and path.stat().st_size else None
        if found is None or found.get("unlabeled") != str(Path(unlabeled).resolve()):
            found = scored_orders(converged_dir, exclude=out / REVIEWS_FOLDER)
            write_atomically(path, lambda part: part.write_text(json.dumps(found, indent=1)))
        return found
    finally:
        lock.release()


SPREAD_LIMIT = 1000  # the spread order looks this far (more than any --review-k); the page's order follows


def scored_orders(run: Path, exclude: Path) -> dict[str, Any]:
    """The page's and the spread order of ``run``'s unlabeled images, scored by its final weights as the review
    page scores them (``exclude``: a folder of reviewed images to leave out)."""
    state = read_semi_state(run)
    source = RunSource(run, run_semi_settings(run, None, state), exclude, state)
    page = page_order(source)
    features = torch.stack([_thumbnail(source, name) for name in page])
    min_distance = near_duplicate_distance(features)
    return {
        "unlabeled": str(source.root.resolve()),
        "teacher": source.describe(),
        PAGE: page,
        SPREAD: [page[i] for i in spread_order(features, min_distance, limit=SPREAD_LIMIT)],
        "worth": {name: source.proposal(name).worth for name in page},
        "min_distance": min_distance,
    }


def _thumbnail(source: RunSource, name: str) -> torch.Tensor:
    """``Tensor[3 * 16 * 16]``: the image's letterboxed pixels as :func:`~semiyolo.review.spread.thumbnail`;
    zeros for an image that cannot be read (the page shows its error)."""
    try:
        return thumbnail(source.dataset[source.positions[name]][0])
    except (DataError, OSError):
        return torch.zeros(3 * THUMBNAIL_SIDE * THUMBNAIL_SIDE)


def chosen_images(orders: dict[str, Any], order: str, k: int, seed: int) -> list[str]:
    """The first ``k`` names of ``order``: the page's, the spread one, or (``random``) every name shuffled with
    ``seed``."""
    names = list(orders[PAGE])
    if k > len(names):
        raise ConfigError(f"--review-k {k}: the unlabeled folder {orders['unlabeled']} has only {len(names)} images")
    if order == RANDOM:
        random.Random(seed).shuffle(names)
        return names[:k]
    return list(orders[order][:k])


def reviewed_folder(out: Path, converged_dir: Path, unlabeled: str, arm: Arm) -> Path:
    """:func:`arm_folder` with ``arm``'s ``k`` images and their hidden labels; made again unless its
    ``chosen.json`` names the same images (:func:`write_reviewed`: another process writing it is waited for)."""
    k, order = arm.review
    orders = review_orders(out, converged_dir, unlabeled)
    names = chosen_images(orders, order, k, arm.seed)
    folder = arm_folder(out, arm)
    write_reviewed(folder, names, unlabeled)
    return folder


def write_reviewed(folder: Path, names: list[str], unlabeled: str | Path) -> None:
    """``folder`` with the images ``names`` of ``unlabeled`` (links) and their hidden labels, ``chosen.json`` last;
    left as it is when it holds them already. Another process writing it is waited for (the lock
    ``.<folder name>.lock`` beside it), so two processes never write one folder at once."""
    lock = claim(RunLock(folder.parent, f".{folder.name}.lock"), str(folder), wait=True, busy="is writing it")
    try:
        _write_reviewed(folder, names, Path(unlabeled))
    finally:
        lock.release()


def _write_reviewed(folder: Path, names: list[str], unlabeled: Path) -> None:
    if reviewed_names(folder) == names:
        return
    if folder.exists():
        shutil.rmtree(folder)
    for name in names:
        image = unlabeled / name
        hidden = label_path(image)
        text = hidden.read_text() if hidden.is_file() else ""  # no label file: the image has no objects
        link(image, folder / "images" / name)
        write_atomically(label_path(folder / "images" / name), lambda part, text=text: part.write_text(text))
    write_atomically(folder / CHOSEN_FILE, lambda part: part.write_text(json.dumps(names)))


def arm_folder(out: Path, arm: Arm) -> Path:
    """The reviewed folder of ``arm``: ``out/simulated_reviews/<run name>``."""
    return out / REVIEWS_FOLDER / arm.name


def reviewed_names(folder: Path) -> list[str] | None:
    """The names of a reviewed folder's images, in their order (its ``chosen.json``), or ``None`` if unfinished."""
    chosen = folder / CHOSEN_FILE
    return json.loads(chosen.read_text()) if chosen.is_file() and chosen.stat().st_size else None


def review_facts(arm: Arm, out: Path) -> dict[str, Any]:
    """What a reviewed arm's row adds: ``review_k``, ``review_order`` and ``reviewed_images`` (the names in its
    reviewed folder under ``out``)."""
    k, order = arm.review
    return {"review_k": k, "review_order": order, "reviewed_images": reviewed_names(arm_folder(out, arm))}
