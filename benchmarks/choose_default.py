"""Choose one default across benchmark sets, on validation, by the rule of ``semiyolo.experiments.default_choice``;
then the chosen arm's figures on the test images.

    python benchmarks/choose_default.py --set shapes=/tmp/abl/c_shapes/controls --set nuclei=/tmp/abl/c_nuclei/controls
                                        [--only-splits 0 1 2] [--out docs/ablation/default_choice.md]
    python benchmarks/choose_default.py --set shapes=docs/ablation/shapes10_controlled/ablation.csv ...
                                        --fed-hidden-labels oracle_pl oracle_boxes

Each ``--set NAME=PATH`` is an ablation folder of ``benchmarks/ssod_controls.sh`` (its finished runs are read;
nothing trains) or, for a set whose run folders are gone, its report's ``ablation.csv`` (the same rows; no test
intervals, which need the runs' per-image statistics). ``--fed-hidden-labels`` names the variants whose
pseudo-labels were the hidden labels, for a CSV written before it said so itself. ``--only-splits`` keeps the
label splits given (for sets whose last split is still training).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from semiyolo.data import write_atomically
from semiyolo.experiments.default_choice import choose_default, default_choice_markdown, rows_from_report, rows_under


def _named_path(text: str) -> tuple[str, Path]:
    name, sep, folder = text.partition("=")
    if not sep or not name or not (Path(folder).is_dir() or (Path(folder).suffix == ".csv" and Path(folder).is_file())):
        raise argparse.ArgumentTypeError(
            f"expected NAME=PATH with an existing ablation folder or ablation.csv, got {text!r}"
        )
    return name, Path(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", dest="sets", type=_named_path, action="append", required=True)
    parser.add_argument("--fed-hidden-labels", nargs="+", default=[], metavar="VARIANT", help="for a CSV set")
    parser.add_argument("--only-splits", type=int, nargs="+", help="the label splits to read (default: all)")
    parser.add_argument("--out", type=Path, help="also write the Markdown here")
    args = parser.parse_args()
    folders = dict(args.sets)
    sets = {
        name: rows_from_report(path, args.fed_hidden_labels) if path.is_file() else rows_under(path)
        for name, path in folders.items()
    }
    folders = {name: path for name, path in folders.items() if path.is_dir()}  # the test intervals read run folders
    if args.only_splits is not None:
        keep = set(args.only_splits)
        sets = {name: [r for r in rows if r.get("label_split") in keep] for name, rows in sets.items()}
    text = default_choice_markdown(choose_default(sets, folders))
    print(text)
    if args.out:
        write_atomically(args.out, lambda part: part.write_text(text))


if __name__ == "__main__":
    main()
