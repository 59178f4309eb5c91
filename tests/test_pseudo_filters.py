import math

import pytest
import torch

from semiyolo.errors import ConfigError
from semiyolo.pseudo import (
    CapFilter,
    Detections,
    DFLEntropyFilter,
    DSATFilter,
    ScoreFilter,
    build_filters,
    dfl_entropy,
    f1_optimal_threshold,
)
from semiyolo.pseudo.nms import nms_with_spread


def _dets(scores, classes=None, n_bins=None):
    n = len(scores)
    xy = torch.arange(n, dtype=torch.float32)[:, None] * 20
    return Detections(
        boxes=torch.cat((xy, xy, xy + 10, xy + 10), 1),
        scores=torch.tensor(scores, dtype=torch.float32),
        classes=torch.tensor(classes if classes is not None else [0] * n),
        bin_logits=torch.zeros(n, 4, n_bins) if n_bins else None,
        cluster_spread=torch.zeros(n),
    )


def test_score_filter_keeps_and_counts():
    f = ScoreFilter(threshold=0.5)
    kept = f(_dets([0.9, 0.4, 0.5]))
    assert kept.scores.tolist() == pytest.approx([0.9, 0.5])
    assert (f.kept, f.dropped) == (2, 1)


def test_f1_optimal_threshold_by_hand():
    # 5 predictions, best first, TP pattern 1 1 0 1 0, 4 objects: F1 at k kept = 2 TP_k / (k + 4)
    #   k=1: 0.400, k=2: 0.667, k=3: 0.571, k=4: 0.750, k=5: 0.667 -> keep 4 -> threshold 0.6
    scores = torch.tensor([0.7, 0.9, 0.5, 0.8, 0.6])  # unsorted on purpose
    is_tp = torch.tensor([False, True, False, True, True])
    assert f1_optimal_threshold(scores, is_tp, n_gt=4) == pytest.approx(0.6)
    assert f1_optimal_threshold(scores, torch.zeros(5, dtype=torch.bool), n_gt=4) == 1.0  # no TP: keep nothing
    assert f1_optimal_threshold(torch.zeros(0), torch.zeros(0, dtype=torch.bool), n_gt=4) is None


def test_dsat_update_smooths_bounds_and_skips_classes_without_labels():
    f = DSATFilter(num_classes=3, init_threshold=0.5, momentum=0.5, min_threshold=0.2, max_threshold=0.58)
    scores = torch.tensor([0.7, 0.9, 0.5, 0.8, 0.6, 0.95])
    classes = torch.tensor([0, 0, 0, 0, 0, 1])
    is_tp = torch.tensor([False, True, False, True, True, False])
    # class 0: optimum 0.6 -> 0.5 * 0.5 + 0.5 * 0.6 = 0.55; class 1: no TP -> 1.0 -> 0.75, bounded to 0.58;
    # class 2: no labels -> stays 0.5
    new = f.update(scores, classes, is_tp, gt_classes=torch.tensor([0, 0, 0, 0, 1]))
    assert new.tolist() == pytest.approx([0.55, 0.58, 0.5])
    kept = f(_dets([0.56, 0.56, 0.56], classes=[0, 1, 2]))
    assert kept.classes.tolist() == [0, 2]
    restored = DSATFilter(num_classes=3)
    restored.load_state_dict(f.state_dict())
    assert restored.thresholds.tolist() == pytest.approx([0.55, 0.58, 0.5]) and restored.kept == 2


def test_dfl_entropy_of_uniform_and_one_hot_distributions():
    uniform = torch.zeros(1, 4, 16)
    one_hot = torch.full((1, 4, 16), -100.0)
    one_hot[..., 3] = 100.0
    assert dfl_entropy(uniform).item() == pytest.approx(1.0)
    assert dfl_entropy(one_hot).item() == pytest.approx(0.0, abs=1e-6)
    # two equally likely bins out of 4: log 2 / log 4 = 0.5 on every side
    half = torch.full((1, 4, 4), -100.0)
    half[..., :2] = 0.0
    assert dfl_entropy(half).item() == pytest.approx(0.5, abs=1e-6)
    dets = _dets([0.9, 0.9], n_bins=16)
    dets.bin_logits[1] = one_hot[0]
    assert DFLEntropyFilter(0.5)(dets).scores.numel() == 1


def test_dfl_entropy_filter_needs_distributions():
    with pytest.raises(ConfigError, match="needs a head with DFL"):
        DFLEntropyFilter()(_dets([0.9]))


def test_nms_spread_by_hand():
    # Kept [0, 0, 10, 10] and the one it suppresses, [2, 0, 12, 10] (IoU 80 / 120 = 0.67), equal scores:
    # x1 in {0, 2} and x2 in {10, 12} have std 1, y's agree: spread = (1/10 + 0 + 1/10 + 0) / 4 = 0.05.
    # A lone box of another class has spread 0.
    boxes = torch.tensor([[0.0, 0, 10, 10], [2, 0, 12, 10], [0, 0, 10, 10]])
    keep, spread = nms_with_spread(boxes, torch.tensor([0.9, 0.9, 0.8]), torch.tensor([0, 0, 1]), iou_threshold=0.5)
    assert keep.tolist() == [0, 2]
    assert spread.tolist() == pytest.approx([0.05, 0.0], abs=1e-6)


def test_cap_filter_keeps_the_best_and_bounds_a_flood():
    assert CapFilter(2)(_dets([0.3, 0.9, 0.5, 0.8])).scores.tolist() == pytest.approx([0.9, 0.8])
    flood = Detections(torch.rand(100_000, 4), torch.rand(100_000), torch.zeros(100_000, dtype=torch.long))
    assert len(CapFilter(100)(flood)) == 100


def test_everything_filtered_out_leaves_an_empty_set():
    chain = build_filters([{"name": "score", "params": {"threshold": 0.99}}], num_classes=1, has_dfl=False)
    kept = chain(_dets([0.5, 0.6]))
    assert len(kept) == 0 and kept.boxes.shape == (0, 4)
    assert chain.stats() == {"0_score/kept": 0, "0_score/dropped": 2}


def test_document_000_chain_builds_and_round_trips_its_state():
    specs = [
        {"name": "dsat", "params": {"num_classes": 7, "init_threshold": 0.5}},
        {"name": "dfl_entropy", "params": {"threshold": 0.5}},
    ]
    chain = build_filters(specs, num_classes=7, has_dfl=True)
    assert [f.name for f in chain] == ["dsat", "dfl_entropy"]
    chain(_dets([0.6, 0.4], n_bins=16))
    other = build_filters(specs, num_classes=7, has_dfl=True)
    other.load_state_dict(chain.state_dict())
    assert other.state_dict() == chain.state_dict()
    with pytest.raises(ValueError, match="filter state is for"):
        build_filters(specs[:1], 7, True).load_state_dict(chain.state_dict())


@pytest.mark.parametrize(
    ("spec", "has_dfl", "message"),
    [
        ({"name": "dfl_entropy"}, False, r"semi.filters.0 \(dfl_entropy\): the model's head has no DFL"),
        ({"name": "dsat", "params": {"num_classes": 5}}, True, "num_classes is 5, the dataset has 3"),
        ({"name": "score", "params": {"threshold": 1.5}}, True, r"score.threshold must lie in \[0, 1\]"),
        ({"name": "score", "params": {"thresh": 0.5}}, True, r"unknown parameter\(s\) \['thresh'\]"),
        ({"name": "dsat", "params": {"init_threshold": 0.95}}, True, "min_threshold <= init_threshold"),
        ({"name": "cap", "params": {"max_per_image": 0}}, True, "max_per_image must be >= 1"),
        ({"name": "blur"}, True, "unknown filter"),
    ],
)
def test_bad_filter_configuration(spec, has_dfl, message):
    with pytest.raises(ConfigError, match=message):
        build_filters([spec], num_classes=3, has_dfl=has_dfl)


def test_entropy_normaliser_is_log_bins():
    assert math.isclose(dfl_entropy(torch.zeros(2, 4, 7)).mean().item(), 1.0, rel_tol=1e-6)


def test_the_filters_raise_value_errors_naming_the_parameter():
    from semiyolo.pseudo import DEFAULT_FILTERS, FilterParamError, make_filter

    with pytest.raises(FilterParamError, match=r"score.threshold must lie in \[0, 1\], got 1.5") as err:
        ScoreFilter(threshold=1.5)
    assert err.value.param == "threshold" and not isinstance(err.value, ConfigError)  # the config layer adds keys
    with pytest.raises(FilterParamError, match=r"unknown parameter\(s\) \['thresh'\]") as err:
        make_filter("score", {"thresh": 0.5})
    assert err.value.param is None
    with pytest.raises(ValueError, match="unknown filter; known: score, dsat, dfl_entropy, nms_unc, cap"):
        make_filter("blur", {})
    with pytest.raises(ValueError, match="num_classes"):  # dsat has no default class count
        make_filter("dsat", {})
    chain = build_filters(DEFAULT_FILTERS, num_classes=3, has_dfl=False)
    assert [f.name for f in chain] == ["score", "cap"] and chain.filters[0].threshold == 0.5
