"""The run configuration: one YAML file, validated, with ``key=value`` overrides (dotted for nested keys).

Layout::

    model: yolov8n.yaml          # an Ultralytics model .yaml (built from scratch) or a .pt checkpoint
    data: path/to/data.yaml      # an Ultralytics dataset
    train: {epochs: 50, imgsz: 320, batch: 16}   # any Ultralytics training argument
    semi:                        # semi-supervised and background-penalty settings (SPEC sections 3 and 4)
      mode: supervised
      burn_in: 5
      lambda_bg: 1.0
      lambda_bg_warmup: 5
      lambda_bg_schedule: linear

Unknown keys are rejected; every error names the key, the expected type or range, and the value given.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ConfigError
from .losses import PENALTY_MODES, PENALTY_NORMALIZATIONS
from .pseudo import DEFAULT_FILTERS, FILTERS, PSEUDO_TARGETS, UNCERTAIN_TARGETS, build_filters
from .pseudo.augment import TEACHER_VIEWS
from .schedules import SCHEDULES
from .teacher import EMPTY_UNLABELED, MIXUP_PARTNERS

MODES = ("supervised", "online", "offline")  # semi.mode: labeled data only, a mean teacher, stored pseudo-labels
REPORT_WEIGHTS = ("best", "last")  # semi.report_weights: the weights summary.json reports


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class FilterSpec(_Strict):
    """One pseudo-label filter of the chain: ``{name: dsat, params: {init_threshold: 0.5}}``."""

    name: Literal[tuple(FILTERS)]  # type: ignore[valid-type]
    params: dict[str, Any] = Field(default_factory=dict)


MIN_TEACHER_SCALE, MAX_TEACHER_SCALE = 0.25, 4.0  # semi.teacher_scale and pseudo-label --teacher-scale
TEACHER_SCALE_RULE = f"expected a factor in [{MIN_TEACHER_SCALE:g}, {MAX_TEACHER_SCALE:g}]"


def valid_teacher_scale(scale: float) -> bool:
    """The one rule for the teacher's resize factor, in training and in ``pseudo-label``: below a quarter the
    teacher sees a 640 px image as less than 160 px (every object shrunk past what it was trained on), above four
    times its forward costs 16 times more."""
    return MIN_TEACHER_SCALE <= scale <= MAX_TEACHER_SCALE


class SemiConfig(_Strict):
    """The ``semi:`` block. Document 000's block (burn_in, lambda_unsup, lambda_bg, lambda_bg_warmup,
    lambda_bg_schedule, filters) loads as it is."""

    mode: Literal[MODES] = "supervised"  # type: ignore[valid-type]
    burn_in: int = Field(5, ge=0, description="epochs with lambda_bg = 0 (and, online, labeled data only)")
    lambda_unsup: float = Field(1.0, ge=0)
    lambda_bg: float = Field(1.0, ge=0, description="background-penalty weight after warm-up")
    lambda_bg_warmup: int = Field(5, ge=0)
    lambda_bg_schedule: Literal[SCHEDULES] = "linear"  # type: ignore[valid-type]
    bg_mode: Literal[PENALTY_MODES] = "max"  # type: ignore[valid-type]
    bg_normalize: Literal[PENALTY_NORMALIZATIONS] = "bce"  # type: ignore[valid-type]
    bg_gamma: float = Field(2.0, ge=0)
    logit_clamp: float | None = Field(None, gt=0, description="clamp class logits to [-c, c]; document 000: 10")
    max_grad_norm: float = Field(10.0, gt=0)
    nonfinite_patience: int = Field(10, ge=1, description="consecutive non-finite steps skipped before stopping")
    bg_fp_conf: float = Field(0.25, gt=0, lt=1, description="confidence of the background-FP metric")
    exact_resume: bool = Field(
        True, description="write weights/train_state.pt each epoch (full-precision state for a bit-exact resume)"
    )
    max_optimizer_steps: int | None = Field(
        None, ge=1, description="stop after this many optimizer steps (that epoch is cut short, validated, saved)"
    )
    init_state: str | None = Field(
        None,
        description="continue from another run's weights/train_state.pt: its EMA weights (student and EMA, with the "
        "EMA's update count) and optimizer moments; the learning-rate schedule is this run's",
    )
    report_weights: Literal[REPORT_WEIGHTS] = Field(  # type: ignore[valid-type]
        "best", description="weights summary.json reports: the best epoch's, or the final ones"
    )
    # online and offline semi-supervised training (SPEC section 4)
    unlabeled: str | None = Field(None, description="folder of unlabeled images (online mode)")
    pseudo_labels: str | None = Field(None, description="output of 'semiyolo pseudo-label' (offline mode)")
    reviewed: str | None = Field(
        None,
        description="folder of images a person reviewed ('semiyolo review'): online training moves them from the "
        "unlabeled stream to the labeled images at the next epoch",
    )
    unlabeled_ratio: float = Field(1.0, gt=0, le=8, description="unlabeled images per labeled image in a step")
    labeled_repeat: int = Field(
        1, ge=1, le=1000, description="each labeled training image appears this many times per epoch (oversampling)"
    )
    lambda_unsup_warmup: int = Field(0, ge=0, description="epochs of linear ramp of lambda_unsup after burn-in")
    teacher_decay: float = Field(
        0.999, gt=0, lt=1, description="EMA decay of the teacher per optimizer step, when teacher_half_life is null"
    )
    teacher_tau: float = Field(
        100.0,
        ge=0,
        description="EMA warm-up: decay * (1 - exp(-updates / tau)); 0: none (a teacher from trained weights)",
    )
    teacher_half_life: float | None = Field(
        0.1,
        gt=0,
        le=1,
        description="the teacher's half-life as a share of the run's optimizer steps: sets the EMA decay from the "
        "run's length, 0.5 ** (1 / (share * steps)), in place of teacher_decay (null, or teacher_decay given "
        "alone: teacher_decay)",
    )
    pseudo_min_score: float = Field(
        0.1, ge=0, lt=1, description="candidates below never reach NMS; with tiered targets, the uncertain tier's floor"
    )
    unlabeled_view: Literal[TEACHER_VIEWS] = Field(  # type: ignore[valid-type]
        "letterbox",
        description="what the teacher labels: letterboxed images (the student gets a flip / scale / shift and colour "
        "view), or Ultralytics' own mosaic / affine / flip view decoded in loader workers (the student gets the "
        "same geometry with colour jitter, grayscale and cutout)",
    )
    pseudo_targets: Literal[PSEUDO_TARGETS] = Field(  # type: ignore[valid-type]
        "tiered",
        description="hard: the filters keep or delete each pseudo-label; tiered: reliable ones are targets (boxes "
        "regressed if the localisation filters agree), uncertain ones are neither positive nor negative; dense: the "
        "teacher's per-anchor scores and boxes on its most confident anchors (as many as a labeled image's foreground "
        "anchors, or dense_fraction), the rest negatives, no NMS, the student's view photometric only",
    )
    uncertain_targets: Literal[UNCERTAIN_TARGETS] = Field(  # type: ignore[valid-type]
        "ignore",
        description="with tiered targets, what the uncertain tier teaches: ignore (neither positive nor negative) or "
        "soft (Efficient Teacher's: a target whose class score is scaled by the teacher's score, never regressed)",
    )
    dense_fraction: float | None = Field(
        None,
        gt=0,
        le=1,
        description="with dense pseudo-targets, the share of each unlabeled image's anchors, by the teacher's best "
        "class score, that get its scores and boxes as targets (Dense Teacher's choice); null: as many as the "
        "labeled images of the batch have foreground anchors; the rest are negatives, penalised only below "
        "pseudo_min_score",
    )
    pseudo_mixup: float = Field(
        0.0,
        ge=0,
        le=1,
        description="the probability that a pseudo-labeled image is blended half and half with a partner and takes "
        "its targets too (MixPL's pseudo mixup); 0: none; not with dense pseudo-targets",
    )
    labeled_mixup: float = Field(
        0.0,
        ge=0,
        le=1,
        description="the probability that a labeled image is blended half and half with another labeled image of the "
        "batch and takes its labels too: pseudo_mixup's blend on labeled images, the control 'semiyolo ablate' runs "
        "beside a pseudo-mixup arm; 0: none",
    )
    mixup_partners: Literal[MIXUP_PARTNERS] = Field(  # type: ignore[valid-type]
        "pseudo", description="pseudo-mixup's partners: other pseudo-labeled images, or labeled ones with their labels"
    )
    pseudo_nms_iou: float = Field(0.7, gt=0, le=1)
    teacher_flip: bool = Field(
        False,
        description="the teacher's outputs on each unlabeled image averaged anchor by anchor with its outputs on the "
        "image's left-right mirror (Humble Teacher's flip ensemble): one teacher forward of twice the images; for "
        "models trained with fliplr > 0",
    )
    teacher_scale: float = Field(
        1.0,
        description="the teacher labels the unlabeled images resized by this factor (to a multiple of the model's "
        "stride) and its boxes are mapped back: for a teacher that finds small objects better larger; choose it on "
        "the labeled images (benchmarks/teacher_scale.py); not with dense pseudo-targets",
    )
    dsat_holdout: float = Field(
        0.1,
        ge=0,
        lt=1,
        description="share of labeled train images held out for DSAT; 0: DSAT calibrates on (up to 200 of) the "
        "training images themselves and none is removed from training",
    )
    empty_unlabeled: Literal[EMPTY_UNLABELED] = Field(  # type: ignore[valid-type]
        "background", description="unlabeled images without pseudo-labels: trained as background, or left out"
    )
    validate_teacher: bool = Field(True, description="validate the teacher too each epoch (teacher/... columns)")
    filters: list[FilterSpec] = Field(default_factory=lambda: [FilterSpec(**spec) for spec in DEFAULT_FILTERS])

    @model_validator(mode="after")
    def _teacher_pace(self) -> SemiConfig:
        """``teacher_decay`` given without ``teacher_half_life`` is the pace asked for (a config written before the
        half-life default keeps its decay); given both, the half-life sets the pace unless it is null."""
        if "teacher_decay" in self.model_fields_set and "teacher_half_life" not in self.model_fields_set:
            self.__dict__["teacher_half_life"] = None  # not an assignment: it would validate the model again
        return self

    @field_validator("teacher_scale")
    @classmethod
    def _teacher_scale_in_range(cls, scale: float) -> float:
        if not valid_teacher_scale(scale):
            raise ValueError(TEACHER_SCALE_RULE)
        return scale

    @model_validator(mode="after")
    def _mixup_needs_boxes(self) -> SemiConfig:
        if self.pseudo_mixup > 0 and self.pseudo_targets == "dense":
            raise ValueError(
                f"pseudo_mixup: {self.pseudo_mixup} with pseudo_targets: dense; dense targets map the teacher's "
                "anchors to the student's one image at a time, so they cannot be blended: set pseudo_mixup to 0"
            )
        return self

    @model_validator(mode="after")
    def _dense_needs_the_grid(self) -> SemiConfig:
        if self.teacher_scale != 1 and self.pseudo_targets == "dense":
            raise ValueError(
                f"teacher_scale: {self.teacher_scale} with pseudo_targets: dense; dense targets map the teacher's "
                "anchors to the student's, so the teacher must see the student's size: set teacher_scale to 1"
            )
        return self

    @model_validator(mode="after")
    def _soft_needs_tiers(self) -> SemiConfig:
        if self.uncertain_targets == "soft" and self.pseudo_targets != "tiered":
            raise ValueError(
                f"uncertain_targets: soft with pseudo_targets: {self.pseudo_targets}; only tiered targets have an "
                "uncertain tier: set pseudo_targets to tiered or uncertain_targets to ignore"
            )
        return self


BEFORE_THE_KEY = {"pseudo_targets": "hard", "teacher_half_life": None}  # what a run made before these keys existed
# did, where it is not their default today (a finished run is compared through it: semiyolo ablate)

SUPERVISED_KEYS = (  # the semi settings a supervised or offline run reads; the others are the online trainer's
    "mode",
    "burn_in",
    "lambda_bg",
    "lambda_bg_warmup",
    "lambda_bg_schedule",
    "bg_mode",
    "bg_normalize",
    "bg_gamma",
    "logit_clamp",
    "max_grad_norm",
    "nonfinite_patience",
    "bg_fp_conf",
    "exact_resume",
    "max_optimizer_steps",
    "init_state",
    "report_weights",
    "pseudo_labels",
    "labeled_repeat",
    "labeled_mixup",
)


class RunConfig(_Strict):
    model: str = "yolov8n.yaml"
    data: str
    train: dict[str, Any] = Field(default_factory=dict)
    semi: SemiConfig = Field(default_factory=SemiConfig)


def _describe(error: Mapping[str, Any]) -> str:
    where = ".".join(str(p) for p in error["loc"]) or "(top level)"
    if error["type"] == "extra_forbidden":
        parent = error["loc"][:-1]
        known = _known_keys(parent)
        close = difflib.get_close_matches(str(error["loc"][-1]), known, n=1)
        hint = f"; did you mean {'.'.join([*map(str, parent), close[0]])!r}?" if close else ""
        return f"{where}: unknown key{hint} (known: {', '.join(known)})"
    if error["type"] == "missing":
        return f"{where}: required key is missing"
    return f"{where}: {error['msg']} (got {error.get('input')!r})"


def _known_keys(loc: Sequence[Any]) -> list[str]:
    """Field names of the model at ``loc`` (list indices are skipped, ``list[Model]`` is looked into)."""
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
    return list(model.model_fields) if isinstance(model, type) and issubclass(model, BaseModel) else []


def validate_config(raw: Mapping[str, Any], source: str = "config") -> RunConfig:
    """Validate a mapping; raises :class:`ConfigError` listing every problem."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: expected a mapping of keys to values, got {type(raw).__name__}")
    try:
        cfg = RunConfig.model_validate(dict(raw))
    except ValidationError as err:
        problems = "\n  ".join(_describe(e) for e in err.errors())
        raise ConfigError(f"{source}: invalid configuration:\n  {problems}") from None
    try:  # the filters' own checks, those that need no dataset or model (which build_filters runs later)
        build_filters(cfg.semi.filters, num_classes=None, has_dfl=None)
    except ConfigError as err:
        raise ConfigError(f"{source}: invalid configuration:\n  {err}") from None
    return cfg


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


def load_config(config: str | Path | Mapping[str, Any], overrides: Sequence[str] | Mapping[str, Any] = ()) -> RunConfig:
    """Read (if a path), apply overrides and validate. Relative ``data`` and ``semi.unlabeled`` paths in a
    file are taken relative to the file's folder when they exist there."""
    if isinstance(config, Mapping):
        raw, source, base = config, "config", None
    else:
        raw, source, base = read_yaml(config), str(config), Path(config).resolve().parent
        if raw is None:
            raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: expected a mapping of keys to values, got {type(raw).__name__}")
    cfg = validate_config(apply_overrides(raw, parse_overrides(overrides)), source)
    if base is not None:
        cfg.data = _relative_to(base, cfg.data)
        for key in ("unlabeled", "pseudo_labels", "reviewed", "init_state"):
            if getattr(cfg.semi, key):
                setattr(cfg.semi, key, _relative_to(base, getattr(cfg.semi, key)))
    return cfg


def _relative_to(base: Path, value: str) -> str:
    path = Path(value)
    return str(base / path) if not path.is_absolute() and (base / path).exists() else value
