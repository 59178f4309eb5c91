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


def _git(path: Path, *args: str) -> subprocess.CompletedProcess | None:
    """``git <args>`` run from ``path``'s nearest existing folder; ``None`` where git is not installed."""
    folder = next((p for p in (path, *path.parents) if p.is_dir()), Path("/"))
    try:
        return subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        return None


def ignored_by_git(folder: Path) -> str | None:
    """The ``.gitignore`` rule that keeps files under ``folder`` out of its git work tree (``source:line:pattern``),
    or ``None`` when nothing does (a negated rule re-including them counts as nothing), ``folder`` is in no work
    tree (a scratch folder under ``/tmp``) or git is not installed. Any other failure of git (a path beyond a
    symbolic link, a repository git distrusts) exits naming it: the archive's safety cannot be told."""
    probe = folder.resolve() / "run" / "ablation_row.json"  # a file the archive would hold, so `runs/` rules match
    found = _git(probe, "check-ignore", "--quiet", "--no-index", str(probe))
    if found is None or found.returncode == 1:
        return None
    if found.returncode == 128:
        if "not a git repository" in found.stderr:
            return None
        sys.exit(f"{folder}: git cannot say whether it ignores it: {found.stderr.strip()}")
    return _git(probe, "check-ignore", "--verbose", "--no-index", str(probe)).stdout.split("\t")[0]  # ignored


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="a protocol folder (ablate --out), or an archive")
    parser.add_argument("target", type=Path, help="where the results go (made if missing)")
    args = parser.parse_args()
    rule = ignored_by_git(args.target)
    restoring = rule is not None and _in_work_tree(args.source) and ignored_by_git(args.source) is None
    if rule is not None and not restoring:  # restoring a committed archive into a scratch folder is fine
        sys.exit(
            f"{args.target}: git ignores it ({rule}), so an archive there would not be committed and would be lost "
            "with this machine; choose another folder or add a negated rule to .gitignore"
        )
    copied = copy_results(args.source, args.target)
    size = sum(path.stat().st_size for path in copied)
    print(f"{len(copied)} files ({size / 1e3:.0f} kB) copied from {args.source} to {args.target}")


def _in_work_tree(folder: Path) -> bool:
    found = _git(folder.resolve(), "rev-parse", "--is-inside-work-tree")
    return found is not None and found.stdout.strip() == "true"


if __name__ == "__main__":
    main()
