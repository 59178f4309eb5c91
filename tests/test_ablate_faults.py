"""`semiyolo ablate` on a messy machine: two processes on one folder, a half-written row, a moved folder, and
overrides after the options."""

import csv
import json
import queue
import shutil
import subprocess
import sys
import threading
import time

import pytest

from semiyolo.cli import main

TINY = [
    "train.epochs=1",
    "train.imgsz=64",
    "train.batch=4",
    "train.nbs=4",
    "train.workers=0",
    "train.plots=false",
    "semi.validate_teacher=false",
]
ONE_ARM = ["--steps", "2", "--only", "supervised_continued"]  # the converged run and one continuation per seed

# takes supervised_converged's run lock through the public class, says so, and when the test says go, runs the
# ablation's seed 0 in this same process (its own lock is re-entered, not refused)
HOLDER = """
import sys
from pathlib import Path
from semiyolo.experiments.ablate import Protocol, run_ablation
from semiyolo.runfiles import RunLock

config, out, *overrides = sys.argv[1:]
lock = RunLock(Path(out) / "supervised_converged")
lock.acquire()
(Path(out) / "supervised_converged" / "begun.txt").write_text("the first process's work")
print("held", flush=True)
sys.stdin.readline()
protocol = Protocol(steps=2, seeds=2, only_seeds=(0,), only=("supervised_continued",))
run_ablation(config, out, protocol, overrides)
lock.release()
"""


@pytest.fixture(scope="module")
def tiny_split(tmp_path_factory):
    """A labeled / unlabeled split of 12 generated images at 64 px; its online config."""
    from semiyolo.data import SynthSpec, write_dataset

    root = tmp_path_factory.mktemp("split")
    data = write_dataset(root / "data", SynthSpec(images=12, imgsz=64, seed=0))
    assert main(["split", str(data), "--fraction", "0.5", "--out", str(root / "split")]) == 0
    return root / "split" / "config.yaml"


def _lines(process) -> queue.Queue:
    """A process's stdout, line by line, read in a thread (None at its end)."""
    lines = queue.Queue()

    def read():
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    return lines


def _wait_for(lines: queue.Queue, text: str, seen: list[str], timeout: float = 120) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        if line is None:
            return False
        seen.append(line)
        if text in line:
            return True
    return False


def test_a_second_ablate_waits_for_the_converged_run_another_process_trains(tmp_path, tiny_split):
    out = tmp_path / "ablation"
    popen = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True, "cwd": tmp_path}
    holder = [sys.executable, "-c", HOLDER, str(tiny_split), str(out), *TINY]
    first = subprocess.Popen(holder, stdin=subprocess.PIPE, **popen)
    second = None
    try:
        first_lines, first_seen = _lines(first), []
        assert _wait_for(first_lines, "held", first_seen), "".join(first_seen)
        args = ["ablate", str(tiny_split), *TINY, "--out", str(out), *ONE_ARM, "--seeds", "2", "--only-seeds", "1"]
        second = subprocess.Popen([sys.executable, "-m", "semiyolo", *args], **popen)
        second_lines, second_seen = _lines(second), []
        waiting = _wait_for(second_lines, "waiting for it to finish", second_seen)
        assert waiting, "".join(second_seen)
        assert f"process {first.pid}" in second_seen[-1]
        assert (out / "supervised_converged" / "begun.txt").is_file()  # the live run's folder is untouched
        first.stdin.write("go\n")
        first.stdin.flush()
        assert first.wait(timeout=300) == 0, "".join(first_seen) + first.stdout.read()
        assert second.wait(timeout=300) == 0
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
    _wait_for(second_lines, "never printed", second_seen, timeout=5)  # the rest of its output
    said = "".join(second_seen)
    assert "supervised_converged (finished earlier, skipped)" in said and "removing" not in said
    runs = [r["run"] for r in csv.DictReader((out / "ablation.csv").open())]
    assert runs == ["supervised_converged", "seed0/supervised_continued", "seed1/supervised_continued"]


def test_a_run_another_live_process_owns_is_skipped_not_cleared(tmp_path, capsys):
    from semiyolo.experiments.runs import train_or_reuse

    folder = tmp_path / "seed0" / "supervised_continued"
    script = (
        "import sys, time; from semiyolo.runfiles import RunLock; lock = RunLock(sys.argv[1]); lock.acquire(); "
        "print('held', flush=True); time.sleep(60)"
    )
    holder = subprocess.Popen([sys.executable, "-c", script, str(folder)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        (folder / "results.csv").write_text("epoch\n1\n")  # the other process's training so far
        cfg = {"model": "m.yaml", "data": "d.yaml", "train": {}, "semi": {"mode": "supervised", "lambda_bg": 0.0}}
        assert train_or_reuse(tmp_path, "seed0/supervised_continued", "supervised_continued", 0, cfg) is None
        assert (folder / "results.csv").read_text() == "epoch\n1\n"
        said = capsys.readouterr().out
        assert f"seed0/supervised_continued: process {holder.pid} is training it; skipped here" in said
    finally:
        holder.kill()
        holder.wait()


def _fake_training(monkeypatch, calls):
    """``prepare`` and ``train`` of the ablation without training: each run writes an args.yaml."""
    import yaml

    from semiyolo.experiments import runs

    def fake_train(run_cfg):
        train = run_cfg["train"]
        folder = runs.Path(train["project"]) / train["name"]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "args.yaml").write_text(yaml.safe_dump({"model": run_cfg["model"], "data": run_cfg["data"]}))
        calls.append(train["name"])
        return {"semi": run_cfg["semi"], "save_dir": str(folder)}

    monkeypatch.setattr(runs, "prepare", lambda run_cfg: None)
    monkeypatch.setattr(runs, "train", fake_train)


def test_an_empty_row_file_is_an_unfinished_run_trained_again(tmp_path, capsys, monkeypatch):
    from semiyolo.experiments.runs import finished_rows, train_or_reuse

    calls = []
    _fake_training(monkeypatch, calls)
    cfg = {"model": "m.yaml", "data": "d.yaml", "train": {}, "semi": {"mode": "supervised", "lambda_bg": 0.0}}
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "ablation_row.json").write_text("")  # a write cut short by a full disk or a kill
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "ablation_row.json").write_text('{"run": "oth')  # half a row of a run not named
    row = train_or_reuse(tmp_path, "r", "supervised_continued", 0, cfg)
    said = capsys.readouterr().out
    assert f"{tmp_path / 'r' / 'ablation_row.json'} is empty or not valid JSON" in said and calls == ["r"]
    written = json.loads((tmp_path / "r" / "ablation_row.json").read_text())
    assert written["run"] == row["run"] == "r" and written["kind"] == "supervised_continued"
    assert [r["run"] for r in finished_rows(tmp_path, ["r"])] == ["r"]
    assert "other/ablation_row.json is empty or not valid JSON" in capsys.readouterr().out
    assert not list(tmp_path.glob("**/*.part"))


def test_a_copied_finished_ablation_is_recognised_as_finished(tmp_path, tiny_split, capsys):
    first = tmp_path / "first"
    args = ["ablate", str(tiny_split), *TINY, "--seeds", "1", *ONE_ARM]
    assert main([*args, "--out", str(first)]) == 0
    copy = tmp_path / "elsewhere" / "copy"
    shutil.copytree(first, copy)
    shutil.rmtree(first)  # moved: nothing may still refer to the old folder
    (copy / "ablation.md").unlink()
    capsys.readouterr()
    assert main([*args, "--out", str(copy)]) == 0
    said = capsys.readouterr().out
    assert said.count("(finished earlier, skipped)") == 2 and "removing" not in said
    assert (copy / "ablation.md").is_file() and not first.exists()
    assert not list(copy.glob("**/.*.lock")) and not list(copy.glob("**/.*.part"))  # every claim let go


def test_overrides_work_after_the_options(tmp_path, monkeypatch):
    from semiyolo.experiments import ablate

    seen = {}

    def fake_run_ablation(config, out, protocol, overrides=()):
        seen.update(config=config, out=out, protocol=protocol, overrides=list(overrides))
        return []

    monkeypatch.setattr(ablate, "run_ablation", fake_run_ablation)
    args = ["ablate", "cfg.yaml", "model=yolov8n.yaml", "--out", "O", "--steps", "4", "train.epochs=2"]
    assert main([*args, "--only-seeds", "0", "semi.lambda_bg=0.5", "--lambdas", "1", "2", "train.batch=4"]) == 0
    assert seen["overrides"] == ["model=yolov8n.yaml", "train.epochs=2", "semi.lambda_bg=0.5", "train.batch=4"]
    assert seen["protocol"].steps == 4 and seen["protocol"].only_seeds == (0,)
    assert seen["protocol"].lambdas == (1.0, 2.0) and str(seen["out"]) == "O"
    with pytest.raises(SystemExit) as refused:
        main(["ablate", "cfg.yaml", "--out", "O", "stray"])
    assert refused.value.code == 2
