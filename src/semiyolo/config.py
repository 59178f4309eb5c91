"""The run configuration: one YAML file, validated, with ``key=value`` overrides (dotted for nested keys).

Layout::

    model: yolov8n.yaml          # an Ultralytics model .yaml (built from scratch) or a .pt checkpoint
    data: path/to/data.yaml      # an Ultralytics dataset
    train: {epochs: 50, imgsz: 320, batch: 16}   # any Ultralytics training argument
    semi:                        # semi-supervised and background-penalty settings (docs/spec.md §3 to §8)
      mode: supervised
      burn_in: 5
      lambda_bg: 1.0
      lambda_bg_warmup: 5
      lambda_bg_schedule: linear
    # or by concern (semi_groups.py), e.g. semi: {run: {mode: online}, teacher: {decay: 0.999}}, stored flat

Unknown keys are rejected; every error names the key, the expected type or range, and the value given
(:mod:`.config_loading` reads a file, applies overrides and words the errors).
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from typing import Any, Literal, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from .losses import PENALTY_MODES, PENALTY_NORMALIZATIONS
from .pseudo import (
    DEFAULT_FILTERS,
    FILTERS,
    PSEUDO_TARGETS,
    UNCERTAIN_TARGETS,
    agreement_conflict,
    dense_geometry_conflict,
    soft_uncertain,
)
from .pseudo.augment import CUT_OBJECTS, TEACHER_VIEWS
from .schedules import SCHEDULES
from .semi_groups import OFFLINE_INPUT, SEMI_GROUPS, flatten_groups
from .teacher import EMPTY_UNLABELED, MIXUP_PARTNERS, ORACLE_BOXES, VIEW_FUSION

MODES = ("supervised", "online", "offline")  # semi.mode: labeled data only, a mean teacher, stored pseudo-labels
REPORT_WEIGHTS = ("best", "last")  # semi.report_weights: the weights summary.json reports
TRUST_IMAGES = ("off", "holdout", "val")  # semi.pseudo_trust: where the trust estimate measures the teacher
SHIP_CHOICES = ("student", "better")  # semi.ship: what an online run's last.pt holds


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


SEMI_GROUPS_ERROR = "semi_groups"  # the error type of a key misplaced in a nested semi group


class SemiConfig(_Strict):
    """The ``semi:`` block, flat or by concern (:data:`~semiyolo.semi_groups.SEMI_GROUPS`: ``teacher: {decay: ...}``
    is ``teacher_decay``). The source's block (docs/spec.md §9: burn_in, lambda_unsup, lambda_bg, lambda_bg_warmup,
    lambda_bg_schedule, filters) loads as it is."""

    mode: Literal[MODES] = Field(  # type: ignore[valid-type]
        "supervised",
        description="supervised: the labeled images only; online: a mean teacher labels semi.unlabeled as training "
        "goes; offline: the labeled images and the stored pseudo-labels of semi.pseudo_labels",
    )
    burn_in: int = Field(5, ge=0, description="epochs with lambda_bg = 0 (and, online, labeled data only)")
    lambda_unsup: float = Field(
        1.0, ge=0, description="weight of the pseudo-labeled images' loss after burn-in: L_sup + lambda_unsup L_unsup"
    )
    lambda_bg: float = Field(1.0, ge=0, description="background-penalty weight after warm-up")
    lambda_bg_warmup: int = Field(
        5, ge=0, description="epochs after burn-in over which lambda_bg ramps up to its value"
    )
    lambda_bg_schedule: Literal[SCHEDULES] = Field(  # type: ignore[valid-type]
        "linear",
        description="lambda_bg's ramp over the warm-up: constant (full at once), linear, step (0, then full when the "
        "warm-up ends), cosine",
    )
    bg_mode: Literal[PENALTY_MODES] = Field(  # type: ignore[valid-type]
        "max",
        description="the penalty on anchors the assigner left as background: max (the highest class score), "
        "focal (a hard-negative focal term, bg_gamma), none (plain Ultralytics)",
    )
    bg_normalize: Literal[PENALTY_NORMALIZATIONS] = Field(  # type: ignore[valid-type]
        "bce",
        description="how the penalty is normalised: bce (with the classification loss, by the target-score sum), "
        "bg_mean (averaged over the background anchors: far weaker), joint (by every anchor)",
    )
    bg_gamma: float = Field(2.0, ge=0, description="exponent of the focal penalty (bg_mode: focal)")
    logit_clamp: float | None = Field(None, gt=0, description="clamp class logits to [-c, c], e.g. 10")
    max_grad_norm: float = Field(10.0, gt=0, description="gradient-norm clip of each optimizer step")
    nonfinite_patience: int = Field(10, ge=1, description="consecutive non-finite steps skipped before stopping")
    bg_fp_conf: float = Field(0.25, gt=0, lt=1, description="confidence of the background-FP metric")
    exact_resume: bool = Field(
        True, description="write weights/train_state.pt each epoch (full-precision state for a bit-exact resume)"
    )
    keep_state: bool = Field(
        False,
        description="keep the exact-resume state (weights/train_state.pt, semi_state.pt and their .prev) when the run "
        "finishes; by default a finished run removes it (a continuation, semi.init_state, needs it: ablate keeps it)",
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
    # online and offline semi-supervised training (docs/spec.md §5 to §8)
    unlabeled: str | None = Field(None, description="folder of unlabeled images (online mode)")
    pseudo_labels: str | None = Field(None, description="output of 'semiyolo pseudo-label' (offline mode)")
    reviewed: str | None = Field(
        None,
        description="folder of images a person reviewed ('semiyolo review'): online training moves them from the "
        "unlabeled stream to the labeled images at the next epoch",
    )
    unlabeled_ratio: float = Field(1.0, gt=0, le=8, description="unlabeled images per labeled image in a step")
    labeled_repeat: int = Field(
        1,
        ge=1,
        le=1000,
        description="each labeled training image appears this many times per epoch (oversampling): with few labeled "
        "images an epoch is then long enough for Ultralytics' per-epoch schedule (warm-up, mosaic, validation)",
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
    teacher_min_half_life: float | None = Field(
        None,
        ge=1,
        description="a floor, in optimizer steps, under the half-life teacher_half_life sets: max(share * steps, "
        "floor), so that on a short run the teacher does not become the student (25 steps at share 0.1 and floor 50: "
        "half-life 50 steps, decay 0.5 ** (1 / 50) = 0.98623, not 2.5 steps and 0.758); null: no floor; not read "
        "when teacher_half_life is null",
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
    cut_objects: Literal[CUT_OBJECTS] = Field(  # type: ignore[valid-type]
        "drop",
        description="a pseudo-label the student's strong view cuts (under 30% of its area, or under 2 pixels a side, "
        "left in the image after the view's scale and shift): drop (what stays visible of it is background) or ignore "
        "(its visible part is an ignore region, neither positive nor negative, like an uncertain pseudo-label); no "
        "effect with dense pseudo-targets, whose student view keeps the teacher's geometry",
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
    pseudo_mosaic: float = Field(
        0.0,
        ge=0,
        le=1,
        description="the probability that a pseudo-labeled image becomes a 2 x 2 mosaic at the training size of "
        "itself and three pseudo-labeled images of earlier batches (mosaic_cache), each at half scale, with all four's "
        "targets (MixPL's pseudo mosaic: the teacher's large objects become small ones); 0: none; not with dense "
        "pseudo-targets",
    )
    labeled_mosaic: float = Field(
        0.0,
        ge=0,
        le=1,
        description="the probability that a labeled image becomes pseudo_mosaic's mosaic of itself and three labeled "
        "images of earlier batches: the control 'semiyolo ablate' runs beside a pseudo-mosaic arm; 0: none",
    )
    mosaic_cache: int = Field(
        32,
        ge=3,
        description="images of earlier batches kept at half scale, with their targets, as the mosaics' partners "
        "(pseudo_mosaic and labeled_mosaic)",
    )
    mixup_max_overlap: float | None = Field(
        None,
        gt=0,
        le=1,
        description="object-aware blending, for pseudo_mixup and labeled_mixup alike: an image is not blended with a "
        "partner whose boxes overlap its own at an IoU above this (another partner of the batch is tried in the "
        "draw's order, and without one the image stays unblended), so no object is hidden under another; null: any "
        "partner",
    )
    mixup_partners: Literal[MIXUP_PARTNERS] = Field(  # type: ignore[valid-type]
        "pseudo", description="pseudo-mixup's partners: other pseudo-labeled images, or labeled ones with their labels"
    )
    pseudo_nms_iou: float = Field(0.7, gt=0, le=1, description="IoU of the NMS on the teacher's candidates")
    teacher_flip: bool = Field(
        False,
        description="the teacher's outputs on each unlabeled image averaged anchor by anchor with its outputs on the "
        "image's left-right mirror (Humble Teacher's flip ensemble): one teacher forward of twice the images; for "
        "models trained with fliplr > 0",
    )
    teacher_agreement: bool = Field(
        False,
        description="with teacher_flip, the teacher's detections on each view alone (the image, its mirror), from the "
        "same forward, beside the fused ones: a fused pseudo-label that a view misses (no detection of its class at "
        "IoU >= 0.5) is uncertain, not reliable, and one whose views' boxes disagree (IoU < 0.75) is not regressed; "
        "needs teacher_flip and tiered pseudo-targets",
    )
    teacher_scale: float = Field(
        1.0,
        description="the teacher labels the unlabeled images resized by this factor (to a multiple of the model's "
        "stride) and its boxes are mapped back: for a teacher that finds small objects better larger; choose it on "
        "the labeled images (benchmarks/teacher_scale.py); not with dense pseudo-targets",
    )
    teacher_fusion: Literal[VIEW_FUSION] = Field(  # type: ignore[valid-type]
        "anchor",
        description="how the teacher's views combine: anchor (teacher_flip's outputs averaged anchor by anchor) or "
        "boxes (each view's detections after NMS fused by weighted box fusion: a box's score is the views' mean, a "
        "view that missed it counting 0); boxes is needed for teacher_scales; not with dense pseudo-targets",
    )
    teacher_scales: list[float] = Field(
        [],
        description="with teacher_fusion boxes, more scales the teacher labels each unlabeled image at (besides "
        "teacher_scale), each one more view (with its mirror under teacher_flip): one teacher forward per scale",
    )
    relabel_every: int = Field(
        1,
        ge=1,
        description="the teacher labels an unlabeled image on its first visit and every n-th visit after, and its "
        "detections are kept in between (the filters, tiers and strong view still run on every visit): a teacher "
        "with several views costs 1/n of its forwards; 1: every visit; needs the letterbox unlabeled_view",
    )
    oracle_pseudo_labels: bool | Literal[ORACLE_BOXES] = Field(  # type: ignore[valid-type]
        False,
        description="a benchmark's diagnostic, not a method: true: the unlabeled images' hidden labels (the label "
        "files a benchmark split keeps beside them) replace the teacher's pseudo-labels, every one reliable and "
        "regressed, through the same strong view, mixing and loss: what this recipe reaches with perfect "
        "pseudo-labels; an image without a label file counts as having no objects. boxes: the teacher's "
        "pseudo-labels, each box replaced by the hidden box it overlaps most at IoU 0.5 or more: what exact box "
        "extents alone add (which objects are found stays the teacher's)",
    )
    dsat_holdout: float = Field(
        0.1,
        ge=0,
        lt=1,
        description="share of labeled train images held out for DSAT and the trust estimate (pseudo_trust); 0: DSAT "
        "calibrates on (up to 200 of) the training images themselves and none is removed from training",
    )
    negative_coverage: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="teacher-sure negatives: at each trust estimate, the uncertain tier's floor (the candidates' "
        "score floor, pseudo_min_score at most, 0.01 at least) is set so that this share of the trust images' objects "
        "lies under some teacher detection (IoU >= 0.5, any class): an object the teacher half-sees is then an ignore "
        "region, not background, on unlabeled images; needs pseudo_trust and tiered pseudo-targets; null: the "
        "floor is pseudo_min_score",
    )
    pseudo_trust: Literal[TRUST_IMAGES] = Field(  # type: ignore[valid-type]
        "off",
        description="measure the teacher's pseudo-labels on labeled images the student is not fitted on when "
        "pseudo-labelling starts and after each epoch - precision, recall, coverage, localisation per class - and "
        "weigh the pseudo-labeled part's positives, negatives and boxes by what they justify (2 p - 1, 2 c - 1, at "
        "the lower end of their intervals), so an untrusted teacher leaves the labeled-only run (docs/spec.md §6.7): "
        "off; holdout (the dsat_holdout share of the labeled train images, not trained on); val (the validation "
        "images, up to 200, evenly spaced: no labeled image is lost, and the validation images then choose the "
        "weights too)",
    )
    empty_unlabeled: Literal[EMPTY_UNLABELED] = Field(  # type: ignore[valid-type]
        "background", description="unlabeled images without pseudo-labels: trained as background, or left out"
    )
    validate_teacher: bool = Field(True, description="validate the teacher too each epoch (teacher/... columns)")
    ship: Literal[SHIP_CHOICES] = Field(  # type: ignore[valid-type]
        "student",
        description="what an online run's last.pt holds at the end: the student (its EMA, as Ultralytics ships), or "
        "the better of it and the teacher on the last validation (best.pt too where the teacher beats every epoch's "
        "student); needs validate_teacher; the teacher is always saved as weights/teacher.pt",
    )
    filters: list[FilterSpec] = Field(
        default_factory=lambda: [FilterSpec(**spec) for spec in DEFAULT_FILTERS],
        description=f"the pseudo-label filter chain after NMS, in order, each {{name, params}}; names: "
        f"{', '.join(FILTERS)} (docs/semi-supervised.md)",
    )

    @model_validator(mode="before")
    @classmethod
    def _flat_names(cls, block: Any) -> Any:
        if not isinstance(block, Mapping) or not set(block) & set(SEMI_GROUPS):
            return block
        flat, problems = flatten_groups(block)
        if problems:
            raise PydanticCustomError(SEMI_GROUPS_ERROR, "{problems}", {"problems": "; ".join(problems)})
        return flat

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

    @field_validator("teacher_scales")
    @classmethod
    def _teacher_scales_in_range(cls, scales: list[float]) -> list[float]:
        if not all(valid_teacher_scale(scale) for scale in scales):
            raise ValueError(f"each of {scales}: {TEACHER_SCALE_RULE}")
        return scales

    @model_validator(mode="after")
    def _more_scales_need_box_fusion(self) -> SemiConfig:
        if self.teacher_scales and self.teacher_fusion != "boxes":
            raise ValueError(
                f"teacher_scales {self.teacher_scales} need teacher_fusion boxes: the anchors of different scales do "
                "not line up, so their views can only be fused as detections"
            )
        if self.relabel_every > 1 and self.unlabeled_view != "letterbox":
            raise ValueError(
                f"relabel_every {self.relabel_every} keeps the teacher's detections of an image between visits: it "
                "needs unlabeled_view letterbox, whose weak view is the same on every visit (got "
                f"{self.unlabeled_view})"
            )
        return self

    @model_validator(mode="after")
    def _dense_geometry(self) -> SemiConfig:
        conflict = dense_geometry_conflict(
            self.pseudo_targets,
            pseudo_mixup=self.pseudo_mixup,
            pseudo_mosaic=self.pseudo_mosaic,
            teacher_scale=self.teacher_scale,
            teacher_fusion=self.teacher_fusion,
            relabel_every=self.relabel_every,
            oracle_pseudo_labels=self.oracle_pseudo_labels,
        )
        if conflict:
            raise ValueError(conflict)
        return self

    @model_validator(mode="after")
    def _agreement_needs_views_and_tiers(self) -> SemiConfig:
        conflict = agreement_conflict(
            self.teacher_agreement, self.teacher_flip, self.pseudo_targets, bool(self.teacher_scales)
        )
        if conflict:
            raise ValueError(conflict)
        return self

    @model_validator(mode="after")
    def _shipping_the_better_needs_the_teacher_validated(self) -> SemiConfig:
        if self.ship == "better" and not self.validate_teacher:
            raise ValueError(
                "ship better compares the teacher with the student on the last validation: set validate_teacher "
                "true, or ship student"
            )
        return self

    @model_validator(mode="after")
    def _sure_negatives_need_the_trust_images_and_tiers(self) -> SemiConfig:
        if self.negative_coverage is not None and (self.pseudo_trust == "off" or self.pseudo_targets != "tiered"):
            raise ValueError(
                "negative_coverage sets the uncertain tier's floor on the trust estimate's images: it needs "
                f"pseudo_trust holdout or val and pseudo_targets tiered (got pseudo_trust {self.pseudo_trust}, "
                f"pseudo_targets {self.pseudo_targets})"
            )
        return self

    @model_validator(mode="after")
    def _trust_needs_holdout(self) -> SemiConfig:
        if self.pseudo_trust == "holdout" and self.dsat_holdout == 0:
            raise ValueError(
                "pseudo_trust holdout measures the teacher on held-out labeled images, and dsat_holdout is 0: set "
                "dsat_holdout > 0 (e.g. 0.1), or pseudo_trust to val or off"
            )
        return self

    @model_validator(mode="after")
    def _soft_needs_tiers(self) -> SemiConfig:
        soft_uncertain(self.uncertain_targets, self.pseudo_targets)
        return self


# what a run made before these keys existed did, where it is not their default today (a finished run is compared
# through it: semiyolo ablate)
BEFORE_THE_KEY = {"pseudo_targets": "hard", "teacher_half_life": None, "keep_state": True}

SUPERVISED_KEYS = (  # the semi settings a supervised or offline run reads; the others are the online trainer's
    *(key for group in SEMI_GROUPS.values() if group.every_mode for key in group.keys),
    OFFLINE_INPUT,
)

TEMPLATE_HEAD = """\
# A semiyolo run config, every key at its default: 'semiyolo cfg > run.yaml', edit, 'semiyolo train run.yaml'.
# On the command line each key is key=value, dotted (train.epochs=3, semi.lambda_bg=0.5) or flat as after
# 'yolo train': an Ultralytics training argument goes to train (epochs=3), any other semi key to semi (lambda_bg=0.5).
model: yolov8n.yaml  # an Ultralytics model .yaml (built from scratch) or a local .pt checkpoint
data: data.yaml  # required: an Ultralytics dataset's data.yaml
train: {}  # any Ultralytics training argument, at Ultralytics' default unless given ('yolo cfg' lists them)
semi:  # by concern, each group a '# ---' section; a group may be nested, its keys without the group's prefix:
  # 'teacher: {decay: 0.99}' is 'teacher_decay: 0.99' (on the command line semi.teacher.decay=0.99)"""


def config_template(width: int = 118) -> str:
    """Every ``semi`` key with its default and its description (the fields' own), by its group, as a run config
    that loads as it is: what ``semiyolo cfg`` prints."""
    defaults = SemiConfig().model_dump()
    lines = [TEMPLATE_HEAD]
    for group in SEMI_GROUPS.values():
        lines += ["", f"  # --- {group.name}: {group.title} ---"]
        for key in group.keys:
            lines += textwrap.wrap(_field_help(key), width, initial_indent="  # ", subsequent_indent="  #   ")
            lines.append("  " + yaml.safe_dump({key: defaults[key]}, default_flow_style=True, width=10**6)[1:-2])
    return "\n".join(lines) + "\n"


def _field_help(key: str) -> str:
    field = SemiConfig.model_fields[key]
    choices = get_args(field.annotation) if get_origin(field.annotation) is Literal else ()
    unnamed = [choice for choice in choices if choice not in field.description]
    return field.description + (f" (one of: {', '.join(choices)})" if unnamed else "")


class RunConfig(_Strict):
    model: str = "yolov8n.yaml"
    data: str
    train: dict[str, Any] = Field(default_factory=dict)
    semi: SemiConfig = Field(default_factory=SemiConfig)
