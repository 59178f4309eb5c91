"""benchmarks/archive_results.py refuses a target git leaves out of a commit (an archive lost with its machine)."""

import importlib.util
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).parents[1]
SCRIPT = REPO / "benchmarks" / "archive_results.py"
spec = importlib.util.spec_from_file_location("archive_results", SCRIPT)
archive_results = importlib.util.module_from_spec(spec)
spec.loader.exec_module(archive_results)

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


@needs_git
def test_an_ignored_target_is_named_with_its_rule_and_nothing_is_copied(tmp_path, monkeypatch):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text("runs/\n!docs/*/runs/\n")
    assert archive_results.ignored_by_git(tmp_path / "out" / "runs") == ".gitignore:1:runs/"
    assert archive_results.ignored_by_git(tmp_path / "docs" / "a" / "runs") is None  # the negated rule re-includes it
    assert archive_results.ignored_by_git(tmp_path / "kept") is None
    source = tmp_path / "source"
    source.mkdir()
    monkeypatch.setattr("sys.argv", ["archive_results.py", str(source), str(tmp_path / "out" / "runs")])
    with pytest.raises(SystemExit, match=r"out/runs: git ignores it \(\.gitignore:1:runs/\)"):
        archive_results.main()
    assert not (tmp_path / "out").exists()


@needs_git
def test_the_documented_archives_are_committed():
    """docs/ablation/<set>/runs is where BENCHMARKS.md archives a split; the repository's .gitignore keeps `runs/`
    (Ultralytics' output) out, except there."""
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    assert archive_results.ignored_by_git(REPO / "docs" / "ablation" / "digits10_controlled" / "runs") is None
    assert archive_results.ignored_by_git(REPO / "runs") == ".gitignore:2:runs/"  # Ultralytics' own output stays out
