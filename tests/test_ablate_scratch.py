"""The user's way under the protocol (issue 31): ``online_scratch``, the config's online method from the model's
``.yaml`` with the converged run's schedule, against the converged run (labeled images alone, same schedule)."""

import csv

import yaml

from semiyolo.cli import main
from semiyolo.data import SynthSpec, write_dataset
from semiyolo.experiments.control_report import scratch_sections


def _row(kind, split, map5095):
    return {"kind": kind, "run": kind, "seed": 0, "label_split": split, "metrics/mAP50-95(B)": map5095}


def test_from_scratch_against_the_supervised_run_by_hand():
    # split 0: 0.50 -> 0.53 (+0.03); split 1: 0.60 -> 0.59 (-0.01): mean +0.01, std 0.04 / sqrt(2) = 0.0283
    rows = [_row("supervised_converged", 0, 0.50), _row("online_scratch", 0, 0.53)]
    rows += [_row("supervised_converged", 1, 0.60), _row("online_scratch", 1, 0.59)]
    text = "\n".join(scratch_sections(rows, "the test split"))
    assert "| 0 | 0.5000 | 0.5300 | +0.0300 |" in text and "| 1 | 0.6000 | 0.5900 | -0.0100 |" in text
    assert "Mean difference +0.0100 ± 0.0283 over 2 label splits: not worse beyond the spread." in text
    # both splits 0.04 below: worse beyond the spread (mean -0.04, std 0)
    worse = [_row("supervised_converged", 0, 0.50), _row("online_scratch", 0, 0.46)]
    worse += [_row("supervised_converged", 1, 0.60), _row("online_scratch", 1, 0.56)]
    assert "worse than the supervised run beyond the spread" in "\n".join(scratch_sections(worse, "test"))
    assert "no spread to judge by" in "\n".join(scratch_sections(rows[:2], "test"))
    assert scratch_sections(rows[:1], "test") == []  # no online run from scratch: no section


def test_the_online_run_from_scratch_takes_the_converged_runs_schedule(tmp_path):
    data = write_dataset(tmp_path / "data", SynthSpec(images=24, imgsz=64, seed=2, test_images=4))
    assert main(["split", str(data), "--fraction", "0.5", "--out", str(tmp_path / "split")]) == 0
    overrides = ["train.epochs=2", "train.imgsz=64", "train.batch=4", "train.workers=0", "train.plots=false"]
    overrides += ["semi.validate_teacher=false", "semi.burn_in=1"]
    out = tmp_path / "ablation"
    args = ["ablate", str(tmp_path / "split" / "config.yaml"), *overrides, "--out", str(out), "--seeds", "1"]
    assert main([*args, "--only", "online_scratch"]) == 0
    rows = {r["run"]: r for r in csv.DictReader((out / "ablation.csv").open()) if r["eval_split"] == "val"}
    assert list(rows) == ["supervised_converged", "online_scratch"]
    assert rows["online_scratch"]["kind"] == "online_scratch"
    assert rows["online_scratch"]["optimizer_steps"] == rows["supervised_converged"]["optimizer_steps"]
    scratch = yaml.safe_load((out / "online_scratch" / "semi.yaml").read_text())
    assert scratch["mode"] == "online" and scratch["burn_in"] == 1 and scratch["init_state"] is None
    assert yaml.safe_load((out / "online_scratch" / "args.yaml").read_text())["model"] == "yolov8n.yaml"
    report = (out / "ablation.md").read_text()
    assert "## From scratch, the way a user runs it, on the test split" in report
