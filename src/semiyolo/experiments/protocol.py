"""What the fair protocol runs (:mod:`.ablate`): its settings (:class:`Protocol`, the ``semiyolo ablate`` flags),
its arms and ceilings, and which of them one invocation trains."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ..config import MODES
from ..errors import ConfigError
from .arms import (
    CONTINUED,
    CONTINUED_AUG,
    CONTINUED_BG,
    CONTINUED_LR,
    FULLY_LABELED,
    OFFLINE,
    ONLINE,
    ORACLE,
    REVIEW_ORDERS,
    REVIEWED,
    VARIANT_LR_SCALE,
    VARIANTS,
    labeled_only_at,
)

SUPERVISED_MODE, ONLINE_MODE, OFFLINE_MODE = MODES  # semi.mode of the arms' runs
DEFAULT_REVIEW_K = (5, 10, 20)  # images the simulated reviewer corrects, for ``--only reviewed`` without ``--review-k``


class Variant(NamedTuple):
    """An online arm of ``--variant NAME:key=value,...``: its ``semi`` settings over lambda_bg 1, and the
    continuation's first learning rate in multiples of ``Protocol.continue_lr`` (``lr_scale=M`` in the flag: a
    protocol setting, not a ``semi`` one, so an arm can take the learning rate the labeled-only sweep chose)."""

    name: str
    semi: dict[str, Any]
    lr_scale: float = 1.0


@dataclass(frozen=True)
class Protocol:
    """What the ablation runs besides the converged baseline."""

    steps: int = 200  # optimizer steps of every continuation arm
    seeds: int = 3
    lambdas: Sequence[float] = (1.0,)  # online lambda_bg values besides 0
    unpenalized: bool = True  # online with lambda_bg 0 as well
    focal: bool = False
    offline: bool = True
    oracle: bool = True  # the continuation on the hidden labels (needs them)
    continue_lr: float = 0.1  # the continuation's first learning rate, as a share of the converged run's peak
    only: tuple[str, ...] = ()  # run only these kinds besides the converged run (all when empty)
    only_seeds: tuple[int, ...] = ()  # run only these seeds' continuations and ceilings, 0-based (all when empty)
    ceiling_seeds: int = 1  # seeds of the fully labeled ceiling
    variants: tuple[Variant, ...] = ()  # online arms; a plain (name, semi settings) pair is a Variant at lr_scale 1
    splits: int = 1  # label splits: the config's own and the ones 'semiyolo split' draws with the next seeds
    controls: bool = True  # the labeled-only controls (:mod:`.arms`): the penalty, the augmentations
    lr_scales: tuple[float, ...] = (2.0, 4.0)  # the labeled-only continuation also at these (and each variant's)
    only_splits: tuple[int, ...] = ()  # train only these label splits, 0-based (all when empty); the report has all
    review_k: tuple[int, ...] = ()  # the reviewed arms' numbers of reviewed images (none: no reviewed arms)
    review_orders: tuple[str, ...] = REVIEW_ORDERS  # how the reviewed arms choose their images
    report_only: bool = False  # train nothing: the report over the runs that finished

    def __post_init__(self) -> None:
        if not 0 < self.continue_lr <= 1:
            raise ConfigError(
                f"--continue-lr: expected a share of the peak learning rate in (0, 1], got {self.continue_lr}"
            )
        object.__setattr__(self, "lambdas", tuple(dict.fromkeys(lam for lam in self.lambdas if lam != 0)))
        if VARIANTS in self.only and not self.variants:
            raise ConfigError(
                "--only variants: no --variant given, so there is nothing to train besides the converged run"
            )
        if self.ceiling_seeds < 1:
            raise ConfigError(f"--ceiling-seeds: expected at least 1 seed, got {self.ceiling_seeds}")
        if self.splits < 1:
            raise ConfigError(f"--splits: expected at least 1 label split, got {self.splits}")
        too_fast = [m for m in self.lr_scales if not 0 < m * self.continue_lr <= 1]
        if too_fast:
            raise ConfigError(
                f"--lr-scales: {too_fast} times --continue-lr {self.continue_lr} is not a share of the peak learning "
                "rate in (0, 1]"
            )
        self._check_variants()
        # a variant at another learning rate brings its control: the labeled-only continuation at that rate
        scales = (*self.lr_scales, *(v.lr_scale for v in self.variants))
        object.__setattr__(self, "lr_scales", tuple(dict.fromkeys(m for m in scales if m != 1)))
        outside_splits = [k for k in self.only_splits if not 0 <= k < self.splits]
        if outside_splits:
            raise ConfigError(
                f"--only-splits: {outside_splits} outside the {self.splits} label splits (0 to {self.splits - 1})"
            )
        self._check_review()
        most = max(self.seeds, self.ceiling_seeds)
        outside = [k for k in self.only_seeds if not 0 <= k < most]
        if outside:
            raise ConfigError(f"--only-seeds: {outside} outside the {most} seeds (0 to {most - 1})")

    def _check_variants(self) -> None:
        """Each variant a :class:`Variant` with a float ``lr_scale`` inside the peak learning rate, and a run folder
        (``online_<name>``) no other online arm has: a clash would be refused only after the first had trained."""
        variants = []
        for name, settings, scale in (Variant(*v) for v in self.variants):
            try:
                scale = float(scale)
            except (TypeError, ValueError):
                raise ConfigError(f"--variant {name}: lr_scale: expected a number, got {scale!r}") from None
            if not 0 < scale * self.continue_lr <= 1:
                raise ConfigError(
                    f"--variant {name}: lr_scale {scale:g} times --continue-lr {self.continue_lr} is not a share of "
                    "the peak learning rate in (0, 1]"
                )
            variants.append(Variant(name, settings, scale))
        object.__setattr__(self, "variants", tuple(variants))
        taken = [f"bg{lam:g}" for lam in ((0.0,) if self.unpenalized else ()) + tuple(self.lambdas)]
        taken += ["focal1"] if self.focal else []
        for variant in self.variants:
            if variant.name in taken:
                raise ConfigError(
                    f"--variant {variant.name}: another arm already has the run folder online_{variant.name}; "
                    "give it another name"
                )
            taken.append(variant.name)

    def _check_review(self) -> None:
        """``--review-k`` and ``--review-orders``; ``--only reviewed`` alone takes :data:`DEFAULT_REVIEW_K`."""
        if REVIEWED in self.only and not self.review_k:
            object.__setattr__(self, "review_k", DEFAULT_REVIEW_K)
        if any(k < 1 for k in self.review_k):
            raise ConfigError(f"--review-k: expected numbers of images >= 1, got {list(self.review_k)}")
        unknown = [order for order in self.review_orders if order not in REVIEW_ORDERS]
        if unknown or not self.review_orders:
            raise ConfigError(f"--review-orders: expected some of {', '.join(REVIEW_ORDERS)}, got {unknown or 'none'}")
        object.__setattr__(self, "review_k", tuple(dict.fromkeys(self.review_k)))
        object.__setattr__(self, "review_orders", tuple(dict.fromkeys(self.review_orders)))

    def chosen_seeds(self, base_seed: int, count: int) -> set[int]:
        """The seeds of ``count`` that this invocation trains: ``--only-seeds``' (``base_seed + k``), else all."""
        return {base_seed + k for k in self.only_seeds or range(count)}

    def runs(self, kind: str) -> bool:
        return not self.only or kind in self.only

    def runs_arm(self, arm: Arm) -> bool:
        """Whether ``--only`` takes this continuation: its kind, or ``variants`` for a ``--variant`` arm."""
        return self.runs(arm.kind) or (arm.variant is not None and VARIANTS in self.only)


@dataclass
class Arm:
    name: str  # the run folder under the output folder
    kind: str
    seed: int
    semi: dict[str, Any] = field(default_factory=dict)  # semi settings over the config's
    variant: str | None = None  # a --variant's name
    lr_scale: float = 1.0  # the continuation's first learning rate, in multiples of ``Protocol.continue_lr``
    review: tuple[int, str] | None = None  # a reviewed arm's (images reviewed, order chosen in)


def continuation_facts(arm: Arm) -> dict[str, Any]:
    """What a continuation's row says of the protocol beyond its settings: a variant's ``lr_scale`` (and its
    augmentation control's) where it is not 1, which the report and the default's choice read; a row without it
    continued at ``--continue-lr``, or is a learning-rate control, named by its rate."""
    return {VARIANT_LR_SCALE: arm.lr_scale} if arm.lr_scale != 1 and arm.kind != CONTINUED_LR else {}


def continuation_arms(protocol: Protocol, seeds: Sequence[int]) -> list[Arm]:
    """The arms that continue from the converged run, ``seed<k>/<arm>`` for each seed."""
    arms = []
    for seed in seeds:
        arms.append(Arm(f"seed{seed}/{CONTINUED}", CONTINUED, seed, {"mode": SUPERVISED_MODE, "lambda_bg": 0.0}))
        arms += control_arms(protocol, seed)
        for lam in ((0.0,) if protocol.unpenalized else ()) + tuple(protocol.lambdas):
            arms.append(Arm(f"seed{seed}/online_bg{lam:g}", ONLINE, seed, {"mode": ONLINE_MODE, "lambda_bg": lam}))
        if protocol.focal:
            online = {"mode": ONLINE_MODE, "lambda_bg": 1.0, "bg_mode": "focal"}
            arms.append(Arm(f"seed{seed}/online_focal1", ONLINE, seed, online))
        for name, settings, lr_scale in protocol.variants:
            online = {"mode": ONLINE_MODE, "lambda_bg": 1.0, **settings}
            arms.append(Arm(f"seed{seed}/online_{name}", ONLINE, seed, online, variant=name, lr_scale=lr_scale))
        if protocol.offline:
            arms.append(Arm(f"seed{seed}/{OFFLINE}", OFFLINE, seed, {"mode": OFFLINE_MODE, "lambda_bg": 0.0}))
        if protocol.oracle:
            arms.append(Arm(f"seed{seed}/{ORACLE}", ORACLE, seed, {"mode": SUPERVISED_MODE, "lambda_bg": 0.0}))
        arms += review_arms(protocol, seed)
    return arms


def review_arms(protocol: Protocol, seed: int) -> list[Arm]:
    """The reviewed arms of ``seed``, ``seed<s>/reviewed_k<k>_<order>`` for each ``review_k`` and
    ``review_orders``: the config's online method (its own ``semi`` settings, online) after the review."""
    online = {"mode": ONLINE_MODE}
    return [
        Arm(f"seed{seed}/{REVIEWED}_k{k}_{order}", REVIEWED, seed, online, review=(k, order))
        for k in protocol.review_k
        for order in protocol.review_orders
    ]


def control_arms(protocol: Protocol, seed: int) -> list[Arm]:
    """The labeled-only continuations that each differ from ``supervised_continued`` in one way an online arm
    does (:mod:`.arms`): each ``--lambdas`` penalty, each ``lr_scales`` learning rate, and the augmentation of each
    ``--variant`` that adds one (:func:`augmentation_control`; a variant's other settings act on pseudo-labels
    alone)."""
    labeled = {"mode": SUPERVISED_MODE, "lambda_bg": 0.0}
    arms = [
        Arm(f"seed{seed}/{labeled_only_at(m)}", CONTINUED_LR, seed, labeled, lr_scale=m) for m in protocol.lr_scales
    ]
    if not protocol.controls:
        return arms
    for lam in protocol.lambdas:
        penalised = {**labeled, "lambda_bg": lam}
        arms.append(Arm(f"seed{seed}/{CONTINUED_BG}{lam:g}", CONTINUED_BG, seed, penalised))
    for name, settings, lr_scale in protocol.variants:
        augmented = augmentation_control(settings)
        if augmented:  # at the variant's learning rate, so that the augmentation is all they differ in
            control = {**labeled, **augmented}
            arms.append(Arm(f"seed{seed}/{CONTINUED_AUG}_{name}", CONTINUED_AUG, seed, control, lr_scale=lr_scale))
    return arms


def augmentation_control(settings: dict[str, Any]) -> dict[str, Any]:
    """The ``semi`` settings that give labeled images alone the augmentation a variant's ``settings`` give its
    pseudo-labeled ones: ``labeled_mosaic`` for ``pseudo_mosaic`` (with its ``mosaic_cache``), ``labeled_mixup`` for
    ``pseudo_mixup`` (with its object-aware ``mixup_max_overlap``); empty when the variant adds none."""
    control: dict[str, Any] = {}
    if settings.get("pseudo_mosaic"):
        control["labeled_mosaic"] = settings["pseudo_mosaic"]
        if settings.get("mosaic_cache") is not None:
            control["mosaic_cache"] = settings["mosaic_cache"]
    if settings.get("pseudo_mixup"):
        control["labeled_mixup"] = settings["pseudo_mixup"]
        if settings.get("mixup_max_overlap") is not None:  # the same object-aware rule as the arm's blend
            control["mixup_max_overlap"] = settings["mixup_max_overlap"]
    return control


def ceiling_runs(protocol: Protocol, base_seed: int) -> list[tuple[str, int]]:
    """The fully labeled runs, ``(folder, seed)``: ``fully_labeled`` at ``base_seed`` (the folder a single ceiling
    has always had), then ``seed<s>/fully_labeled`` for each further seed ``s``."""
    seeds = [base_seed + k for k in range(protocol.ceiling_seeds)]
    return [(FULLY_LABELED if s == base_seed else f"seed{s}/{FULLY_LABELED}", s) for s in seeds]


def ceilings_to_run(
    protocol: Protocol, base_seed: int, hidden_labels: bool, kind: str = FULLY_LABELED
) -> list[tuple[str, int]]:
    """The ceilings this invocation trains: none without hidden labels or when ``--only`` leaves them out, else
    ``--only-seeds``' seeds (``base_seed + k``). ``kind`` :data:`~.arms.FULLY_LABELED_CONTINUED`: their
    continuations for the arms' budget instead (``fully_labeled_continued``, ``seed<s>/fully_labeled_continued``)."""
    if not hidden_labels or not (protocol.runs(kind) or protocol.runs(FULLY_LABELED)):  # a ceiling with its run on
        return []
    seeds = protocol.chosen_seeds(base_seed, protocol.ceiling_seeds)
    chosen = [(name, seed) for name, seed in ceiling_runs(protocol, base_seed) if seed in seeds]
    return [(name if kind == FULLY_LABELED else f"{name}_continued", seed) for name, seed in chosen]


def arms_to_run(protocol: Protocol, arms: Sequence[Arm], base_seed: int, hidden_labels: bool) -> list[Arm]:
    """The continuations this invocation trains: ``--only``'s kinds (``variants``: the ``--variant`` arms),
    ``--only-seeds``' seeds (``base_seed + k``), and the oracle and the reviewed arms only where the unlabeled images
    have hidden labels."""
    seeds = protocol.chosen_seeds(base_seed, protocol.seeds)
    hidden = (ORACLE, REVIEWED)
    return [a for a in arms if protocol.runs_arm(a) and a.seed in seeds and (a.kind not in hidden or hidden_labels)]
