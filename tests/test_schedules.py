import pytest

from semiyolo.schedules import ramp_weight


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        # burn_in 2, warmup 4, value 1.0; epochs 0..7
        ("constant", [0, 0, 1, 1, 1, 1, 1, 1]),
        ("linear", [0, 0, 0.25, 0.5, 0.75, 1, 1, 1]),
        ("step", [0, 0, 0, 0, 0, 0, 1, 1]),
        # (1 - cos(pi k / 4)) / 2 for k = 1..4: 0.1464, 0.5, 0.8536, 1
        ("cosine", [0, 0, 0.1464466, 0.5, 0.8535534, 1, 1, 1]),
    ],
)
def test_schedule_values_at_chosen_epochs(kind, expected):
    got = [ramp_weight(e, 1.0, burn_in=2, warmup=4, kind=kind) for e in range(8)]
    assert got == pytest.approx(expected, abs=1e-6)


def test_document_000_defaults_linear_over_five_epochs_after_five_burn_in():
    # burn_in 5, warmup 5, lambda 1.0: epoch 4 -> 0, epoch 5 -> 0.2, epoch 9 -> 1.0
    assert ramp_weight(4, 1.0, 5, 5) == 0.0
    assert ramp_weight(5, 1.0, 5, 5) == pytest.approx(0.2)
    assert ramp_weight(9, 1.0, 5, 5) == pytest.approx(1.0)
    assert ramp_weight(5, 1.5, 5, 0) == 1.5  # no warm-up: full value at once


def test_bad_schedule_arguments():
    with pytest.raises(ValueError, match="schedule must be one of"):
        ramp_weight(0, 1.0, kind="exp")
    with pytest.raises(ValueError, match=">= 0"):
        ramp_weight(0, -1.0)
