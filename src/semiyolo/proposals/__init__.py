"""Region proposals: Selective Search (Uijlings et al., IJCV 2013)."""

from .selective_search import (
    Region,
    adjacent_pairs,
    fill_similarity,
    hierarchical_grouping,
    histogram_intersection,
    selective_search,
    similarity,
    size_similarity,
)

__all__ = [
    "Region",
    "adjacent_pairs",
    "fill_similarity",
    "hierarchical_grouping",
    "histogram_intersection",
    "selective_search",
    "similarity",
    "size_similarity",
]
