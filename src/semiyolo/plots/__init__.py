"""Figures of the loss library (see :mod:`semiyolo.plots.losses`)."""

from .losses import FIGURES, loss_shares, write_loss_figures

__all__ = ["FIGURES", "loss_shares", "write_loss_figures"]
