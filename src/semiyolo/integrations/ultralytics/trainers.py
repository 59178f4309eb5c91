"""Choosing a trainer: by ``semi.mode``, and for ``YOLO(...).train(trainer=...)``."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from ...config import SemiConfig
from ...config_loading import absolute_semi_paths, validate_config
from ...errors import ConfigError, DataError
from .online import OnlineTrainer
from .supervised import SupervisedTrainer


def trainer_class(mode: str) -> type[SupervisedTrainer]:
    """The trainer of a ``semi.mode``: ``online`` trains teacher-student, ``supervised`` and ``offline`` (whose
    pseudo-labels are files on disk) train on labeled images."""
    return OnlineTrainer if mode == "online" else SupervisedTrainer


def semi_trainer(semi: SemiConfig | Mapping[str, Any] | None = None, **settings: Any):
    """A trainer for Ultralytics' ``Model.train(trainer=...)``, with the ``semi`` settings bound to it::

        from ultralytics import YOLO
        from semiyolo.integrations.ultralytics import semi_trainer

        YOLO("yolo11n.yaml").train(
            data="labeled/data.yaml", epochs=60,
            trainer=semi_trainer(mode="online", unlabeled="unlabeled/images", lambda_bg=1.0),
        )

    ``semi`` (a :class:`~semiyolo.config.SemiConfig` or the mapping of a config's ``semi:`` block) and keyword
    ``settings`` (which win) are validated now: a bad key, or a path that is not what it should be, raises
    :class:`~semiyolo.errors.ConfigError` before anything trains. Relative paths are made absolute (from the
    working folder), so that the run's stored settings work from any folder. Returns a callable that Ultralytics
    calls as ``trainer(overrides=..., _callbacks=...)``.
    """
    if not (semi is None or isinstance(semi, (SemiConfig, Mapping))):
        raise ConfigError(
            "semi_trainer: semi must be a SemiConfig or a mapping of semi settings (a config's semi: block), got a "
            f"{type(semi).__name__}; or give the settings as keywords, semi_trainer(mode='online', ...)"
        )
    base = semi.model_dump() if isinstance(semi, SemiConfig) else dict(semi or {})
    config = validate_config({"data": "", "semi": {**base, **settings}}, source="semi_trainer").semi  # key paths
    absolute_semi_paths(config)
    from .api import check_semi_paths  # api imports this module

    try:
        check_semi_paths(config)
    except DataError as err:
        raise ConfigError(str(err)) from None
    return partial(trainer_class(config.mode), semi=config)
