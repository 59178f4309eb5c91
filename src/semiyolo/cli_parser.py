"""The ``semiyolo`` command line's parser: every command's options, help texts and argument types (:mod:`.cli`
runs the commands)."""

from __future__ import annotations

import argparse
import importlib.metadata
import math
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import UserInputError
from .experiments.arms import ONLY_CHOICES, REVIEW_ORDERS, VARIANT_LR_SCALE

if TYPE_CHECKING:
    from .experiments.protocol import Variant

Handlers = Mapping[str, Callable[[argparse.Namespace], int]]  # a handler's name (``train``) -> the function


def _score(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a score in [0, 1], got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _variant(text: str) -> Variant:
    """``NAME:key=value,...`` -> ``Variant(NAME, {key: value})``, values parsed as config overrides are, except
    ``lr_scale=M`` (the arm's learning rate in multiples of ``--continue-lr``); ``NAME`` alone: the config's own
    settings (``{}``), e.g. ``default`` for the method a user gets."""
    from .config import SemiConfig
    from .config_loading import parse_overrides
    from .experiments.protocol import Variant
    from .semi_groups import flat_dotted_keys

    name, colon, settings = text.partition(":")
    if not name.isidentifier() or (colon and not settings):
        raise argparse.ArgumentTypeError(f"expected NAME or NAME:key=value,..., got {text!r}")
    if not colon:
        return Variant(name, {})
    try:  # a key by its flat name (teacher.decay is teacher_decay): the name a finished run is compared by
        parsed = flat_dotted_keys(parse_overrides(_top_level_split(settings)))
    except UserInputError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    given = parsed.pop(VARIANT_LR_SCALE, 1.0)
    try:  # YAML reads 1e1 as text; --lr-scales takes it as a number, so this does too
        lr_scale = math.nan if isinstance(given, bool) else float(given)
    except (TypeError, ValueError):
        lr_scale = math.nan
    if not lr_scale > 0:
        raise argparse.ArgumentTypeError(f"{text!r}: {VARIANT_LR_SCALE}: expected a positive number, got {given!r}")
    unknown = sorted(set(parsed) - set(SemiConfig.model_fields))
    if unknown:
        raise argparse.ArgumentTypeError(f"{text!r}: not semi settings: {', '.join(unknown)}")
    return Variant(name, parsed, lr_scale)


def _top_level_split(text: str, sep: str = ",") -> list[str]:
    """``text`` split at each ``sep`` outside brackets and braces, so that a value may be a YAML flow list or
    mapping: ``a=1,filters=[{name: score, params: {threshold: 0.3}}]`` is two settings."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += (char in "[{") - (char in "]}")
        if char == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    return [*parts, text[start:]]


OVERRIDE = re.compile(r"[A-Za-z_][\w.]*=")  # key=value, dotted for nested keys


class _CommandParser(argparse.ArgumentParser):
    """A command's parser that takes ``key=value`` overrides after its options too (``ablate cfg --steps 4
    train.epochs=2``) into its ``overrides`` argument: argparse alone takes positionals only before the first
    option, and an option of several values (``--lambdas``) would take the override as one of them."""

    def parse_known_args(self, args=None, namespace=None):
        args = list(sys.argv[1:] if args is None else args)
        if not any(action.dest == "overrides" for action in self._actions):
            return super().parse_known_args(args, namespace)
        one_value = {flag for action in self._actions if action.nargs is None for flag in action.option_strings}
        start = next((i for i, arg in enumerate(args) if arg.startswith("-")), len(args))
        later = {i for i, arg in enumerate(args) if i >= start and OVERRIDE.match(arg) and args[i - 1] not in one_value}
        namespace, extras = super().parse_known_args([a for i, a in enumerate(args) if i not in later], namespace)
        namespace.overrides = [*(namespace.overrides or []), *(args[i] for i in sorted(later))]
        return namespace, extras


def _version() -> str:
    try:
        return importlib.metadata.version("semiyolo")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def build_parser(handlers: Handlers) -> argparse.ArgumentParser:
    """The ``semiyolo`` parser; ``handlers`` maps each handler's name (``train``, ``ablate``, ...) to the function
    that runs it, which the parsed arguments carry as ``handler``."""
    parser = argparse.ArgumentParser(
        prog="semiyolo",
        description="Semi-supervised Ultralytics YOLO with a background penalty, and a library of detection losses.",
    )
    parser.add_argument("--version", action="version", version=f"semiyolo {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_CommandParser)
    for add_command in (
        _add_demo,
        _add_train,
        _add_cfg,
        _add_pseudo_label,
        _add_ablate,
        _add_review,
        _add_split,
        _add_data,
        _add_plot,
    ):
        add_command(commands, handlers)
    return parser


def _add_demo(commands: argparse._SubParsersAction, handlers: Handlers) -> None:
    demo = commands.add_parser(
        "demo",
        help="the main job on generated data: a few labeled images, many unlabeled ones, the fair comparison",
        description="From nothing: a synthetic shapes dataset split into labeled and unlabeled images; YOLOv8n "
        "trained on the labeled ones to convergence, then continued for the same optimizer steps on the labeled "
        "images alone and semi-supervised (mean teacher, background penalty); the table of both and pictures of "
        "the pseudo-labels. About 6 minutes on 2 CPU cores.",
    )
    demo.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder (default: runs/demo)")
    demo.add_argument("--images", type=int, default=400, help="synthetic images, train + val (default: 400)")
    demo.add_argument(
        "--test-images", type=int, default=200, help="test images besides them, which choose nothing (default: 200)"
    )
    demo.add_argument("--imgsz", type=int, default=128, help="image size in pixels (default: 128)")
    demo.add_argument("--fraction", type=float, default=0.2, help="share of training images labeled (default: 0.2)")
    demo.add_argument("--epochs", type=int, default=15, help="epochs of the labeled-only run (default: 15)")
    demo.add_argument("--steps", type=int, default=60, help="optimizer steps of each continuation (default: 60)")
    demo.add_argument("--batch", type=int, default=16, help="batch size (default: 16)")
    demo.add_argument("--seed", type=int, default=0, help="seed of the data, the split and the training (default: 0)")
    demo.add_argument("--ceiling", action="store_true", help="also train on every image with its label (the ceiling)")
    demo.set_defaults(handler=handlers["demo"])


def _add_train(commands: argparse._SubParsersAction, handlers: Handlers) -> None:
    train = commands.add_parser(
        "train",
        help="train from a config file, or from key=value arguments as 'yolo train' does",
        description="Train an Ultralytics YOLO detector with the background penalty (and, semi.mode online or "
        "offline, unlabeled images), as configured in CONFIG. Its layout: model (a .yaml or a local .pt), data (a "
        "data.yaml), train (any Ultralytics training argument), semi (semiyolo's settings). 'semiyolo cfg' lists "
        "every semi key with its default and meaning, as a config to start from.",
        epilog="examples: semiyolo train run.yaml epochs=3 semi.lambda_bg=0.5; semiyolo train data=data.yaml "
        "model=yolov8n.yaml epochs=3 imgsz=320 (no file: semi at its defaults, supervised unless semi.mode=...)",
    )
    train.add_argument(
        "config",
        help="YAML run config (model, data, train, semi); left out when the first argument is a key=value",
    )
    train.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="settings over the config's, dotted (train.epochs=3, semi.lambda_bg=0.5) or flat as in 'yolo train': "
        "an Ultralytics training argument is a train key (epochs=3), another semi key a semi one (lambda_bg=0.5)",
    )
    train.set_defaults(handler=handlers["train"])


def _add_cfg(commands: argparse._SubParsersAction, handlers: Handlers) -> None:
    cfg = commands.add_parser(
        "cfg",
        help="every config key with its default and meaning (a run config to start from)",
        description="Print a run config with every semi key at its default, each with its description, grouped by "
        "the modes that read it; it loads as it is: semiyolo cfg > run.yaml.",
    )
    cfg.set_defaults(handler=handlers["cfg"])


def _add_pseudo_label(commands: argparse._SubParsersAction, handlers: Handlers) -> None:
    pseudo = commands.add_parser(
        "pseudo-label",
        help="label a folder of images with a trained model (offline mode)",
        description="Run a trained Ultralytics detector on every image under SOURCE, keep what the filters keep, "
        "and write YOLO labels, links to the images and a manifest of scores under OUT.",
    )
    pseudo.add_argument("--weights", type=Path, required=True, help="an Ultralytics detection checkpoint (.pt)")
    pseudo.add_argument("--source", type=Path, required=True, help="folder of unlabeled images")
    pseudo.add_argument("--out", type=Path, required=True, help="output folder")
    chain = pseudo.add_mutually_exclusive_group()
    chain.add_argument(
        "--filters",
        type=Path,
        help="YAML: a list of filters, or a run config (its semi.filters), checked as a run config's; "
        "default: score >= 0.5, at most 100 per image",
    )
    chain.add_argument(
        "--conf",
        type=_score,
        metavar="X",
        help="keep a box the model finds (after NMS) when its score is at least X, at most 100 per image: the "
        "default filters with the score filter's threshold X (default: 0.5); candidates under --min-score never "
        "reach NMS",
    )
    pseudo.add_argument("--imgsz", type=int, help="inference size in pixels (default: the checkpoint's training size)")
    pseudo.add_argument("--batch", type=int, default=8, help="images per forward (default: 8)")
    pseudo.add_argument(
        "--min-score",
        type=float,
        default=0.1,
        help="candidates below never reach NMS nor the filters (semi.pseudo_min_score in training; default: 0.1)",
    )
    pseudo.add_argument("--overwrite", action="store_true", help="replace an earlier pseudo-label output in --out")
    pseudo.add_argument(
        "--teacher-flip",
        action="store_true",
        help="label with the flip ensemble: outputs averaged with those on the mirrored image (semi.teacher_flip)",
    )
    pseudo.add_argument(
        "--teacher-scale",
        type=float,
        default=1.0,
        help="label the images resized by this factor, boxes mapped back (semi.teacher_scale; default: 1)",
    )
    pseudo.set_defaults(handler=handlers["pseudo_label"])


def _add_ablate(commands: argparse._SubParsersAction, handlers: Handlers) -> None:
    ablate = commands.add_parser(
        "ablate",
        help="the fair semi-supervised protocol: converged supervised baseline, equal-step continuations, ceiling",
        description="On CONFIG's dataset and split: supervised_converged (labeled images, the config's schedule); "
        "from its final state, for each seed, supervised_continued, online with lambda_bg 0 and each --lambdas "
        "(and the focal mode with --focal) and offline, each for exactly --steps optimizer steps, beside a "
        "labeled-only control for each other difference (the penalty, the learning rate, an arm's augmentation); "
        "fully_labeled (the unlabeled images with their hidden labels) as the ceiling, and continued as long as the "
        "arms. Writes ablation.md (mean ± std over seeds, gap closed against the best labeled-only continuation; "
        "on the test split where the data has one), ablation.csv and PNG plots; finished runs are skipped.",
    )
    ablate.add_argument("config", type=Path, help="an online run config, e.g. the one 'semiyolo split' writes")
    ablate.add_argument(
        "overrides", nargs="*", metavar="key=value", help="overrides, before or after the options, e.g. train.epochs=30"
    )
    ablate.add_argument("--out", type=Path, help="output folder (default: runs/ablate/<config name>)")
    ablate.add_argument(
        "--steps", type=_positive_int, default=200, help="optimizer steps of each continuation (default: 200)"
    )
    ablate.add_argument("--seeds", type=_positive_int, default=3, help="seeds of the continuations (default: 3)")
    ablate.add_argument(
        "--splits",
        type=_positive_int,
        default=1,
        metavar="N",
        help="label splits: the config's own (made by 'semiyolo split') and N - 1 more drawn with the next seeds, "
        "each with its own converged run and ceiling in OUT/split<seed>; gap closed over splits and seeds "
        "(default: 1)",
    )
    ablate.add_argument(
        "--continue-lr",
        type=float,
        default=0.1,
        help="a continuation's first learning rate as a share of the converged run's peak (default: 0.1)",
    )
    ablate.add_argument(
        "--report-only",
        action="store_true",
        help="train nothing: write the report over the runs in --out that finished (e.g. results restored from an "
        "archive, which keeps no weights; the datasets must exist); a run with weights and no test metrics is still "
        "measured on test",
    )
    _add_ablate_arms(ablate.add_argument_group("arms", "which arms and controls the protocol runs"))
    _add_ablate_selection(
        ablate.add_argument_group("this process", "which of them this invocation trains (the report takes all)")
    )
    ablate.set_defaults(handler=handlers["ablate"])


def _add_ablate_arms(arms: argparse._ArgumentGroup) -> None:
    arms.add_argument("--lambdas", type=float, nargs="+", default=[1.0], help="online lambda_bg besides 0 (default: 1)")
    arms.add_argument(
        "--lr-scales",
        type=float,
        nargs="*",
        default=[2.0, 4.0],
        metavar="M",
        help="the labeled-only continuation also at M times --continue-lr (supervised_continued_lr<M>); the best on "
        "validation is the baseline (default: 2 4; none: the flag alone)",
    )
    arms.add_argument(
        "--variant",
        type=_variant,
        action="append",
        metavar="NAME[:key=value,...]",
        help="an online arm with these semi settings over lambda_bg 1, e.g. "
        "tiered:pseudo_targets=tiered,teacher_half_life=0.1, or NAME alone for the config's own settings; "
        "lr_scale=M continues it at M times --continue-lr and adds the labeled-only continuation at M (with "
        "--only, name supervised_continued_lr for it) (repeatable; run folder online_NAME)",
    )
    arms.add_argument(
        "--no-controls",
        action="store_true",
        help="leave out the penalty and augmentation controls (supervised_continued_bg*, _aug_*)",
    )
    arms.add_argument("--focal", action="store_true", help="add online with the focal background mode, lambda_bg 1")
    arms.add_argument("--no-offline", action="store_true", help="leave out the offline arm")
    arms.add_argument(
        "--no-oracle", action="store_true", help="leave out the continuation on the unlabeled images' hidden labels"
    )
    arms.add_argument(
        "--ceiling-seeds",
        type=_positive_int,
        default=1,
        metavar="N",
        help="seeds of the fully labeled ceiling (default: 1); the gap closed is measured against their mean",
    )
    arms.add_argument(
        "--review-k",
        nargs="+",
        type=_positive_int,
        metavar="K",
        help="add the reviewed arms (seed<s>/reviewed_k<K>_<order>): a simulated reviewer corrects K unlabeled images "
        "with their hidden labels, then the config's online method continues; '--only reviewed' alone takes 5 10 20",
    )
    arms.add_argument(
        "--review-orders",
        nargs="+",
        choices=REVIEW_ORDERS,
        default=list(REVIEW_ORDERS),
        help="how the reviewed arms choose their K images: the review page's order, a seeded random choice, or the "
        "page's order with near-duplicates counted once (default: all three)",
    )


def _add_ablate_selection(selection: argparse._ArgumentGroup) -> None:
    selection.add_argument(
        "--only",
        nargs="+",
        choices=ONLY_CHOICES,
        help="run only these arms (the converged run is always trained or reused; 'variants': the --variant arms "
        "alone), e.g. to run the ceiling apart",
    )
    selection.add_argument(
        "--only-splits",
        nargs="+",
        type=int,
        metavar="K",
        help="with --splits: train only these label splits (0-based; the report takes every finished run in --out), "
        "e.g. to run splits side by side in separate processes",
    )
    selection.add_argument(
        "--only-seeds",
        nargs="+",
        type=int,
        metavar="K",
        help="run only these seeds' continuations and ceilings (0-based; the report takes every finished run in "
        "--out), e.g. to run seeds side by side in separate processes",
    )


def _add_review(commands: argparse._SubParsersAction, handlers: Handlers) -> None:
    review = commands.add_parser(
        "review",
        help="review pseudo-labels (or any YOLO labels) in the browser, the most doubtful images first",
        description="Serve a page on which a person accepts, deletes, draws, moves, resizes and relabels the boxes of "
        "SOURCE's images, the most doubtful first; accepted images are written as a YOLO dataset (and a log) to "
        "--reviewed, which online training (semi.reviewed) moves from the unlabeled to the labeled images. SOURCE is "
        "a 'semiyolo pseudo-label' output, a YOLO split folder (images/ and labels/), a dataset's data.yaml (its "
        "--split), or an online run folder (its weights/last.pt labels its unlabeled images on demand). Opens no "
        "browser.",
    )
    review.add_argument(
        "source", type=Path, metavar="SOURCE", help="pseudo-label output, YOLO split folder, data.yaml or run folder"
    )
    review.add_argument("--split", help="for a data.yaml SOURCE: the split to review (default: train)")
    review.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine)")
    review.add_argument("--port", type=int, default=8765, help="port (default: 8765; 0: any free port)")
    review.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="another name the page may be opened by (besides addresses, localhost and this machine's name)",
    )
    review.add_argument("--reviewed", type=Path, help="where reviewed labels go (default: SOURCE/reviewed)")
    review.add_argument("--names", type=Path, help="a data.yaml whose names are the classes (default: from SOURCE)")
    review.add_argument(
        "--config", type=Path, help="for a run folder without semi_state.pt or summary.json: the run's config"
    )
    review.add_argument(
        "--max-side",
        type=_positive_int,
        default=1280,
        help="images are sent at most this many pixels wide or high (default: 1280)",
    )
    review.set_defaults(handler=handlers["review"])


def _add_split(commands: argparse._SubParsersAction, handlers: Handlers) -> None:
    split = commands.add_parser(
        "split",
        help="a seeded, class-stratified labeled / unlabeled split of a YOLO dataset",
        description="Keep FRACTION of the training images labeled (every class about that share, rarer classes "
        "first), the rest unlabeled (their labels kept aside for auditing pseudo-labels); writes data.yaml, an "
        "online config.yaml (train.imgsz from the images' size, train.epochs from the labeled images' count, "
        "explained at its top) and split.json under OUT, and prints images and boxes per part and class. Images "
        "keep their names; two of one name get the folders that tell them apart in front (a_x.png, b_x.png).",
    )
    split.add_argument("data", type=Path, help="the dataset's data.yaml")
    split.add_argument("--fraction", type=float, required=True, help="share of labeled images, e.g. 0.1")
    split.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    split.add_argument("--out", type=Path, required=True, help="output folder")
    split.set_defaults(handler=handlers["split"])


def _add_data(commands: argparse._SubParsersAction, handlers: Handlers) -> None:
    data = commands.add_parser("data", help="datasets", description="Dataset tools.")
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="DATA_COMMAND")
    generators = {
        "synth": (
            "write a deterministic synthetic YOLO dataset",
            "Shapes (circle, square, triangle) on textured backgrounds with look-alike clutter",
        ),
        "digits": (
            "write a deterministic dataset of handwritten-digit scenes (10 classes)",
            "scikit-learn's bundled 8x8 handwritten digits, scaled and inked on paper-like backgrounds, with "
            "unlabeled distractor strokes",
        ),
        "nuclei": (
            "write a detection set of real nuclei: crops of the annotated image the stardist package ships",
            "Crops of one real fluorescence image of nuclei (2018 Data Science Bowl) with one box per nucleus of its "
            "human-drawn instance mask, read from the installed stardist package (pip install stardist); train, val "
            "and test crops come from disjoint regions of the image (docs/BENCHMARKS.md, 'The third set')",
        ),
    }
    for name, (summary, what) in generators.items():
        sub = data_commands.add_parser(
            name, help=summary, description=f"{what}; writes images/, labels/ and data.yaml (train/val)."
        )
        sub.add_argument("--out", type=Path, required=True, help="output folder")
        sub.add_argument("--images", type=int, default=300, help="number of images, train + val (default: 300)")
        sub.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
        sub.add_argument("--imgsz", type=int, default=160, help="image side in pixels (default: 160)")
        sub.add_argument("--val-fraction", type=float, default=0.2, help="share of validation images (default: 0.2)")
        sub.add_argument(
            "--test-images",
            type=int,
            default=0,
            metavar="N",
            help="N more images as a test split (images/test), never used to choose anything (default: 0)",
        )
        sub.set_defaults(handler=handlers["generate"])


def _add_plot(commands: argparse._SubParsersAction, handlers: Handlers) -> None:
    plot = commands.add_parser("plot", help="write figures", description="Write figures as PNG files.")
    plots = plot.add_subparsers(dest="figure", required=True, metavar="FIGURE")
    losses = plots.add_parser(
        "losses",
        help="the loss library's figures (focal vs p_t, CE/FL shares, QFL, DFL, background-penalty gradient)",
        description="Write the source documents' loss figures, computed by semiyolo.losses, as PNG files.",
    )
    losses.add_argument(
        "--out",
        type=Path,
        default=Path("runs/loss-figures"),
        help="output folder, created (default: runs/loss-figures)",
    )
    losses.set_defaults(handler=handlers["plot_losses"])
