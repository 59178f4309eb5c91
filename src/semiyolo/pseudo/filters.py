"""Pseudo-label filters: each a small unit with ``state_dict()``, chained as configured.

A filter maps :class:`Detections` (one image's) or :class:`BatchedDetections` (a batch's at once) to a keep mask
and counts what it kept and dropped. Configuration::

    filters:
      - {name: score, params: {threshold: 0.5}}
      - {name: dsat, params: {num_classes: 7, init_threshold: 0.5}}
      - {name: dfl_entropy, params: {threshold: 0.5}}
      - {name: nms_unc, params: {threshold: 0.15}}
      - {name: cap, params: {max_per_image: 30}}

The filters check their parameters and raise :class:`ValueError` (:class:`FilterParamError` naming the parameter);
:func:`build_filters`, which reads the configuration, turns that into a :class:`ConfigError` naming the key.
"""

from __future__ import annotations

import inspect
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from ..errors import ConfigError
from .dsat import f1_optimal_threshold
from .predictions import BatchedDetections, Detections

DEFAULT_FILTERS: tuple[dict[str, Any], ...] = (
    {"name": "score", "params": {"threshold": 0.5}},
    {"name": "cap", "params": {"max_per_image": 100}},
)  # the chain of ``semi.filters`` and of ``semiyolo pseudo-label`` when none is given


class FilterParamError(ValueError):
    """A filter parameter that is unknown or out of range; ``param`` names it (None: the parameters together,
    such as DSAT's ordered thresholds)."""

    def __init__(self, param: str | None, message: str) -> None:
        super().__init__(message)
        self.param = param


class PseudoLabelFilter(ABC):
    """Base: ``keep_mask(dets) -> Tensor[N] bool``; ``__call__`` applies it and counts."""

    name = "filter"
    judges = "label"  # "label": whether the object is there; "localisation": whether its box is right

    def __init__(self) -> None:
        self.kept = 0
        self.dropped = 0

    @abstractmethod
    def keep_mask(self, dets: Detections) -> Tensor:
        """Which detections to keep."""

    def __call__(self, dets: Detections) -> Detections:
        return dets.select(self.counted_mask(dets))

    def counted_mask(self, dets: Detections) -> Tensor:
        """:meth:`keep_mask`, counted in ``kept`` / ``dropped``."""
        keep = self.keep_mask(dets)
        n_kept = int(keep.sum())
        self.kept += n_kept
        self.dropped += len(dets) - n_kept
        return keep

    def reset_counts(self) -> None:
        self.kept = self.dropped = 0

    def state_dict(self) -> dict[str, Any]:
        return {"kept": self.kept, "dropped": self.dropped}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.kept, self.dropped = int(state["kept"]), int(state["dropped"])


def _check_unit(filter_name: str, param: str, value: float) -> float:
    if not 0 <= value <= 1:
        raise FilterParamError(param, f"{filter_name}.{param} must lie in [0, 1], got {value!r}")
    return float(value)


class ScoreFilter(PseudoLabelFilter):
    """Keep detections whose score is at least ``threshold``."""

    name = "score"

    def __init__(self, threshold: float = 0.5) -> None:
        super().__init__()
        self.threshold = _check_unit("score", "threshold", threshold)

    def keep_mask(self, dets: Detections) -> Tensor:
        return dets.scores >= self.threshold


class DSATFilter(PseudoLabelFilter):
    """Dynamic self-adaptive threshold (S4OD): a per-class score threshold chosen, on labeled images, as the one
    that maximises the F1 (F-beta with ``beta``) of teacher predictions against the labels; re-estimated every
    ``update_every`` epochs, smoothed by ``momentum`` and kept in ``[min_threshold, max_threshold]``.

    Until the first estimate every class uses ``init_threshold``. :meth:`update` takes per-class scored
    predictions with their true-positive flags and the number of labeled objects.
    """

    name = "dsat"

    def __init__(
        self,
        num_classes: int,
        init_threshold: float = 0.5,
        momentum: float = 0.5,
        min_threshold: float = 0.2,
        max_threshold: float = 0.9,
        update_every: int = 1,
        beta: float = 1.0,
    ) -> None:
        super().__init__()
        if not beta > 0:
            raise FilterParamError("beta", f"dsat.beta must be > 0, got {beta!r}")
        self.beta = float(beta)
        if num_classes < 1:
            raise FilterParamError("num_classes", f"dsat.num_classes must be >= 1, got {num_classes!r}")
        _check_unit("dsat", "momentum", momentum)
        if not 0 <= min_threshold <= init_threshold <= max_threshold <= 1:
            raise FilterParamError(
                None,
                "dsat thresholds must satisfy 0 <= min_threshold <= init_threshold <= max_threshold <= 1, got "
                f"{min_threshold}, {init_threshold}, {max_threshold}",
            )
        if update_every < 1:
            raise FilterParamError("update_every", f"dsat.update_every must be >= 1, got {update_every!r}")
        self.momentum, self.bounds, self.update_every = momentum, (min_threshold, max_threshold), update_every
        self.thresholds = torch.full((num_classes,), float(init_threshold))

    def keep_mask(self, dets: Detections) -> Tensor:
        return dets.scores >= self.thresholds.to(dets.scores.device)[dets.classes]

    def update(self, scores: Tensor, classes: Tensor, is_tp: Tensor, gt_classes: Tensor) -> Tensor:
        """Move each class's threshold towards its F1-optimal score; classes without labels keep theirs.

        Args:
            scores, classes, is_tp: ``Tensor[P]``: teacher predictions on the held-out labeled images, and
                whether each matches an unmatched object of its class (IoU >= 0.5, best score first).
            gt_classes: ``Tensor[G]``, the classes of the held-out objects.
        Returns:
            The new thresholds, ``Tensor[C]``.
        """
        for c in range(self.thresholds.numel()):
            n_gt = int((gt_classes == c).sum())
            if n_gt == 0:
                continue
            best = f1_optimal_threshold(scores[classes == c], is_tp[classes == c], n_gt, self.beta)
            if best is None:
                continue
            smoothed = self.momentum * float(self.thresholds[c]) + (1 - self.momentum) * best
            self.thresholds[c] = min(max(smoothed, self.bounds[0]), self.bounds[1])
        return self.thresholds.clone()

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "thresholds": self.thresholds.tolist()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.thresholds = torch.tensor(state["thresholds"], dtype=torch.float32)


def dfl_entropy(bin_logits: Tensor) -> Tensor:
    """Localisation uncertainty of DFL boxes: the softmax entropy of each side's distribution divided by
    ``log(n_bins)`` (so uniform = 1, one-hot = 0), averaged over the 4 sides. ``Tensor[N, 4, n_bins] -> [N]``."""
    if bin_logits.ndim != 3 or bin_logits.shape[1] != 4 or bin_logits.shape[2] < 2:
        raise ValueError(f"bin_logits must have shape (N, 4, n_bins >= 2), got {tuple(bin_logits.shape)}")
    log_p = torch.log_softmax(bin_logits.float(), dim=-1)
    entropy = -(log_p.exp() * log_p).sum(-1)
    return (entropy / math.log(bin_logits.shape[-1])).mean(-1)


class DFLEntropyFilter(PseudoLabelFilter):
    """Drop boxes whose normalised DFL entropy (:func:`dfl_entropy`) exceeds ``threshold``; needs a DFL head."""

    name = "dfl_entropy"
    judges = "localisation"

    def __init__(self, threshold: float = 0.5) -> None:
        super().__init__()
        self.threshold = _check_unit("dfl_entropy", "threshold", threshold)

    def keep_mask(self, dets: Detections) -> Tensor:
        if dets.bin_logits is None:
            raise ConfigError("dfl_entropy needs a head with DFL box distributions (reg_max > 1)")
        return dfl_entropy(dets.bin_logits) <= self.threshold


class NMSUncertaintyFilter(PseudoLabelFilter):
    """S4OD's NMS-UNC: drop boxes whose NMS cluster (the kept box and those it suppressed) spreads more than
    ``threshold`` (see :func:`semiyolo.pseudo.nms.nms_with_spread`)."""

    name = "nms_unc"
    judges = "localisation"

    def __init__(self, threshold: float = 0.15) -> None:
        super().__init__()
        if not threshold >= 0:
            raise FilterParamError("threshold", f"nms_unc.threshold must be >= 0, got {threshold!r}")
        self.threshold = float(threshold)

    def keep_mask(self, dets: Detections) -> Tensor:
        if dets.cluster_spread is None:
            raise ValueError("nms_unc needs detections from nms_with_spread (cluster_spread is missing)")
        return dets.cluster_spread <= self.threshold


class CapFilter(PseudoLabelFilter):
    """Keep at most ``max_per_image`` detections per image, the best scores first, ties in the detections' order
    (bounds memory on floods). On :class:`BatchedDetections`, each image's own best, at once."""

    name = "cap"

    def __init__(self, max_per_image: int = 100) -> None:
        super().__init__()
        if max_per_image < 1:
            raise FilterParamError("max_per_image", f"cap.max_per_image must be >= 1, got {max_per_image!r}")
        self.max_per_image = int(max_per_image)

    def keep_mask(self, dets: Detections | BatchedDetections) -> Tensor:
        keep = torch.zeros(len(dets), dtype=torch.bool, device=dets.scores.device)
        if isinstance(dets, Detections):
            keep[dets.scores.argsort(descending=True, stable=True)[: self.max_per_image]] = True
            return keep
        order = dets.scores.argsort(descending=True, stable=True)
        order = order[dets.image[order].argsort(stable=True)]  # image by image, best first, ties in row order
        counts = dets.counts()
        rank = torch.arange(len(dets), device=keep.device) - (counts.cumsum(0) - counts)[dets.image[order]]
        keep[order[rank < self.max_per_image]] = True
        return keep


FILTERS: dict[str, type[PseudoLabelFilter]] = {
    f.name: f for f in (ScoreFilter, DSATFilter, DFLEntropyFilter, NMSUncertaintyFilter, CapFilter)
}


class FilterChain:
    """Filters applied in order; ``stats()`` gives kept / dropped per filter (and DSAT's thresholds), and the counts
    of the rules that change the tiers after the filters (``rule_counts``, e.g. ``agreement_demoted``)."""

    def __init__(self, filters: Sequence[PseudoLabelFilter]) -> None:
        self.filters = list(filters)
        self.rule_counts: dict[str, int] = {}

    def __call__(self, dets: Detections) -> Detections:
        for f in self.filters:
            dets = f(dets)
        return dets

    def __iter__(self):
        return iter(self.filters)

    def find(self, cls: type[PseudoLabelFilter]) -> PseudoLabelFilter | None:
        return next((f for f in self.filters if isinstance(f, cls)), None)

    def stats(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for i, f in enumerate(self.filters):
            out[f"{i}_{f.name}/kept"], out[f"{i}_{f.name}/dropped"] = f.kept, f.dropped
        return {**out, **self.rule_counts}

    def count(self, rule: str, n: int) -> None:
        """``n`` more pseudo-labels changed by ``rule`` (0: the rule's count joins the stats from now on)."""
        self.rule_counts[rule] = self.rule_counts.get(rule, 0) + n

    def reset_counts(self) -> None:
        for f in self.filters:
            f.reset_counts()
        self.rule_counts = dict.fromkeys(self.rule_counts, 0)

    def state_dict(self) -> list[dict[str, Any]]:
        return [{"name": f.name, **f.state_dict()} for f in self.filters]

    def load_state_dict(self, states: list[dict[str, Any]]) -> None:
        names = [s["name"] for s in states]
        if names != [f.name for f in self.filters]:
            raise ValueError(f"filter state is for {names}, this chain is {[f.name for f in self.filters]}")
        for f, s in zip(self.filters, states, strict=True):
            f.load_state_dict(s)


def make_filter(name: str, params: Mapping[str, Any]) -> PseudoLabelFilter:
    """The filter ``name`` (a key of :data:`FILTERS`) with ``params``.

    Raises:
        ValueError: an unknown name or a parameter of the wrong type; :class:`FilterParamError` for an unknown
            parameter or a value out of range.
    """
    if name not in FILTERS:
        raise ValueError(f"unknown filter; known: {', '.join(FILTERS)}")
    cls = FILTERS[name]
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
    unknown = sorted(set(params) - accepted)
    if unknown:
        raise FilterParamError(None, f"unknown parameter(s) {unknown}; accepted: {sorted(accepted)}")
    try:
        return cls(**params)
    except TypeError as err:  # a missing argument, or a value of the wrong type
        raise ValueError(str(err)) from None


def build_filters(
    specs: Sequence[Any], num_classes: int | None, has_dfl: bool | None, classes_from: str = "the dataset"
) -> FilterChain:
    """A chain from config specs (objects or dicts with ``name`` and ``params``).

    ``dsat`` gets ``num_classes`` (the class count of ``classes_from``, named in errors) unless given. ``None``
    for ``num_classes`` or ``has_dfl`` means not known yet (the config's own checks, before the dataset and the
    model are read): the checks that need it are skipped, and ``dsat`` is built for one class if not told.

    Raises:
        ConfigError: naming the key (``semi.filters.<i>``, ``semi.filters.<i>.params`` or
            ``semi.filters.<i>.params.<param>``) and the filter:
            an unknown name, an unknown or bad parameter, ``dsat`` for another class count, ``dfl_entropy`` on a
            head without DFL.
    """
    filters = []
    for i, spec in enumerate(specs):
        name = spec["name"] if isinstance(spec, dict) else spec.name
        params = dict(spec.get("params", {}) if isinstance(spec, dict) else spec.params)
        try:
            filters.append(_build_filter(name, params, num_classes, has_dfl, classes_from))
        except ValueError as err:
            raise ConfigError(f"{_filter_key(i, err)} ({name}): {err}") from None
    return FilterChain(filters)


def score_threshold_filters(threshold: float) -> list[dict[str, Any]]:
    """What ``semiyolo pseudo-label --conf X`` means: the default chain with the score filter's threshold set to X
    (a box the teacher keeps after NMS becomes a pseudo-label when its class score is at least X; at most 100 an
    image, the best first)."""
    score = {"name": ScoreFilter.name, "params": {"threshold": threshold}}
    return [score if spec["name"] == ScoreFilter.name else spec for spec in DEFAULT_FILTERS]


def nothing_kept_reason(chain: FilterChain, counts: Mapping[str, float], min_score_knob: str, filter_key: str) -> str:
    """Why no pseudo-label survived, naming the knob that stopped the candidates: the first filter that dropped every
    candidate that reached it (``filter_key`` formatted with its index, with its threshold), or, when no candidate
    reached the filters, the score floor before NMS (``min_score_knob``, its name and value). ``counts`` are the
    chain's :meth:`FilterChain.stats` (summed over ranks in training)."""
    for index, item in enumerate(chain):
        kept, dropped = counts.get(f"{index}_{item.name}/kept", 0), counts.get(f"{index}_{item.name}/dropped", 0)
        if kept:
            continue
        if not dropped:
            break
        return (
            f"{filter_key.format(index)} ({item.name}, {_setting(item)}) dropped all {dropped:g} candidates that "
            "reached it: lower its threshold"
        )
    else:
        if chain.filters:
            return "the filters kept candidates, but none became a pseudo-label"
    return (
        f"no candidate reached the filters (each kept 0, dropped 0): the teacher scored nothing above "
        f"{min_score_knob}: lower it"
    )


def _setting(item: PseudoLabelFilter) -> str:
    """A filter's threshold(s) as the config names them."""
    if isinstance(item, DSATFilter):
        return f"thresholds {[round(float(t), 3) for t in item.thresholds]}"
    if isinstance(item, CapFilter):
        return f"max_per_image {item.max_per_image}"
    return f"threshold {getattr(item, 'threshold', '?'):g}"


def _filter_key(index: int, err: ValueError) -> str:
    """The key an error is about: the filter, its parameters, or one parameter."""
    if not isinstance(err, FilterParamError):
        return f"semi.filters.{index}"
    return f"semi.filters.{index}.params" + (f".{err.param}" if err.param else "")


def _build_filter(
    name: str, params: dict[str, Any], num_classes: int | None, has_dfl: bool | None, classes_from: str
) -> PseudoLabelFilter:
    if name == DSATFilter.name:
        params.setdefault("num_classes", 1 if num_classes is None else num_classes)
        if num_classes is not None and params["num_classes"] != num_classes:
            message = f"num_classes is {params['num_classes']}, {classes_from} has {num_classes}"
            raise FilterParamError("num_classes", message)
    if name == DFLEntropyFilter.name and has_dfl is False:
        raise ValueError("the model's head has no DFL distributions (reg_max = 1)")
    return make_filter(name, params)
