"""The ``semiyolo`` command line. Every command answers ``--help``; user errors exit with status 2 and one line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .cli_parser import OVERRIDE, build_parser
from .errors import RunInterrupted, TrainingDiverged, UserInputError
from .runfiles import last_weights


def _plot_losses(args: argparse.Namespace) -> int:
    from .plots import write_loss_figures

    for path in write_loss_figures(args.out):
        print(path)
    return 0


def _train(args: argparse.Namespace) -> int:
    from .integrations.ultralytics import train

    config, overrides = args.config, args.overrides
    if OVERRIDE.match(config) and not Path(config).is_file():  # `semiyolo train data=... model=...`: no file
        config, overrides = None, [config, *overrides]
    summary = train(config, overrides)
    print(f"Run folder: {summary['save_dir']}")
    return 0


def _cfg(args: argparse.Namespace) -> int:
    from .config import config_template

    print(config_template(), end="")
    return 0


def _generate(args: argparse.Namespace) -> int:
    from .data import DigitsSpec, NucleiSpec, SynthSpec, write_dataset, write_digits_dataset, write_nuclei_dataset

    spec_cls, write = {
        "synth": (SynthSpec, write_dataset),
        "digits": (DigitsSpec, write_digits_dataset),
        "nuclei": (NucleiSpec, write_nuclei_dataset),
    }[args.data_command]
    spec = spec_cls(
        images=args.images,
        imgsz=args.imgsz,
        seed=args.seed,
        val_fraction=args.val_fraction,
        test_images=args.test_images,
    )
    print(write(args.out, spec))
    return 0


def _pseudo_label(args: argparse.Namespace) -> int:
    from .config_loading import read_filters
    from .integrations.ultralytics.offline import pseudo_label_folder
    from .pseudo import DEFAULT_FILTERS, score_threshold_filters

    filters = DEFAULT_FILTERS
    if args.filters:
        filters = read_filters(args.filters)
    elif args.conf is not None:
        filters = score_threshold_filters(args.conf)
    summary = pseudo_label_folder(
        args.weights,
        args.source,
        args.out,
        filters,
        imgsz=args.imgsz,
        batch=args.batch,
        min_score=args.min_score,
        overwrite=args.overwrite,
        teacher_flip=args.teacher_flip,
        teacher_scale=args.teacher_scale,
    )
    skipped = f" ({summary['skipped']} unreadable images skipped, listed in summary.json)" if summary["skipped"] else ""
    done = f"{summary['pseudo_labels']} pseudo-labels on {summary['images']} images at {summary['imgsz']} px"
    print(f"{done} written to {args.out}{skipped}")
    return 0


def _split(args: argparse.Namespace) -> int:
    from .data.split import split_dataset, split_report

    config = split_dataset(args.data, args.fraction, args.seed, args.out)
    print(f"split of {args.data} (fraction {args.fraction}, seed {args.seed}) written to {config.parent}")
    print("\n".join(split_report(config.parent)))
    print(f"run it with: semiyolo train {config}")
    return 0


def _review_source(args: argparse.Namespace):
    """``(source, reviewed folder)`` for ``semiyolo review``: a data.yaml's split, a run folder (it has
    ``weights/last.pt``) labelled by its teacher, else a pseudo-label output or a YOLO split folder."""
    from .review.sources import data_yaml_split, open_folder_source, read_names

    names = read_names(args.names) if args.names else None
    if args.source.suffix.lower() in (".yaml", ".yml"):
        folder, yaml_names = data_yaml_split(args.source, args.split or "train")
        reviewed = args.reviewed or args.source.parent / "reviewed"
        return open_folder_source(folder, reviewed, names or yaml_names), reviewed
    if args.split is not None:
        raise UserInputError(f"--split {args.split}: only for a data.yaml SOURCE; {args.source} is a folder")
    if not last_weights(args.source).is_file():
        reviewed = args.reviewed or args.source / "reviewed"
        return open_folder_source(args.source, reviewed, names), reviewed
    from .integrations.ultralytics.review_source import RunSource, read_semi_state, run_semi_settings

    state = read_semi_state(args.source)
    semi = run_semi_settings(args.source, args.config, state)
    reviewed = args.reviewed or Path(semi.reviewed or args.source / "reviewed")
    source = RunSource(args.source, semi, reviewed, state)
    if names is not None:
        if len(names) != len(source.names):
            raise UserInputError(f"--names: {args.names} has {len(names)} classes, the run's model {len(source.names)}")
        source.names = names
    return source, reviewed


def _review(args: argparse.Namespace) -> int:
    from .review.app import create_app
    from .review.server import allowed_hosts, check_address, serve
    from .review.store import ReviewStore

    check_address(args.host, args.port)
    source, reviewed = _review_source(args)
    print(f"semiyolo review: {source.describe()}; reviewed labels go to {reviewed}", file=sys.stderr)
    if source.refused:
        print(f"semiyolo review: {source.refused} image(s) linked from outside the folder: not served", file=sys.stderr)
    hosts = allowed_hosts(args.host, args.allow_host)
    app = create_app(source, ReviewStore(reviewed), max_side=args.max_side, allowed_hosts=hosts)
    serve(app, args.host, args.port)
    return 0


def _ablate(args: argparse.Namespace) -> int:
    from .experiments.ablate import Protocol, run_ablation

    protocol = Protocol(
        steps=args.steps,
        seeds=args.seeds,
        lambdas=tuple(args.lambdas),
        focal=args.focal,
        offline=not args.no_offline,
        oracle=not args.no_oracle,
        continue_lr=args.continue_lr,
        only=tuple(args.only or ()),
        only_seeds=tuple(args.only_seeds or ()),
        ceiling_seeds=args.ceiling_seeds,
        variants=tuple(args.variant or ()),
        controls=not args.no_controls,
        lr_scales=tuple(args.lr_scales),
        splits=args.splits,
        only_splits=tuple(args.only_splits or ()),
        review_k=tuple(args.review_k or ()),
        review_orders=tuple(args.review_orders),
        report_only=args.report_only,
    )
    run_ablation(args.config, args.out, protocol, overrides=args.overrides)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .experiments.demo import run_demo

    run_demo(
        args.out,
        images=args.images,
        imgsz=args.imgsz,
        epochs=args.epochs,
        steps=args.steps,
        batch=args.batch,
        fraction=args.fraction,
        seed=args.seed,
        ceiling=args.ceiling,
        test_images=args.test_images,
    )
    return 0


HANDLERS = {  # what each command runs, by the name cli_parser gives it
    "demo": _demo,
    "train": _train,
    "cfg": _cfg,
    "pseudo_label": _pseudo_label,
    "ablate": _ablate,
    "review": _review,
    "split": _split,
    "generate": _generate,
    "plot_losses": _plot_losses,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser(HANDLERS).parse_args(argv)
    try:
        return args.handler(args)
    except (UserInputError, FileNotFoundError, NotADirectoryError, PermissionError) as err:
        print(f"semiyolo {args.command}: error: {err}", file=sys.stderr)
        return 2
    except TrainingDiverged as err:
        print(f"semiyolo {args.command}: training stopped: {err}", file=sys.stderr)
        return 1
    except RunInterrupted as err:
        print(f"semiyolo {args.command}: {err}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
