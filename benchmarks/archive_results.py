"""Copy a protocol folder's results, without weights, to a folder that can be committed, or back.

    python benchmarks/archive_results.py /tmp/abl/c_digits/controls docs/ablation/digits10_controlled/runs
    python benchmarks/archive_results.py docs/ablation/digits10_controlled/runs /tmp/abl/c_digits/controls

For every finished run under SOURCE (a folder holding ``ablation_row.json``) the files the report reads, and each
label split's review orders (``semiyolo.experiments.run_archive``); a file TARGET already has is kept. Then
``benchmarks/ssod_controls.sh <set> OUT --report-only`` (or ``semiyolo ablate ... --report-only``) reports them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from semiyolo.experiments.run_archive import copy_results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="a protocol folder (ablate --out), or an archive")
    parser.add_argument("target", type=Path, help="where the results go (made if missing)")
    args = parser.parse_args()
    copied = copy_results(args.source, args.target)
    size = sum(path.stat().st_size for path in copied)
    print(f"{len(copied)} files ({size / 1e3:.0f} kB) copied from {args.source} to {args.target}")


if __name__ == "__main__":
    main()
