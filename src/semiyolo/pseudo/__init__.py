"""Pseudo-labels: teacher detections, their filters (score, DSAT, DFL entropy, NMS uncertainty, cap), tiers, dense
targets, the views' agreement and the trust estimate."""

from .agreement import ViewAgreement, agreement_conflict, tiers_by_agreement, view_agreement
from .dense import DenseTargets, dense_geometry_conflict, uses_dense_targets
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
    nothing_kept_reason,
    score_threshold_filters,
)
from .predictions import BatchedDetections, Detections
from .tiers import (
    PSEUDO_TARGETS,
    UNCERTAIN_TARGETS,
    Tiers,
    batched_soft_targets,
    soft_targets,
    soft_uncertain,
    split_tiers,
)
from .trust import TrustCounts, TrustWeights, count_trust, coverage_floor, object_best_scores, trust_weights

__all__ = [
    "DEFAULT_FILTERS",
    "FILTERS",
    "PSEUDO_TARGETS",
    "UNCERTAIN_TARGETS",
    "BatchedDetections",
    "CapFilter",
    "DFLEntropyFilter",
    "DSATFilter",
    "DenseTargets",
    "Detections",
    "FilterChain",
    "FilterParamError",
    "NMSUncertaintyFilter",
    "PseudoLabelFilter",
    "ScoreFilter",
    "Tiers",
    "TrustCounts",
    "TrustWeights",
    "ViewAgreement",
    "agreement_conflict",
    "batched_soft_targets",
    "build_filters",
    "count_trust",
    "coverage_floor",
    "dense_geometry_conflict",
    "dfl_entropy",
    "f1_optimal_threshold",
    "make_filter",
    "nothing_kept_reason",
    "object_best_scores",
    "score_threshold_filters",
    "soft_targets",
    "soft_uncertain",
    "split_tiers",
    "tiers_by_agreement",
    "trust_weights",
    "uses_dense_targets",
    "view_agreement",
]
