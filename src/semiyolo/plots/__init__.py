"""Figures of the loss library (:mod:`semiyolo.plots.losses`) and of a run's semi-supervised columns
(:mod:`semiyolo.plots.run`)."""

from .losses import FIGURES, loss_shares, write_loss_figures
from .run import semi_panels, write_semi_figure

__all__ = ["FIGURES", "loss_shares", "semi_panels", "write_loss_figures", "write_semi_figure"]
