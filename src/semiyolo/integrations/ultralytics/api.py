"""``train(config, overrides)``: the Python twin of ``semiyolo train CONFIG key=value ...``."""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from ultralytics.cfg import DEFAULT_CFG, DEFAULT_CFG_DICT, get_cfg
from ultralytics.nn.tasks import DetectionModel, guess_model_task, yaml_model_load
from ultralytics.utils import LOGGER
from ultralytics.utils.checks import check_imgsz

from ...config import RunConfig, SemiConfig
from ...config_loading import load_config
from ...data import check_detection_dataset, read_label_file
from ...errors import ConfigError, DataError, RunInterrupted
from ...pseudo import build_filters
from ...semi_groups import SEMI_PATHS
from .continuation import read_continuation_state
from .exact_resume import saved_semi_settings
from .offline import load_detector, offline_train_entries
from .run_summary import SUMMARY_FILE
from .supervised import SupervisedTrainer
from .trainers import trainer_class
from .unlabeled import UnlabeledImages

TOP_LEVEL_ONLY = ("model", "data")


def training_default(key: str) -> Any:
    """Ultralytics' default value of the training argument ``key``."""
    return DEFAULT_CFG_DICT[key]


def training_arguments() -> tuple[str, ...]:
    """Ultralytics' training arguments (its default config's keys): the ``train`` keys a run config accepts,
    flat on the command line too (``epochs=3``)."""
    return tuple(DEFAULT_CFG_DICT)


def check_train_args(train: Mapping[str, Any]) -> None:
    """Reject unknown or ill-typed Ultralytics training arguments before anything starts."""
    for key in train:
        if key in TOP_LEVEL_ONLY:
            raise ConfigError(f"train.{key}: set {key!r} at the top level of the config, not under train")
        if key not in DEFAULT_CFG_DICT:
            close = difflib.get_close_matches(key, DEFAULT_CFG_DICT, n=1)
            hint = f"; did you mean train.{close[0]}?" if close else ""
            raise ConfigError(f"train.{key}: not an Ultralytics training argument{hint}")
    try:
        get_cfg(DEFAULT_CFG, dict(train))
    except (TypeError, ValueError, SyntaxError) as err:
        raise ConfigError(f"train: {err}") from None
    if "imgsz" in train:
        try:
            check_imgsz(train["imgsz"], stride=32)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"train.imgsz: {err}") from None


def check_model(model: str) -> None:
    """A ``.pt`` must exist locally (nothing is downloaded); a ``.yaml`` must exist or be an Ultralytics name."""
    if model.endswith(".pt"):
        if not Path(model).is_file():
            raise ConfigError(
                f"model: {model} not found (semiyolo never downloads weights; give a local .pt or a .yaml)"
            )
        try:
            load_detector(model)
        except DataError as err:
            raise ConfigError(f"model: {str(err).removeprefix('--weights: ')}") from None
    elif model.endswith((".yaml", ".yml")):
        try:
            task = guess_model_task(yaml_model_load(model))
        except FileNotFoundError:
            raise ConfigError(f"model: {model} is neither a file nor an Ultralytics model .yaml") from None
        if task != "detect":
            raise ConfigError(f"model: {model} is a {task} model; semiyolo trains detection models (a Detect head)")
    else:
        raise ConfigError(f"model: expected a .yaml model definition or a .pt checkpoint, got {model!r}")


def head_has_dfl(model: str, nc: int) -> bool:
    """Whether the model's detection head predicts DFL distributions (``reg_max > 1``)."""
    net = load_detector(model) if model.endswith(".pt") else DetectionModel(model, nc=nc, verbose=False)
    return getattr(net.model[-1], "reg_max", 1) > 1


def prepare(
    config: str | Path | Mapping[str, Any] | None, overrides: Sequence[str] | Mapping[str, Any] = ()
) -> RunConfig:
    """Load and check everything a run needs; raises a :class:`~semiyolo.errors.UserInputError` on bad input.
    ``config`` ``None``: every key from ``overrides``, as after ``yolo train``."""
    cfg = load_config(config, overrides, train_keys=training_arguments())
    check_model(cfg.model)
    check_train_args(cfg.train)
    data = check_detection_dataset(cfg.data)
    if data["empty_images"]:
        listed = ", ".join(map(str, data["empty_images"][:5])) + (" ..." if len(data["empty_images"]) > 5 else "")
        LOGGER.warning(f"{cfg.data}: {len(data['empty_images'])} image(s) are empty files (0 bytes), skipped: {listed}")
    check_semi_paths(cfg.semi)
    if cfg.semi.mode == "online":
        build_filters(cfg.semi.filters, num_classes=data["nc"], has_dfl=head_has_dfl(cfg.model, data["nc"]))
        if not cfg.semi.filters:
            LOGGER.warning(
                "semi.filters is empty: every candidate above semi.pseudo_min_score after NMS becomes a pseudo-label"
            )
    if cfg.semi.mode == "offline":
        check_pseudo_labels(data, cfg.semi.pseudo_labels)
    check_resume(cfg)
    return cfg


def check_semi_paths(semi: SemiConfig) -> None:
    """The files and folders ``semi`` names, as far as they can be checked without the dataset: the unlabeled
    images and the reviewed folder of an online run, the pseudo-label folder of an offline one, ``init_state``."""
    if semi.init_state:
        read_continuation_state(semi.init_state)
    if semi.mode == "online":
        if not semi.unlabeled:
            raise ConfigError("semi.unlabeled: online mode needs a folder of unlabeled images")
        UnlabeledImages.from_folder(semi.unlabeled, imgsz=32)
        if semi.reviewed:
            check_reviewed_folder(semi.reviewed)
    if semi.mode == "offline":
        if not semi.pseudo_labels:
            raise ConfigError("semi.pseudo_labels: offline mode needs the folder written by 'semiyolo pseudo-label'")
        if not Path(semi.pseudo_labels).is_dir():
            raise ConfigError(
                f"semi.pseudo_labels: {semi.pseudo_labels} not found (write it with 'semiyolo pseudo-label')"
            )


def check_pseudo_labels(data: dict[str, Any], folder: str) -> None:
    """A finished ``semiyolo pseudo-label`` output, for the dataset's classes, whose label files pass the
    checks that labeled files pass."""
    offline_train_entries(data, folder)
    summary = Path(folder) / "summary.json"
    if not summary.is_file():
        raise ConfigError(
            f"semi.pseudo_labels: {folder} has no summary.json: the pseudo-labelling did not finish; run it again "
            "with --overwrite"
        )
    names = json.loads(summary.read_text()).get("names", {})
    if len(names) != data["nc"]:
        raise ConfigError(f"semi.pseudo_labels: labeled with {len(names)} classes, the dataset has {data['nc']}")
    try:
        for label in sorted((Path(folder) / "labels").glob("*.txt")):
            read_label_file(label, data["nc"])
    except DataError as err:
        raise ConfigError(f"semi.pseudo_labels: {err}") from None


def check_reviewed_folder(folder: str) -> None:
    """``semi.reviewed`` must be a folder: training reads it at each epoch's start, and a path that is not one
    would train without the person's work, silently."""
    path = Path(folder)
    if not path.exists():
        raise ConfigError(
            f"semi.reviewed: {path} does not exist (the folder `semiyolo review` writes, made at its first saved "
            "review; create it empty to start training before then)"
        )
    if not path.is_dir():
        raise ConfigError(f"semi.reviewed: {path} is a file, not a folder (the folder `semiyolo review` writes)")


def check_resume(cfg: RunConfig) -> None:
    """``train.resume`` must name this run's ``last.pt``: Ultralytics, given ``true`` or a missing path, searches
    the working folder for the newest ``last.pt`` and may resume another run. ``true`` with a ``.pt`` model
    means that model."""
    resume = cfg.train.get("resume")
    if not resume:
        return
    if resume is True:
        if not cfg.model.endswith(".pt"):
            raise ConfigError(
                "train.resume: give the path of the run's weights/last.pt (true alone would make "
                "Ultralytics resume the newest run it finds)"
            )
        resume = cfg.train["resume"] = cfg.model
    path = Path(str(resume))
    if not path.is_file() and path.with_name(path.name + ".part").is_file():
        raise ConfigError(
            f"train.resume: {path} not found: the run was killed before its first checkpoint was complete; start "
            "it again without train.resume"
        )
    if not path.is_file():
        raise ConfigError(f"train.resume: {path} not found (expected the run's weights/last.pt)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # torch.load raises many kinds on a file that is not a checkpoint
        raise ConfigError(f"train.resume: {path} is not an Ultralytics checkpoint ({type(err).__name__})") from None
    args = checkpoint.get("train_args") or {}
    if args.get("data") and Path(str(args["data"])).resolve() != Path(cfg.data).resolve():
        raise ConfigError(
            f"train.resume: {path} belongs to a run on {args['data']}, not on {cfg.data}; resume it with its own config"
        )
    check_unfinished(path, checkpoint)
    check_same_semi_settings(path, cfg.semi)


def check_unfinished(path: Path, checkpoint: Mapping[str, Any]) -> None:
    """Ultralytics resumes at the checkpoint's epoch + 1 and asserts that epoch is left to train; a finished run's
    ``last.pt`` has its epoch set to -1 (the optimizer stripped)."""
    epochs = int((checkpoint.get("train_args") or {}).get("epochs") or 0)
    if not epochs:
        raise ConfigError(f"train.resume: {path} holds no training run (expected the run's weights/last.pt)")
    if 0 < checkpoint.get("epoch", -1) + 1 < epochs:
        return
    trained = len((checkpoint.get("train_results") or {}).get("epoch") or []) or epochs
    how = f"all {epochs} epochs" if trained >= epochs else f"after {trained} of its {epochs} epochs (stopped early)"
    best = path.with_name("best.pt")
    raise ConfigError(
        f"train.resume: {path} is from a run that finished {how}; to train longer, start a new run with "
        f"model={best if best.is_file() else path}"
    )


def check_same_semi_settings(path: Path, semi: SemiConfig) -> None:
    """A resume continues the run as it was set up: a ``semi`` setting that differs from the one saved with the
    run's state (:func:`.exact_resume.saved_semi_settings`) is refused, each named with both values."""
    saved = saved_semi_settings(path.parent)
    if saved is None:
        return
    now = semi.model_dump()
    changed = [
        f"semi.{key}: run {saved[key]!r}, now {now[key]!r}"
        for key in now
        if key in saved and not _same_setting(key, saved[key], now[key])
    ]
    if changed:
        raise ConfigError(
            f"train.resume: {path} belongs to a run with other semi settings ({'; '.join(changed)}); resume with "
            "the run's settings, or start a new run to change them"
        )


def _same_setting(key: str, saved: Any, now: Any) -> bool:
    if key in SEMI_PATHS and saved and now:  # a relative path in a config is read relative to its folder
        return Path(saved).resolve() == Path(now).resolve()
    return saved == now


def train(
    config: str | Path | Mapping[str, Any] | None, overrides: Sequence[str] | Mapping[str, Any] = ()
) -> dict[str, Any]:
    """Train as configured; returns the run's summary (final metrics, background false positives) and
    ``save_dir``."""
    cfg = prepare(config, overrides)
    trainer = trainer_class(cfg.semi.mode)(overrides={**cfg.train, "model": cfg.model, "data": cfg.data}, semi=cfg.semi)
    try:
        trainer.train()
    except KeyboardInterrupt:
        raise RunInterrupted(_interrupted_message(trainer)) from None
    finally:
        trainer.run_lock.release()
    summary_path = Path(trainer.save_dir) / SUMMARY_FILE
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    return {**summary, "save_dir": str(trainer.save_dir)}


def _interrupted_message(trainer: SupervisedTrainer) -> str:
    if trainer.last.is_file():
        return f"interrupted; continue with train.resume={trainer.last} (the last finished epoch's checkpoint)"
    return f"interrupted before the first epoch ended; nothing to resume in {trainer.save_dir}"
