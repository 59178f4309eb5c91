"""Property tests (hypothesis): the config loader answers every input with a config or a ConfigError, and the
losses are finite, non-negative and zero at their optimum."""

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from semiyolo.config import SemiConfig
from semiyolo.config_loading import load_config
from semiyolo.errors import ConfigError
from semiyolo.losses import (
    background_penalty,
    box_iou_paired,
    distribution_focal_loss,
    iou_loss,
    quality_focal_loss,
    sigmoid_focal_loss,
)

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(allow_nan=True),
    st.text(max_size=8),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
semi_keys = st.sampled_from([*SemiConfig.model_fields, "lamda_bg", "unknown"])


@FAST
@given(st.dictionaries(semi_keys, values, max_size=6), st.dictionaries(st.text(max_size=6), values, max_size=3))
def test_config_loader_returns_a_config_or_a_config_error(semi, top):
    raw = {"data": "d.yaml", **top, "semi": semi}
    try:
        cfg = load_config(raw)
    except ConfigError as err:
        assert str(err).startswith("config: invalid configuration")
    else:
        assert cfg.semi.lambda_bg >= 0 and cfg.semi.burn_in >= 0


finite = st.floats(-30, 30, allow_nan=False)


@FAST
@given(st.lists(st.tuples(finite, st.floats(0, 1)), min_size=1, max_size=20), st.floats(0, 5), st.floats(0, 1))
def test_focal_and_qfl_are_finite_and_non_negative(pairs, gamma, alpha):
    x = torch.tensor([p[0] for p in pairs], dtype=torch.float64)
    y = torch.tensor([p[1] for p in pairs], dtype=torch.float64)
    for loss in (sigmoid_focal_loss(x, y, alpha=alpha, gamma=gamma), quality_focal_loss(x, y, beta=gamma)):
        assert torch.isfinite(loss).all() and (loss >= -1e-12).all()


@FAST
@given(st.lists(st.floats(0.001, 0.999), min_size=1, max_size=10))
def test_qfl_is_zero_where_the_score_equals_the_quality(qualities):
    y = torch.tensor(qualities, dtype=torch.float64)
    assert quality_focal_loss(torch.logit(y), y).abs().max() < 1e-12


@FAST
@given(st.lists(st.tuples(st.sampled_from([0.0, 1.0]), st.floats(20, 30)), min_size=1, max_size=10))
def test_focal_is_zero_at_a_confident_correct_prediction(items):
    y = torch.tensor([i[0] for i in items], dtype=torch.float64)
    x = torch.tensor([i[1] for i in items], dtype=torch.float64) * (2 * y - 1)  # the right sign, |x| >= 20
    assert sigmoid_focal_loss(x, y).max() < 1e-15


@FAST
@given(st.integers(2, 17), st.data())
def test_dfl_is_non_negative_and_minimal_at_its_target(n_bins, data):
    target = data.draw(st.floats(0, n_bins - 1))
    logits = torch.tensor(data.draw(st.lists(finite, min_size=n_bins, max_size=n_bins)), dtype=torch.float64)
    loss = distribution_focal_loss(logits[None], torch.tensor([target], dtype=torch.float64))
    assert torch.isfinite(loss).all() and loss.item() >= 0
    # the optimal distribution puts (1 - f) and f on the two neighbouring bins: its loss is the binary entropy
    left = min(math.floor(target), n_bins - 2)
    f = target - left
    best = torch.full((n_bins,), -1e9, dtype=torch.float64)
    best[left], best[left + 1] = math.log(max(1 - f, 1e-300)), math.log(max(f, 1e-300))
    entropy = -sum(p * math.log(p) for p in (1 - f, f) if p > 0)
    assert distribution_focal_loss(best[None], torch.tensor([target], dtype=torch.float64)).item() == pytest.approx(
        entropy, abs=1e-9
    )


box = st.tuples(st.floats(0, 50), st.floats(0, 50), st.floats(0, 50), st.floats(0, 50)).map(
    lambda b: (min(b[0], b[2]), min(b[1], b[3]), max(b[0], b[2]), max(b[1], b[3]))
)


@FAST
@given(st.lists(st.tuples(box, box), min_size=1, max_size=10), st.sampled_from(["iou", "giou", "diou", "ciou"]))
def test_iou_family_is_bounded_and_zero_loss_on_identical_boxes(pairs, kind):
    a = torch.tensor([p[0] for p in pairs], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([p[1] for p in pairs], dtype=torch.float64)
    metric = box_iou_paired(a, b, kind)
    metric.sum().backward()
    assert torch.isfinite(metric).all() and torch.isfinite(a.grad).all()
    assert (metric <= 1 + 1e-9).all() and (metric >= -1 - 1e-9 - (1 if kind == "ciou" else 0)).all()
    # identical boxes: the loss is 0 up to the eps = 1e-7 in the denominators, i.e. about eps / area
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    assert (iou_loss(b, b, kind) <= 1e-9 + 4e-7 / area.clamp(min=1e-30)).all()


@FAST
@given(st.integers(1, 4), st.integers(1, 6), st.integers(1, 5), st.data())
def test_background_penalty_is_non_negative(batch, anchors, classes, data):
    logits = torch.tensor(
        data.draw(st.lists(finite, min_size=batch * anchors * classes, max_size=batch * anchors * classes))
    ).view(batch, anchors, classes)
    mask = torch.tensor(data.draw(st.lists(st.booleans(), min_size=batch * anchors, max_size=batch * anchors)))
    for mode in ("max", "focal"):
        value = background_penalty(logits, mask.view(batch, anchors), mode=mode)
        assert torch.isfinite(value) and value >= 0
