"""Reading a run configuration: a YAML file (or a mapping, or ``key=value`` arguments alone), its overrides
applied, validated against :mod:`.config`'s schema, and every problem worded to name the key, what was expected
and the value given (with a "did you mean" for a mistyped key)."""

from __future__ import annotations

import difflib
import os
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from .config import SEMI_GROUPS_ERROR, FilterSpec, RunConfig, SemiConfig
from .errors import ConfigError
from .pseudo import build_filters
from .semi_groups import SEMI_GROUPS, SEMI_PATHS, flat_dotted_keys, flatten_groups


def _describe(error: Mapping[str, Any], train_keys: Collection[str] = ()) -> str:
    where = ".".join(str(p) for p in error["loc"]) or "(top level)"
    if error["type"] == "extra_forbidden":
        parent = error["loc"][:-1]
        known = _known_keys(parent)
        if not parent:
            return f"{where}: {_top_level_hint(str(error['loc'][-1]), train_keys)} (known: {', '.join(known)})"
        close = difflib.get_close_matches(str(error["loc"][-1]), known, n=1)
        hint = f"; did you mean {'.'.join([*map(str, parent), close[0]])!r}?" if close else ""
        return f"{where}: unknown key{hint} (known: {', '.join(known)})"
    if error["type"] == "missing":
        return f"{where}: required key is missing"
    if error["type"] == SEMI_GROUPS_ERROR:
        return error["msg"]  # names the keys in full
    return f"{where}: {error['msg']} (got {error.get('input')!r})"


def _top_level_hint(key: str, train_keys: Collection[str]) -> str:
    """What an unknown top-level key is: Ultralytics' flat keys (``epochs``) and the semi keys belong in their
    blocks; ``train_keys`` are Ultralytics' training arguments, where the caller knows them."""
    if key in train_keys and key in SemiConfig.model_fields:
        return f"both an Ultralytics training argument and a semi key; did you mean 'semi.{key}'? (or 'train.{key}')"
    semi_keys = [*SemiConfig.model_fields, *SEMI_GROUPS]
    nested = {name: f"train.{name}" for name in train_keys} | {name: f"semi.{name}" for name in semi_keys}
    close = [key] if key in nested else difflib.get_close_matches(key, RunConfig.model_fields, n=1)
    close = close or difflib.get_close_matches(key, nested, n=1)
    return f"unknown key; did you mean {nested.get(close[0], close[0])!r}?" if close else "unknown key"


def nest_flat_keys(overrides: Mapping[str, Any], train_keys: Collection[str]) -> dict[str, Any]:
    """Ultralytics' flat keys as they are typed after ``yolo train``: ``epochs=3`` is ``train.epochs=3`` when
    ``epochs`` is one of ``train_keys`` (Ultralytics' training arguments), ``lambda_bg=0.5`` is
    ``semi.lambda_bg=0.5``; a key that is both (``mode``), or neither, is left for validation to name."""
    nested = {}
    for key, value in overrides.items():
        if "." in key or key in RunConfig.model_fields or (key in train_keys) == (key in SemiConfig.model_fields):
            nested[key] = value
        else:
            nested[f"train.{key}" if key in train_keys else f"semi.{key}"] = value
    return nested


def _known_keys(loc: Sequence[Any]) -> list[str]:
    """Field names of the model at ``loc`` (list indices are skipped, ``list[Model]`` is looked into), and the semi
    groups' names in the semi block."""
    model: Any = RunConfig
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(str(part)) if isinstance(model, type) else None
        if field is None:
            return []
        model = field.annotation
        inner = getattr(model, "__args__", ())
        if getattr(model, "__origin__", None) is list and inner:
            model = inner[0]
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return []
    return [*model.model_fields, *(SEMI_GROUPS if model is SemiConfig else ())]


def validate_config(raw: Mapping[str, Any], source: str = "config", train_keys: Collection[str] = ()) -> RunConfig:
    """Validate a mapping; raises :class:`ConfigError` listing every problem (an unknown top-level key that is
    one of ``train_keys``, Ultralytics' training arguments, is pointed to ``train``)."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: expected a mapping of keys to values, got {type(raw).__name__}")
    try:
        cfg = RunConfig.model_validate(dict(raw))
    except ValidationError as err:
        problems = "\n  ".join(_describe(e, train_keys) for e in err.errors())
        raise ConfigError(f"{source}: invalid configuration:\n  {problems}") from None
    _check_filters(cfg.semi.filters, f"{source}: invalid configuration:\n  ")
    return cfg


def _check_filters(filters: Sequence[FilterSpec], where: str) -> None:
    """The filters' own checks, those that need no dataset or model (which build_filters runs later)."""
    try:
        build_filters(filters, num_classes=None, has_dfl=None)
    except ConfigError as err:
        raise ConfigError(f"{where}{err}") from None


FILTERS_FILE = "a list of filters, or a run config (its semi.filters)"  # what pseudo-label --filters reads


def read_filters(path: str | Path) -> list[FilterSpec]:
    """The filters a file gives, by the run config's rule for ``semi.filters``: a list of filters, or a run config
    (its ``semi.filters``; the default chain when it has none).

    Raises:
        ConfigError: one line naming the file and the key, with a "did you mean" for a mistyped one.
    """
    raw = read_yaml(path)
    if isinstance(raw, list):
        return _read_semi({"filters": raw}, path).filters
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{path}: expected {FILTERS_FILE}, got {type(raw).__name__}")
    if raw and set(raw) <= set(FilterSpec.model_fields):
        raise ConfigError(f"{path}: one filter as a mapping; expected a list of filters (start it with '- name:')")
    options = {key: f"semi.{key}" for key in SemiConfig.model_fields} | {key: key for key in RunConfig.model_fields}
    for key in raw:
        if key not in RunConfig.model_fields:
            close = difflib.get_close_matches(str(key), options, n=1)
            hint = f"; did you mean {options[close[0]]!r}?" if close else ""
            raise ConfigError(f"{path}: {key}: unknown key{hint} (expected {FILTERS_FILE})")
    return _read_semi(raw.get("semi") or {}, path).filters


def _read_semi(raw: Any, path: str | Path) -> SemiConfig:
    """A ``semi:`` block alone, validated as in a run config; its problems on one line."""
    try:
        semi = SemiConfig.model_validate(raw)
    except ValidationError as err:
        problems = "; ".join(_describe({**error, "loc": ("semi", *error["loc"])}) for error in err.errors())
        raise ConfigError(f"{path}: {problems}") from None
    _check_filters(semi.filters, f"{path}: ")
    return semi


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML file; errors name the file and the line."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        line = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: YAML syntax error{line}: {err.problem}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot be read as YAML: {err}") from None


def parse_overrides(overrides: Sequence[str] | Mapping[str, Any]) -> dict[str, Any]:
    """``["semi.lambda_bg=0.5", "train.epochs=3"]`` (or a mapping) to ``{"semi.lambda_bg": 0.5, ...}``;
    values are parsed as YAML scalars (``3`` -> int, ``true`` -> bool, ``null`` -> None)."""
    if isinstance(overrides, Mapping):
        return dict(overrides)
    parsed = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r}: expected key=value, for example semi.lambda_bg=0.5")
        try:
            parsed[key.strip()] = yaml.safe_load(value) if value.strip() else None
        except yaml.YAMLError:
            parsed[key.strip()] = value
    return parsed


def apply_overrides(raw: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``raw`` with dotted keys set (intermediate mappings are created)."""
    result: dict[str, Any] = _deep_copy(raw)
    for dotted, value in overrides.items():
        node = result
        *parents, leaf = dotted.split(".")
        for i, part in enumerate(parents):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {dotted}: {'.'.join(parents[: i + 1])} is not a mapping")
            node = child
        node[leaf] = value
    return result


def _deep_copy(raw: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, Mapping) else v for k, v in raw.items()}


def load_config(
    config: str | Path | Mapping[str, Any] | None,
    overrides: Sequence[str] | Mapping[str, Any] = (),
    train_keys: Collection[str] = (),
) -> RunConfig:
    """Read (if a path), apply overrides and validate. Relative ``data`` and ``semi.unlabeled`` paths in a
    file are taken relative to the file's folder when they exist there; the ``semi`` paths are made absolute
    (:func:`absolute_semi_paths`). ``None``: no file, every key an
    override. ``train_keys`` (Ultralytics' training arguments, from the integration) makes flat overrides such as
    ``epochs=3`` train keys (:func:`nest_flat_keys`)."""
    if config is None:
        raw, source, base = {}, "key=value arguments", None
    elif isinstance(config, Mapping):
        raw, source, base = config, "config", None
    else:
        raw, source, base = read_yaml(config), str(config), Path(config).resolve().parent
        if raw is None:
            raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: expected a mapping of keys to values, got {type(raw).__name__}")
    overrides = flat_dotted_keys(nest_flat_keys(parse_overrides(overrides), train_keys), prefix="semi.")
    cfg = validate_config(apply_overrides(_flat_semi_block(raw), overrides), source, train_keys)
    if base is not None:
        cfg.data = _relative_to(base, cfg.data)
    absolute_semi_paths(cfg.semi, base)
    return cfg


def _flat_semi_block(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    """``raw`` with its ``semi`` groups by flat names, so that an override replaces a key however the file writes
    it; as it is when the block has a problem, for validation to name."""
    block = raw.get("semi")
    if not isinstance(block, Mapping):
        return raw
    flat, problems = flatten_groups(block)
    return raw if problems else {**raw, "semi": flat}


def absolute_semi_paths(semi: SemiConfig, base: Path | None = None) -> SemiConfig:
    """Make ``semi``'s paths absolute, so that the run's stored settings work from any folder: a relative one is
    taken relative to ``base`` (a config file's folder) when it exists there, else to the working folder."""
    for key in SEMI_PATHS:
        value = getattr(semi, key)
        if value:
            setattr(semi, key, os.path.abspath(_relative_to(base, value) if base is not None else value))
    return semi


def _relative_to(base: Path, value: str) -> str:
    path = Path(value)
    return str(base / path) if not path.is_absolute() and (base / path).exists() else value
