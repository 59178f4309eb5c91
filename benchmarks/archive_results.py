"""Copy a protocol folder's results, without weights, to a folder that can be committed, or back.

    python benchmarks/archive_results.py /tmp/abl/c_digits/controls docs/ablation/digits10_controlled/runs
    python benchmarks/archive_results.py docs/ablation/digits10_controlled/runs /tmp/abl/c_digits/controls

For every finished run under SOURCE (a folder holding ``ablation_row.json``) the files the report reads, and each
label split's review orders (``semiyolo.experiments.run_archive``); a file TARGET already has is kept. Then
``benchmarks/ssod_controls.sh <set> OUT --report-only`` (or ``semiyolo ablate ... --report-only``) reports them.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from semiyolo.experiments.run_archive import copy_results


def ignored_by_git(target: Path) -> str | None:
    """The ``.gitignore`` rule that keeps files under ``target`` out of its git work tree (``source:line:pattern``),
    or ``None`` when nothing does or ``target`` is in no work tree (a scratch folder under ``/tmp``)."""
    folder = next((p for p in (target.absolute(), *target.absolute().parents) if p.is_dir()), Path("/"))
    probe = target.absolute() / "run" / "ablation_row.json"  # a file the archive would hold, so `runs/` rules match
    try:
        found = subprocess.run(
            ["git", "-C", str(folder), "check-ignore", "--verbose", "--no-index", str(probe)],
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError:  # no git on this machine: nothing to check against
        return None
    return found.stdout.split("\t")[0] if found.returncode == 0 else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="a protocol folder (ablate --out), or an archive")
    parser.add_argument("target", type=Path, help="where the results go (made if missing)")
    args = parser.parse_args()
    rule = ignored_by_git(args.target)
    if rule is not None:
        sys.exit(
            f"{args.target}: git ignores it ({rule}), so an archive there would not be committed and would be lost "
            "with this machine; choose another folder or add a negated rule to .gitignore"
        )
    copied = copy_results(args.source, args.target)
    size = sum(path.stat().st_size for path in copied)
    print(f"{len(copied)} files ({size / 1e3:.0f} kB) copied from {args.source} to {args.target}")


if __name__ == "__main__":
    main()
