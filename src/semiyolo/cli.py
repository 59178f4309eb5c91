"""The ``semiyolo`` command line. Every command answers ``--help``; user errors exit non-zero with one line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


def _plot_losses(args: argparse.Namespace) -> int:
    from .plots import write_loss_figures

    for path in write_loss_figures(args.out):
        print(path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="semiyolo",
        description="Semi-supervised Ultralytics YOLO with a background penalty, and a library of detection losses.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    plot = commands.add_parser("plot", help="write figures", description="Write figures as PNG files.")
    plots = plot.add_subparsers(dest="figure", required=True, metavar="FIGURE")
    losses = plots.add_parser(
        "losses",
        help="the loss library's figures (focal vs p_t, CE/FL shares, QFL, DFL, background-penalty gradient)",
        description="Write the source documents' loss figures, computed by semiyolo.losses, as PNG files.",
    )
    losses.add_argument("--out", type=Path, default=Path("runs/loss-figures"), help="output folder (created)")
    losses.set_defaults(handler=_plot_losses)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (ValueError, FileNotFoundError, NotADirectoryError, PermissionError) as err:
        print(f"semiyolo {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
