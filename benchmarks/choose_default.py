"""Choose one default across benchmark sets, on validation, by the rule of ``semiyolo.experiments.default_choice``;
then the chosen arm's figures on the test images.

    python benchmarks/choose_default.py --set shapes=/tmp/abl/c_shapes/controls --set nuclei=/tmp/abl/c_nuclei/controls
                                        [--only-splits 0 1 2] [--out docs/ablation/default_choice.md]

Each ``--set NAME=FOLDER`` is an ablation folder of ``benchmarks/ssod_controls.sh`` (its finished runs are read;
nothing trains). ``--only-splits`` keeps the label splits given (for sets whose last split is still training).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from semiyolo.data import write_atomically
from semiyolo.experiments.default_choice import choose_default, default_choice_markdown, rows_under


def _named_folder(text: str) -> tuple[str, Path]:
    name, sep, folder = text.partition("=")
    if not sep or not name or not Path(folder).is_dir():
        raise argparse.ArgumentTypeError(f"expected NAME=FOLDER with an existing ablation folder, got {text!r}")
    return name, Path(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", dest="sets", type=_named_folder, action="append", required=True)
    parser.add_argument("--only-splits", type=int, nargs="+", help="the label splits to read (default: all)")
    parser.add_argument("--out", type=Path, help="also write the Markdown here")
    args = parser.parse_args()
    folders = dict(args.sets)
    sets = {name: rows_under(folder) for name, folder in folders.items()}
    if args.only_splits is not None:
        keep = set(args.only_splits)
        sets = {name: [r for r in rows if r["label_split"] in keep] for name, rows in sets.items()}
    text = default_choice_markdown(choose_default(sets, folders))
    print(text)
    if args.out:
        write_atomically(args.out, lambda part: part.write_text(text))


if __name__ == "__main__":
    main()
