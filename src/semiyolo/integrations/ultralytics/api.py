"""``train(config, overrides)``: the Python twin of ``semiyolo train CONFIG key=value ...``."""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ultralytics.cfg import DEFAULT_CFG, DEFAULT_CFG_DICT, get_cfg
from ultralytics.nn.tasks import DetectionModel, yaml_model_load

from ...config import RunConfig, load_config
from ...data import check_detection_dataset
from ...errors import ConfigError, DataError
from ...pseudo import build_filters
from .continuation import read_continuation_state
from .offline import load_detector, offline_train_entries
from .semi_trainer import SemiSupervisedTrainer
from .trainer import SUMMARY_FILE, BackgroundPenaltyTrainer
from .unlabeled import UnlabeledImages

TOP_LEVEL_ONLY = ("model", "data")


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
            yaml_model_load(model)
        except FileNotFoundError:
            raise ConfigError(f"model: {model} is neither a file nor an Ultralytics model .yaml") from None
    else:
        raise ConfigError(f"model: expected a .yaml model definition or a .pt checkpoint, got {model!r}")


def head_has_dfl(model: str, nc: int) -> bool:
    """Whether the model's detection head predicts DFL distributions (``reg_max > 1``)."""
    net = load_detector(model) if model.endswith(".pt") else DetectionModel(model, nc=nc, verbose=False)
    return getattr(net.model[-1], "reg_max", 1) > 1


def prepare(config: str | Path | Mapping[str, Any], overrides: Sequence[str] | Mapping[str, Any] = ()) -> RunConfig:
    """Load and check everything a run needs; raises a :class:`~semiyolo.errors.UserInputError` on bad input."""
    cfg = load_config(config, overrides)
    check_model(cfg.model)
    check_train_args(cfg.train)
    data = check_detection_dataset(cfg.data)
    if cfg.semi.init_state:
        read_continuation_state(cfg.semi.init_state)
    if cfg.semi.mode == "online":
        if not cfg.semi.unlabeled:
            raise ConfigError("semi.unlabeled: online mode needs a folder of unlabeled images")
        UnlabeledImages.from_folder(cfg.semi.unlabeled, imgsz=32)
        build_filters(cfg.semi.filters, num_classes=data["nc"], has_dfl=head_has_dfl(cfg.model, data["nc"]))
    if cfg.semi.mode == "offline":
        if not cfg.semi.pseudo_labels:
            raise ConfigError("semi.pseudo_labels: offline mode needs the folder written by 'semiyolo pseudo-label'")
        offline_train_entries(data, cfg.semi.pseudo_labels)
        names = json.loads((Path(cfg.semi.pseudo_labels) / "summary.json").read_text()).get("names", {})
        if len(names) != data["nc"]:
            raise ConfigError(f"semi.pseudo_labels: labeled with {len(names)} classes, the dataset has {data['nc']}")
    return cfg


def train(config: str | Path | Mapping[str, Any], overrides: Sequence[str] | Mapping[str, Any] = ()) -> dict[str, Any]:
    """Train as configured; returns the run's summary (final metrics, background false positives) and
    ``save_dir``."""
    cfg = prepare(config, overrides)
    trainer_cls = SemiSupervisedTrainer if cfg.semi.mode == "online" else BackgroundPenaltyTrainer
    trainer = trainer_cls(overrides={**cfg.train, "model": cfg.model, "data": cfg.data}, semi=cfg.semi)
    trainer.train()
    summary_path = Path(trainer.save_dir) / SUMMARY_FILE
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    return {**summary, "save_dir": str(trainer.save_dir)}
