import math

import matplotlib.image
import numpy as np
import pytest

from semiyolo.plots import FIGURES, loss_shares, write_loss_figures

NAMES = ["focal_vs_pt", "easy_vs_hard_share", "qfl_shape", "dfl_shape", "bg_penalty_grad"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def figures():
    return {name: build() for name, build in FIGURES.items()}


def test_write_loss_figures_writes_five_readable_pngs(tmp_path):
    out = tmp_path / "nested" / "figs"
    paths = write_loss_figures(out)
    assert [p.name for p in paths] == [f"{n}.png" for n in NAMES]
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in paths)
    for path in paths:
        data = path.read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 10_000, path
        assert matplotlib.image.imread(path).shape[1] > 300, path


def test_every_axis_has_title_and_labels(figures):
    assert list(figures) == NAMES
    for name, fig in figures.items():
        assert fig.axes, name
        for ax in fig.axes:
            assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title(), name
            assert ax.get_legend() is not None, name


def test_loss_shares_match_hand_values():
    neg_ce, pos_ce = 1e6 * -math.log(0.99), 10 * -math.log(0.01)  # 10050.34 and 46.05
    assert loss_shares(0.0) == pytest.approx((neg_ce / (neg_ce + pos_ce), pos_ce / (neg_ce + pos_ce)), rel=1e-9)
    assert loss_shares(0.0) == pytest.approx((0.9954, 0.0046), abs=1e-4)
    neg_fl, pos_fl = neg_ce * 0.01**2, pos_ce * 0.99**2
    assert loss_shares(2.0) == pytest.approx((neg_fl / (neg_fl + pos_fl), pos_fl / (neg_fl + pos_fl)), rel=1e-9)


def test_share_figure_writes_the_computed_percentages(figures):
    texts = {t.get_text() for t in figures["easy_vs_hard_share"].axes[0].texts}
    expected = {f"{100 * s:.2f} %" for gamma in (0.0, 2.0) for s in loss_shares(gamma)}
    assert expected == {"99.54 %", "0.46 %", "2.18 %", "97.82 %"}
    assert expected <= texts


def test_qfl_minimum_markers_sit_at_the_target(figures):
    markers = [
        line for line in figures["qfl_shape"].axes[0].lines if line.get_marker() == "o" and len(line.get_xdata())
    ]
    xs = [float(np.asarray(m.get_xdata())[0]) for m in markers]
    assert xs == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0], abs=2e-3)


def test_background_gradients_match_closed_forms(figures):
    bce, max_mode, focal = figures["bg_penalty_grad"].axes[0].lines[:3]
    sigma = np.asarray(bce.get_xdata())
    np.testing.assert_allclose(bce.get_ydata(), sigma, atol=1e-9)
    np.testing.assert_allclose(max_mode.get_ydata(), sigma * (1 - sigma), atol=1e-9)
    expected_focal = 2 * sigma**2 * (1 - sigma) * -np.log1p(-sigma) + sigma**3  # d/dx sigma^2 softplus(x)
    np.testing.assert_allclose(focal.get_ydata(), expected_focal, atol=1e-9)
