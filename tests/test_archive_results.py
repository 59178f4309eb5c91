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


def _git_repo(folder: Path, ignore: str) -> Path:
    subprocess.run(["git", "init", "-q", str(folder)], check=True)
    (folder / ".gitignore").write_text(ignore)
    return folder


def _finished_run(folder: Path) -> Path:
    (folder / "seed0" / "online").mkdir(parents=True)
    (folder / "seed0" / "online" / "ablation_row.json").write_text('{"kind": "online"}')
    return folder


def _archive(source: Path, target: Path, monkeypatch) -> None:
    monkeypatch.setattr("sys.argv", ["archive_results.py", str(source), str(target)])
    archive_results.main()


@needs_git
def test_an_ignored_target_is_named_with_its_rule_and_nothing_is_copied(tmp_path, monkeypatch):
    repo = _git_repo(tmp_path / "repo", "runs/\n!docs/*/runs/\n")
    assert archive_results.ignored_by_git(repo / "out" / "runs") == ".gitignore:1:runs/"
    assert archive_results.ignored_by_git(repo / "docs" / "a" / "runs") is None  # the negated rule re-includes it
    assert archive_results.ignored_by_git(repo / "kept") is None
    assert archive_results.ignored_by_git(tmp_path / "scratch") is None  # in no work tree
    source = _finished_run(tmp_path / "scratch")
    with pytest.raises(SystemExit, match=r"out/runs: git ignores it \(\.gitignore:1:runs/\)"):
        _archive(source, repo / "out" / "runs", monkeypatch)
    assert not (repo / "out").exists()
    _archive(source, repo / "docs" / "a" / "runs", monkeypatch)  # archived where git keeps it
    assert (repo / "docs" / "a" / "runs" / "seed0" / "online" / "ablation_row.json").is_file()
    _archive(repo / "docs" / "a" / "runs", repo / "out" / "runs", monkeypatch)  # restored from a kept archive: fine
    assert (repo / "out" / "runs" / "seed0" / "online" / "ablation_row.json").is_file()


@needs_git
def test_a_file_git_keeps_by_a_negated_rule_is_not_ignored(tmp_path):
    repo = _git_repo(tmp_path, "*.json\n!ablation_row.json\n")  # the probe file is re-included by name
    assert archive_results.ignored_by_git(repo / "runs") is None
    (repo / ".gitignore").write_text("*.json\n")
    assert archive_results.ignored_by_git(repo / "runs") == ".gitignore:1:*.json"


@needs_git
def test_a_folder_reached_through_a_link_is_checked_where_it_lies(tmp_path):
    repo = _git_repo(tmp_path / "repo", "runs/\n")
    (repo / "runs").mkdir()
    (tmp_path / "link").symlink_to(repo / "runs")
    assert archive_results.ignored_by_git(tmp_path / "link" / "x") == ".gitignore:1:runs/"


@needs_git
def test_the_documented_archives_are_committed():
    """docs/ablation/<set>/runs is where BENCHMARKS.md archives a split; the repository's .gitignore keeps `runs/`
    (Ultralytics' output) out, except there."""
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    assert archive_results.ignored_by_git(REPO / "docs" / "ablation" / "digits10_controlled" / "runs") is None
    assert archive_results.ignored_by_git(REPO / "runs") == ".gitignore:2:runs/"  # Ultralytics' own output stays out
