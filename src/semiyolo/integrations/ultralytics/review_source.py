"""``semiyolo review RUN``: a training run's pseudo-labels on its unlabeled images, made on demand.

The run folder gives the weights (``weights/last.pt``), the inference size (``args.yaml``'s ``imgsz``) and the
``semi`` settings (``--config``'s, else those saved with the teacher in ``weights/semi_state.pt`` after burn-in,
else ``summary.json``'s once the run has finished). When ``semi_state.pt`` is there its teacher weights and filter
state (DSAT's thresholds) label the images, as the run's teacher would; otherwise ``last.pt`` and the filters as
configured do. Each image is labelled by :class:`~semiyolo.teacher.TeacherPseudoLabeler` (NMS, then the filter
chain) when the page first asks for it, and a background thread labels the rest so that the list can be ordered.
Each filter's verdict is kept: the candidates a filter dropped are shown with its name.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torchvision.ops import box_iou
from ultralytics.utils import LOGGER

from ...config import SemiConfig
from ...config_loading import load_config, read_yaml, validate_config
from ...data import label_path, read_label_file
from ...data.lists import dataset_root, split_images
from ...errors import ConfigError, DataError
from ...pixels import to_unit_range
from ...pseudo import Detections, FilterChain, build_filters, dfl_entropy
from ...review.calibration import ScoreRates
from ...review.doubt import OVERLAP_IOU, ScoredBox
from ...review.sources import ImageSource, Proposal, scan_images
from ...runfiles import last_weights, weights_dir
from ...teacher import TeacherPseudoLabeler
from .offline import _yolo_rows, load_detector
from .online import STATE_FILE
from .run_summary import SUMMARY_FILE
from .unlabeled import UnlabeledImages


def is_run_folder(folder: Path) -> bool:
    """Whether ``folder`` is an Ultralytics run folder with a ``weights/last.pt``."""
    return last_weights(folder).is_file()


def read_semi_state(run: Path) -> dict[str, Any] | None:
    """The online trainer's latest ``weights/semi_state.pt`` (teacher, filters, semi settings), or ``None``."""
    path = weights_dir(run) / STATE_FILE
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # torch.load raises many kinds on a damaged file: label with last.pt instead
        LOGGER.warning(f"{path}: cannot be read ({type(err).__name__}); labelling with last.pt and the filters as set")
        return None


def run_semi_settings(run: Path, config: Path | None, state: dict[str, Any] | None) -> SemiConfig:
    """The run's ``semi`` settings: ``config``'s, else ``state``'s, else ``summary.json``'s.

    Raises:
        ConfigError: none is found (the message says to pass ``--config``), or the found ones are invalid.
    """
    if config is not None:
        return load_config(config).semi
    summary = run / SUMMARY_FILE
    if state is not None and isinstance(state.get("semi"), dict):
        raw, where = state["semi"], str(weights_dir(run) / STATE_FILE)
    elif summary.is_file():
        raw, where = _json_semi(summary), str(summary)
    else:
        raise ConfigError(
            f"SOURCE: {run} has neither weights/{STATE_FILE} (written after burn-in) nor {SUMMARY_FILE} (written at "
            "the end): pass --config with the run's config file, for its semi.unlabeled and semi.filters"
        )
    return validate_config({"data": "", "semi": raw}, source=where).semi


def _json_semi(summary: Path) -> dict[str, Any]:
    try:
        semi = json.loads(summary.read_text()).get("semi")
    except (ValueError, AttributeError):
        raise ConfigError(f"{summary}: not a run summary (JSON object)") from None
    if not isinstance(semi, dict):
        raise ConfigError(f"{summary}: has no 'semi' settings; pass --config with the run's config file")
    return semi


def run_imgsz(run: Path) -> int:
    """The run's training size (``args.yaml``'s ``imgsz``; 640 when absent)."""
    args = read_yaml(run / "args.yaml") if (run / "args.yaml").is_file() else {}
    imgsz = (args or {}).get("imgsz", 640)
    return int(max(imgsz) if isinstance(imgsz, (list, tuple)) else imgsz)


def filter_verdicts(chain: FilterChain, dets: Detections) -> tuple[Detections, list[tuple[Detections, str]]]:
    """``(kept, [(dropped by filter f, f.name), ...])``: the chain applied filter by filter, its counts untouched."""
    dropped = []
    for f in chain:
        keep = f.keep_mask(dets)
        dropped.append((dets.select(~keep), f.name))
        dets = dets.select(keep)
    return dets, dropped


def scored_boxes(
    dets: Detections,
    path: Path,
    imgsz: int,
    dropped_by: str | None = None,
    student_agrees: list[bool] | None = None,
) -> list[ScoredBox]:
    """Detections in the letterboxed frame as boxes normalised to the image (the offline writer's rows, boxes
    not over 1 px dropped), with their score, normalised DFL entropy, NMS spread and, given, whether the run's
    student confirms each."""
    if len(dets) == 0:
        return []
    indexed = Detections(dets.boxes, dets.scores, torch.arange(len(dets)))  # rows then carry their index
    entropy = dfl_entropy(dets.bin_logits).tolist() if dets.bin_logits is not None else None
    spread = dets.cluster_spread.tolist() if dets.cluster_spread is not None else None
    boxes = []
    for index, cx, cy, w, h in _yolo_rows(indexed, path, imgsz)[0]:
        i = int(index)
        facts = {
            "score": round(float(dets.scores[i]), 5),
            "entropy": None if entropy is None else round(entropy[i], 5),
            "spread": None if spread is None else round(spread[i], 5),
        }
        facts["student_agrees"] = None if student_agrees is None else student_agrees[i]
        boxes.append(ScoredBox(int(dets.classes[i]), cx, cy, w, h, **facts, dropped_by=dropped_by))
    return boxes


def _agreement(teacher: Detections, student: Detections) -> tuple[list[bool], int]:
    """``(for each teacher box, whether a student box of its class overlaps it at IoU >= 0.5; the number of
    student boxes no teacher box of their class overlaps so)``."""
    same_class = teacher.classes[:, None] == student.classes[None, :]
    matched = (box_iou(teacher.boxes, student.boxes) >= OVERLAP_IOU) & same_class
    return matched.any(1).tolist(), int((~matched.any(0)).sum())


class RunSource(ImageSource):
    """The unlabeled images of an online run, labelled by its teacher on demand (see the module docstring)."""

    kind = "run"

    def __init__(self, run: Path, semi: SemiConfig, reviewed: Path, state: dict[str, Any] | None = None) -> None:
        if not semi.unlabeled or not Path(semi.unlabeled).is_dir():
            raise DataError(f"semi.unlabeled: {semi.unlabeled!r} is not a folder of images (run {run})")
        root = Path(semi.unlabeled)
        images, refused = scan_images(root, exclude=reviewed)
        if not images:
            raise DataError(f"semi.unlabeled: no images found under {root}")
        self.model = load_detector(last_weights(run))
        super().__init__(root, images, dict(self.model.names), refused=len(refused))
        self.run, self.imgsz = run, run_imgsz(run)
        has_dfl = getattr(self.model.model[-1], "reg_max", 1) > 1
        chain = build_filters(semi.filters, len(self.names), has_dfl, classes_from=str(last_weights(run)))
        self.teacher_note = self._restore_teacher(chain, state)
        # with a teacher apart from the student, last.pt (the student) is loaded again to compare with it
        self.student = load_detector(last_weights(run)) if self.teacher_restored else None
        self.labeler = TeacherPseudoLabeler(
            chain,
            min_score=semi.pseudo_min_score,
            nms_iou=semi.pseudo_nms_iou,
            mirror=semi.teacher_flip,
            scale=semi.teacher_scale,
        )
        self.dataset = UnlabeledImages(list(images.values()), self.imgsz)
        self.positions = {name: i for i, name in enumerate(images)}
        self._model_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.validation, self.uncalibrated_because = validation_images(run)
        self._calibration_lock = threading.Lock()
        self._calibrated = threading.Event()
        if not self.validation:
            self._calibrated.set()

    def calibrate(self) -> None:
        """The order's rates, measured once on the labelled validation images (the background thread does it
        before it labels the unlabeled images, so the page opens at once; :func:`~semiyolo.review.sources.page_order`
        waits for it). A calibration that fails leaves the order uncalibrated, with the reason."""
        with self._calibration_lock:
            if self._calibrated.is_set():
                return
            try:
                self.set_rates(self._measure_rates(self.validation))
            except Exception as err:  # a background thread: said, and the page goes on with the uncalibrated order
                self.uncalibrated_because = f"the calibration failed ({type(err).__name__}: {err})"
                LOGGER.warning(f"review: {self.uncalibrated_because}")
            self._calibrated.set()
        LOGGER.info(f"review: order {self._order()}")

    def _measure_rates(self, images: list[Path]) -> ScoreRates | None:
        """The order's rates (:mod:`semiyolo.review.calibration`) on labelled validation images, an image or label
        that cannot be read left out; ``None`` (and :attr:`uncalibrated_because` says why) when no kept box was
        measured."""
        LOGGER.info(f"review: calibrating the order on {len(images)} labelled validation images of {self.run}")
        dataset = UnlabeledImages(images, self.imgsz, labels_for="the review order's calibration, with its image")

        def measured() -> Iterator[tuple[list[ScoredBox], list[ScoredBox], torch.Tensor]]:
            for i, path in enumerate(images):
                try:
                    image, labels = dataset[i][0], torch.from_numpy(read_label_file(label_path(path)))
                except (DataError, OSError):
                    continue
                proposal = self._propose(image, path)
                if proposal.error is None:
                    yield proposal.boxes, proposal.dropped, labels

        rates = ScoreRates.measure(measured())
        if rates.kept_boxes == 0:
            self.uncalibrated_because = f"no box kept on the {len(images)} validation images ({rates.images} read)"
            return None
        return rates

    def _restore_teacher(self, chain: FilterChain, state: dict[str, Any] | None) -> str:
        """The teacher's weights and the filters' state from ``semi_state.pt`` when they fit; says which."""
        self.teacher_restored = False
        if state is None:
            return "last.pt, filters as configured"
        try:
            teacher = state["mean_teacher"]  # the online trainer's semi_state(): the mean teacher's own state_dict
            self.model.load_state_dict({k: v.float() for k, v in teacher["teacher"].items()})
            chain.load_state_dict(teacher["filters"])
        except (KeyError, RuntimeError, ValueError) as err:
            LOGGER.warning(f"{self.run}/weights/{STATE_FILE}: teacher not restored ({err}); labelling with last.pt")
            return "last.pt, filters as configured"
        self.teacher_restored = True
        return f"the teacher of epoch {int(state.get('epoch', -1)) + 1}, its filter state"

    def load(self, name: str) -> Proposal:
        """Label ``name`` now (the model is shared with the background thread, one forward at a time)."""
        try:
            image = self.dataset[self.positions[name]][0]
        except (DataError, OSError) as err:
            return Proposal(error=str(err))
        return self._propose(image, self.images[name])

    def _propose(self, image: torch.Tensor, path: Path) -> Proposal:
        """The teacher's kept boxes and dropped candidates on one letterboxed ``image`` read from ``path``."""
        try:
            with self._model_lock:
                dets = self.labeler.detect(self.model, to_unit_range(image[None]))[0]
                kept, dropped = filter_verdicts(self.labeler.filters, dets)
                student = self._student_boxes(image)
            agrees, student_only = _agreement(kept, student) if student is not None else (None, 0)
            boxes = scored_boxes(kept, path, self.imgsz, student_agrees=agrees)
            shown = [b for d, f in dropped for b in scored_boxes(d, path, self.imgsz, dropped_by=f)]
        except (DataError, OSError) as err:
            return Proposal(error=str(err))
        return Proposal(boxes=boxes, dropped=shown, student_only=student_only)

    def _student_boxes(self, image) -> Detections | None:
        """The run's student's filtered detections on ``image`` (None without a separate teacher)."""
        if self.student is None:
            return None
        dets = self.labeler.detect(self.student, to_unit_range(image[None]))[0]
        return filter_verdicts(self.labeler.filters, dets)[0]

    def ready(self, name: str) -> Proposal | None:
        """The proposal if already labelled; the first call starts the background labelling."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._label_all, name="review-labeller", daemon=True)
                self._thread.start()
            return self._cache.get(name)

    def _label_all(self) -> None:
        self.calibrate()
        for name in self.images:
            self.proposal(name)

    def order_note(self) -> str:
        if not self._calibrated.is_set():
            return f"expected wrong boxes, calibrating the scores on {len(self.validation)} labelled validation images"
        return super().order_note()

    def pending(self) -> int:
        """Images still to be labelled, all of them while the order is being calibrated (their worths will change,
        so the page keeps asking)."""
        with self._lock:
            return len(self.images) - len(self._cache) if self._calibrated.is_set() else len(self.images)

    def describe(self) -> str:
        return (
            f"run {self.run}: {len(self.images)} unlabeled images in {self.root}, labelled with {self.teacher_note}; "
            f"order {self._order()}"
        )

    def _order(self) -> str:
        if not self._calibrated.is_set():
            return (
                f"by expected wrong boxes, its scores to be calibrated on {len(self.validation)} labelled validation "
                "images first (in the background: the list fills once they are measured)"
            )
        return self.rates.describe() if self.rates else f"scores not calibrated: {self.uncalibrated_because}"


CALIBRATION_IMAGES = 200  # validation images the order is calibrated on, at most (evenly spread)


def validation_images(run: Path) -> tuple[list[Path], str]:
    """``(images, why none)``: up to :data:`CALIBRATION_IMAGES` images of the val split of the dataset the run trained
    on (``args.yaml``'s ``data``; folders and list files, as :func:`~semiyolo.data.lists.split_images`), evenly
    spread. Images that are also train images (the same file, links followed) are left out: the model was fitted on
    them, so their rates would flatter its scores. None, and why, where the dataset or its val split cannot be read,
    or no val image left has a label file (an image without one has no objects, as in Ultralytics)."""
    raw = read_yaml(run / "args.yaml") if (run / "args.yaml").is_file() else None
    data_yaml = raw.get("data") if isinstance(raw, dict) else None
    if not isinstance(data_yaml, str) or not Path(data_yaml).is_file():
        return [], f"its args.yaml names no dataset file found from here ({data_yaml!r})"
    try:
        data = read_yaml(data_yaml)
        split = {
            key: split_images(data, key, dataset_root(data, data_yaml), data_yaml) if data.get(key) else []
            for key in ("train", "val")
        }
    except (AttributeError, ConfigError, DataError) as err:
        return [], f"its dataset {data_yaml} cannot be read ({err})"
    trained = {image.resolve() for image in split["train"]}
    images = [image for image in split["val"] if image.resolve() not in trained]
    if not any(label_path(image).is_file() for image in images):
        shared = len(split["val"]) - len(images)
        return [], f"no val image of {data_yaml} has a label file" + (
            f" but the {shared} it shares with train" if shared else ""
        )
    chosen = torch.linspace(0, len(images) - 1, min(len(images), CALIBRATION_IMAGES)).round().long().unique()
    return [images[i] for i in chosen.tolist()], ""
