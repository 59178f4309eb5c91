"""Pseudo-labels: teacher detections, their filters (score, DSAT, DFL entropy, NMS uncertainty, cap)."""

from .dsat import f1_optimal_threshold
from .filters import (
    DEFAULT_FILTERS,
    FILTERS,
    CapFilter,
    DFLEntropyFilter,
    DSATFilter,
    FilterChain,
    FilterParamError,
    NMSUncertaintyFilter,
    PseudoLabelFilter,
    ScoreFilter,
    build_filters,
    dfl_entropy,
    make_filter,
)
from .predictions import Detections

__all__ = [
    "DEFAULT_FILTERS",
    "FILTERS",
    "CapFilter",
    "DFLEntropyFilter",
    "DSATFilter",
    "Detections",
    "FilterChain",
    "FilterParamError",
    "NMSUncertaintyFilter",
    "PseudoLabelFilter",
    "ScoreFilter",
    "build_filters",
    "dfl_entropy",
    "f1_optimal_threshold",
    "make_filter",
]
