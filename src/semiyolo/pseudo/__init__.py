"""Pseudo-labels: teacher detections, their filters (score, DSAT, DFL entropy, NMS uncertainty, cap)."""

from .dsat import f1_optimal_threshold
from .filters import (
    FILTERS,
    CapFilter,
    DFLEntropyFilter,
    DSATFilter,
    FilterChain,
    NMSUncertaintyFilter,
    PseudoLabelFilter,
    ScoreFilter,
    build_filters,
    dfl_entropy,
)
from .predictions import Detections

__all__ = [
    "FILTERS",
    "CapFilter",
    "DFLEntropyFilter",
    "DSATFilter",
    "Detections",
    "FilterChain",
    "NMSUncertaintyFilter",
    "PseudoLabelFilter",
    "ScoreFilter",
    "build_filters",
    "dfl_entropy",
    "f1_optimal_threshold",
]
