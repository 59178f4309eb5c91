"""What ``semiyolo review`` shows: the images of a folder by name, and the boxes proposed for each.

An image's **name** is its path relative to the image folder, with ``/``. The server knows every name it may
serve from a scan at start-up; a request for any other name is refused (:func:`check_name` for a malformed one).
Links are followed only to image files (``semiyolo split`` and ``semiyolo pseudo-label`` write folders of links to
the original images); a folder link that leaves the image folder is not.

Two sources live here (a third, labelling a run's unlabeled images with its checkpoint, needs Ultralytics and lives
in :mod:`semiyolo.integrations.ultralytics.review_source`):

- a YOLO dataset split: ``SOURCE/images/**`` (or ``SOURCE`` itself) with label files by Ultralytics' rule; a
  ``data.yaml`` names one by its split's folder (:func:`data_yaml_split`);
- a ``semiyolo pseudo-label`` output: ``images/``, ``labels/``, ``summary.json`` (class names) and
  ``manifest.jsonl`` (the kept boxes' scores per image, matched to the label rows when their counts agree).
"""

from __future__ import annotations

import json
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config_loading import read_yaml
from ..data import IMAGE_SUFFIXES, label_path, list_images, read_label_file
from ..data.lists import dataset_root, split_entries
from ..errors import DataError
from .calibration import ScoreRates
from .doubt import ScoredBox, image_worth

MAX_NAME_LENGTH = 1024


class UnsafeName(ValueError):
    """An image name that cannot name a file inside the served folder (absolute, ``..``, ...)."""


@dataclass
class Proposal:
    """The boxes a source proposes for one image: ``boxes`` (written when the image is accepted as is),
    ``dropped`` (candidates the filters dropped, shown only), ``error`` (why no boxes could be read) and ``note``."""

    boxes: list[ScoredBox] = field(default_factory=list)
    dropped: list[ScoredBox] = field(default_factory=list)
    error: str | None = None
    note: str | None = None
    worth: float | None = None  # set by ImageSource when it keeps the proposal
    student_only: int = 0  # boxes a run's student finds where its teacher has none


def check_name(name: str) -> str:
    """``name`` if it is a relative path with ``/`` and no ``.``, ``..`` or empty part; else :class:`UnsafeName`."""
    if not name or len(name) > MAX_NAME_LENGTH:
        raise UnsafeName(f"image name must have 1 to {MAX_NAME_LENGTH} characters, got {len(name)}")
    if "\x00" in name or "\\" in name:
        raise UnsafeName(f"image name {name!r} holds a NUL or a backslash")
    if name.startswith("/"):
        raise UnsafeName(f"image name {name!r} is absolute; names are relative to the image folder")
    if any(part in ("", ".", "..") for part in name.split("/")):
        raise UnsafeName(f"image name {name!r} has an empty, '.' or '..' part")
    return name


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def scan_images(root: Path, exclude: Path | None = None) -> tuple[dict[str, Path], list[Path]]:
    """``(images by name, refused)``: the image files under ``root`` (sorted by name) and those left out because a
    folder link leads outside ``root`` or a file link leads to something that is not an image. Files under
    ``exclude`` (the reviewed folder) are skipped silently."""
    root_real = root.resolve()
    skip = exclude.resolve() if exclude is not None else None
    images: dict[str, Path] = {}
    refused: list[Path] = []
    for path in list_images(root):
        folder = path.parent.resolve()
        if skip is not None and _inside(folder, skip):
            continue
        if not _inside(folder, root_real) or path.resolve().suffix.lower() not in IMAGE_SUFFIXES:
            refused.append(path)
            continue
        images[path.relative_to(root).as_posix()] = path
    return images, refused


def as_names(raw: Any, where: str) -> dict[int, str]:
    """Class names from a list or a mapping of ids ``0..n-1`` (keys may be strings, as in JSON)."""
    if isinstance(raw, list):
        raw = dict(enumerate(raw))
    if not isinstance(raw, dict) or not raw:
        raise DataError(f"{where}: names must be a non-empty list or mapping of class names, got {raw!r}")
    try:
        names = {int(k): str(v) for k, v in raw.items()}
    except (TypeError, ValueError):
        raise DataError(f"{where}: class ids must be integers, got {sorted(map(str, raw))}") from None
    if sorted(names) != list(range(len(names))):
        raise DataError(f"{where}: class ids must be 0 to {len(names) - 1}, got {sorted(names)}")
    return names


def read_names(data_yaml: str | Path, key: str = "--names") -> dict[int, str]:
    """The ``names`` of a dataset YAML (``--names``, or the ``key`` errors name)."""
    data = read_yaml(data_yaml)
    if not isinstance(data, dict) or "names" not in data:
        raise DataError(f"{key}: {data_yaml} has no 'names' key (expected a data.yaml)")
    return as_names(data["names"], f"{key}: {data_yaml}")


def data_yaml_split(data_yaml: Path, split: str) -> tuple[Path, dict[int, str]]:
    """``(image folder, class names)`` of ``split`` in a dataset's ``data_yaml`` (its entries resolved as
    :func:`semiyolo.data.lists.dataset_root` does).

    Raises:
        ConfigError, DataError: naming the file and the key, for a missing file or split, no ``names``, or a split
        that is not one image folder (several entries, or a list file).
    """
    data = read_yaml(data_yaml)
    if not isinstance(data, dict):
        raise DataError(f"{data_yaml}: expected a dataset mapping with train, val and names")
    if not data.get(split):
        splits = ", ".join(key for key in ("train", "val", "test") if data.get(key)) or "none"
        raise DataError(f"{data_yaml}: no {split!r} split (it has {splits})")
    if "names" not in data:
        raise DataError(f"{data_yaml}: no 'names' key (expected the class names)")
    names = as_names(data["names"], str(data_yaml))
    entries = split_entries(data, dataset_root(data, data_yaml), split)
    if len(entries) != 1 or not entries[0].is_dir():
        shown = ", ".join(str(entry) for entry in entries)
        raise DataError(
            f"{data_yaml}: {split}: {shown}: review takes one image folder; review each folder of a list with "
            f"'semiyolo review FOLDER --names {data_yaml}'"
        )
    return entries[0], names


WORTH_DECIMALS = 4  # the page shows, and so orders by, each image's worth to this many decimals


def page_rank(reviewed: bool, pending: bool, worth: float | None, name: str) -> tuple[bool, bool, float, str]:
    """The review page's sort key of an image: unreviewed first, then those already labelled before those still
    being labelled, then the most worth (:func:`~.doubt.image_worth`, as shown) first, then by name."""
    return reviewed, pending, -round(worth or 0.0, WORTH_DECIMALS), name


def page_order(source: ImageSource) -> list[str]:
    """The names of ``source``'s images in the order the page lists them before anyone reviews: each proposal
    computed now (a run's source labels every image first)."""
    source.calibrate()
    worth = {name: getattr(source.proposal(name), "worth", None) for name in source.images}
    return sorted(source.images, key=lambda name: page_rank(False, worth[name] is None, worth[name], name))


class ImageSource(ABC):
    """Images by name and their proposed boxes. ``kind`` names the source; ``names`` are the class names.

    Subclasses implement :meth:`load`; :meth:`proposal` caches what it returns per image."""

    kind = "dataset"

    def __init__(self, root: Path, images: dict[str, Path], names: dict[int, str], refused: int = 0) -> None:
        self.root, self.images, self.names, self.refused = root, images, names, refused
        self.rates: ScoreRates | None = None  # set by a source that measured its scores' rates (.calibration)
        self._cache: dict[str, Proposal] = {}
        self._lock = threading.Lock()

    @abstractmethod
    def load(self, name: str) -> Proposal | None:
        """The proposal for ``name``, or ``None`` while it is not known yet (a run still labelling)."""

    def proposal(self, name: str) -> Proposal | None:
        """The proposal for ``name``, loaded once (``None`` while not known yet)."""
        with self._lock:
            cached = self._cache.get(name)
        if cached is not None:
            return cached
        loaded = self.load(name)
        return None if loaded is None else self.remember(name, loaded)

    def remember(self, name: str, proposal: Proposal) -> Proposal:
        """Keep ``proposal`` for ``name``, its worth computed (:meth:`score`)."""
        with self._lock:  # with the rates of now: new rates score every kept proposal again under this lock
            self._cache[name] = self.score(proposal)
        return proposal

    def score(self, proposal: Proposal) -> Proposal:
        """``proposal`` with its worth: :meth:`~.calibration.ScoreRates.worth` where the source measured its rates,
        else :func:`~.doubt.image_worth`."""
        if self.rates is not None:
            proposal.worth = self.rates.worth(proposal.boxes, proposal.dropped, proposal.student_only)
        else:
            proposal.worth = image_worth(proposal.boxes, proposal.student_only)
        return proposal

    def set_rates(self, rates: ScoreRates | None) -> None:
        """Order by ``rates`` from now on, the proposals already kept scored again."""
        with self._lock:
            self.rates = rates
            for proposal in self._cache.values():
                self.score(proposal)

    def calibrate(self) -> None:
        """Measure what the order needs before it is final; returns once it is (a run's source measures its rates on
        labelled validation images; nothing to measure here)."""
        return None

    def order_note(self) -> str:
        """How the list is ordered, in a few words (``GET /api/info``'s ``order``, the page's source-line tooltip)."""
        if self.rates is None:
            return "expected wrong boxes, scores as they are"
        return f"expected wrong boxes, scores calibrated on {self.rates.images} labelled validation images"

    def ready(self, name: str) -> Proposal | None:
        """The proposal if it can be had without waiting (the list asks this of every image)."""
        return self.proposal(name)

    def pending(self) -> int:
        """Images whose proposal is still being computed."""
        return 0

    def describe(self) -> str:
        return f"{self.kind} {self.root} ({len(self.images)} images)"


class LabelFolderSource(ImageSource):
    """A YOLO dataset split, or a pseudo-label output (``scores`` by image name, from its manifest)."""

    def __init__(
        self,
        root: Path,
        images: dict[str, Path],
        names: dict[int, str],
        scores: dict[str, list[float]] | None = None,
        kind: str = "dataset",
        refused: int = 0,
    ) -> None:
        super().__init__(root, images, names, refused)
        self.scores, self.kind = scores or {}, kind

    def load(self, name: str) -> Proposal:
        label = label_path(self.images[name])
        try:
            rows = read_label_file(label, len(self.names))
        except DataError as err:
            return Proposal(error=str(err))
        scores = self.scores.get(name)
        note = None
        if scores is not None and len(scores) != len(rows):
            note = f"{len(scores)} scores in manifest.jsonl for {len(rows)} label rows: scores not shown"
            scores = None
        boxes = [
            ScoredBox(int(c), float(cx), float(cy), float(w), float(h), score=None if scores is None else scores[i])
            for i, (c, cx, cy, w, h) in enumerate(rows.tolist())
        ]
        return Proposal(boxes=boxes, note=note)


def manifest_scores(folder: Path, images: dict[str, Path]) -> dict[str, list[float]]:
    """Scores per image name from a pseudo-label output's ``manifest.jsonl``: an entry's ``name`` (its file under
    ``images/``), or for an entry without one (an older output) the link under ``images/`` that resolves to its
    ``image``."""
    path = folder / "manifest.jsonl"
    if not path.is_file():
        return {}
    by_target = {image.resolve(): name for name, image in images.items()}
    scores: dict[str, list[float]] = {}
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        try:
            entry = json.loads(line)
            source, values = Path(entry["image"]), [float(s) for s in entry["scores"]]
        except (ValueError, KeyError, TypeError):
            raise DataError(f"{path}:{number}: not a manifest entry with 'image' and 'scores'") from None
        name = entry.get("name") if entry.get("name") in images else by_target.get(source.resolve())
        if name is not None:
            scores[name] = values
    return scores


def infer_names(folder_source: LabelFolderSource) -> dict[int, str]:
    """Names ``"0"`` to ``"k"`` for a folder without class names: ``k`` the largest class in its label files."""
    largest = 0
    for image in folder_source.images.values():
        try:
            rows = read_label_file(label_path(image))
        except DataError:
            continue  # shown as that image's error when it is opened
        if len(rows):
            largest = max(largest, int(rows[:, 0].max()))
    return {c: str(c) for c in range(largest + 1)}


def open_folder_source(source: Path, reviewed: Path, names: dict[int, str] | None = None) -> LabelFolderSource:
    """The source for a dataset split or a pseudo-label output folder. Class names: ``names``, else the folder's
    ``summary.json`` or ``data.yaml``, else ``"0"`` to the largest class in its label files.

    Raises:
        DataError: ``source`` is not a folder or holds no image, or its summary or manifest is malformed.
    """
    if not source.is_dir():
        raise DataError(f"SOURCE: {source} is not a folder")
    root = source / "images" if (source / "images").is_dir() else source
    images, refused = scan_images(root, exclude=reviewed)
    if not images:
        raise DataError(f"SOURCE: no images found under {root}")
    pseudo = (source / "manifest.jsonl").is_file() or (source / "summary.json").is_file()
    scores = manifest_scores(source, images) if pseudo else {}
    if names is None and (source / "summary.json").is_file():
        summary = _read_json(source / "summary.json")
        names = as_names(summary["names"], f"{source / 'summary.json'}") if "names" in summary else None
    if names is None and (source / "data.yaml").is_file():  # a dataset folder names its classes there
        names = read_names(source / "data.yaml", key="SOURCE")
    kind = "pseudo-label" if pseudo else "dataset"
    folder = LabelFolderSource(root, images, names or {0: "0"}, scores=scores, kind=kind, refused=len(refused))
    if names is None:
        folder.names = infer_names(folder)
    return folder


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except ValueError as err:
        raise DataError(f"{path}: not JSON ({err})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object")
    return data
