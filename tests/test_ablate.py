"""The ablation protocol: the report's arithmetic on fixture rows, and a tiny end-to-end run (a few optimizer
steps) that checks the continuation's learning rate and the arms' equal step counts, and re-runs fast."""

import csv
import itertools
import math
import re

import matplotlib.image
import pytest
import yaml

from semiyolo.cli import main
from semiyolo.data import SynthSpec, write_dataset
from semiyolo.experiments import report_plots
from semiyolo.experiments.report import gap_closed, mean_std, summarize_arms, write_protocol_report
from semiyolo.experiments.rows import MAP
from semiyolo.experiments.run_archive import copy_results


def _row(kind, seed, map5095, **extra):
    return {
        "kind": kind,
        "run": f"seed{seed}/{kind}" if seed is not None else kind,
        "seed": seed,
        "lambda_bg": extra.pop("lambda_bg", 0.0),
        "bg_mode": "max",
        "optimizer_steps": extra.pop("steps", 10),
        "metrics/mAP50-95(B)": map5095,
        "bg_fp/background_fp_per_image": extra.pop("bg", 0.5),
        **extra,
    }


FIXTURE = [
    _row("supervised_converged", None, 0.45, steps=100),
    _row("supervised_continued", 0, 0.5),
    _row("supervised_continued", 1, 0.6),
    _row("online", 0, 0.6, bg=0.4),
    _row("online", 1, 0.6, bg=0.2),
    _row("online", 0, 0.7, lambda_bg=1.0),
    _row("online", 1, 0.75, lambda_bg=1.0),
    _row("fully_labeled", None, 0.9, steps=100),
]


def test_gap_closed_and_spread_by_hand():
    assert gap_closed(0.6, 0.5, 0.9) == pytest.approx(0.25)  # 0.1 of a 0.4 gap
    assert math.isnan(gap_closed(0.6, 0.9, 0.9))  # no gap to close
    mean, std = mean_std([0.25, 0.0])
    assert mean == pytest.approx(0.125) and std == pytest.approx(0.25 / math.sqrt(2))  # sample std of two values
    assert mean_std([0.3]) == (0.3, 0.0)


def test_arms_pair_each_seed_with_its_own_continuation():
    arms = {e["arm"]: e for e in summarize_arms(FIXTURE)}
    assert list(arms) == [
        "supervised_converged",
        "supervised_continued",
        "online bg0",
        "online bg1",
        "fully_labeled",
    ]
    # online bg0: seed 0 (0.6 - 0.5) / (0.9 - 0.5) = 0.25, seed 1 (0.6 - 0.6) / 0.3 = 0
    assert arms["online bg0"]["gap closed"][0] == pytest.approx(0.125)
    # online bg1: seed 0 0.2 / 0.4 = 0.5, seed 1 0.15 / 0.3 = 0.5
    assert arms["online bg1"]["gap closed"] == pytest.approx((0.5, 0.0))
    assert arms["supervised_continued"]["gap closed"] == pytest.approx((0.0, 0.0))
    assert arms["online bg0"]["bg FP / image"] == pytest.approx((0.3, 0.2 / math.sqrt(2)))
    assert math.isnan(arms["fully_labeled"]["gap closed"][0])


def test_gap_closed_is_taken_against_the_mean_ceiling_with_the_range_of_its_runs(tmp_path):
    two_ceilings = [*FIXTURE, {**_row("fully_labeled", 1, 0.8, steps=100), "run": "seed1/fully_labeled"}]
    arms = {e["arm"]: e for e in summarize_arms(two_ceilings)}
    assert arms["fully_labeled"]["seeds"] == 2 and arms["fully_labeled"]["mAP50-95"][0] == pytest.approx(0.85)
    # online bg1 against the mean ceiling 0.85: seed 0 0.2 / 0.35 = 0.5714, seed 1 0.15 / 0.25 = 0.6
    assert arms["online bg1"]["gap closed"][0] == pytest.approx((0.2 / 0.35 + 0.6) / 2)
    # against 0.9 alone: 0.5 and 0.5; against 0.8 alone: 0.2 / 0.3 and 0.15 / 0.2 = 0.75
    assert arms["online bg1"]["gap closed range"] == pytest.approx((0.5, (0.2 / 0.3 + 0.75) / 2))
    one_ceiling = {e["arm"]: e for e in summarize_arms(FIXTURE)}
    assert all(math.isnan(v) for v in one_ceiling["online bg1"]["gap closed range"])  # one ceiling: no range
    md = write_protocol_report(two_ceilings, {}, tmp_path).read_text()
    assert "| 0.586 ± 0.020 | 0.500 to 0.708 |" in md  # std of 0.5714 and 0.6: 0.0286 / sqrt(2)


def test_report_on_fixture_rows(tmp_path):
    histories = {
        "supervised_converged": [
            {"semi/optimizer_steps": str(25 * i), "metrics/mAP50-95(B)": str(m)}
            for i, m in enumerate((0.1, 0.3, 0.4, 0.44, 0.45), 1)
        ],
        "seed0/online": [{"semi/optimizer_steps": "5", "metrics/mAP50-95(B)": "0.5", "semi/teacher_conf": "0.6"}],
    }
    md = write_protocol_report(FIXTURE, histories, tmp_path).read_text()
    assert "| online bg1 | 2 | 10 | 0.725 ± 0.035 |" in md
    # three quarters of 5 epochs: the 3rd (0.4 at 75 steps); the end 0.45 at 125 steps
    assert "mAP50-95 0.400 at 75 optimizer steps" in md and "added +0.050" in md
    rows = list(csv.DictReader((tmp_path / "ablation.csv").open()))
    assert len(rows) == len(FIXTURE) and {"kind", "seed", "optimizer_steps", "images_seen"} <= set(rows[0])
    pngs = ("recall_map_vs_lambda.png", "bg_fp_vs_lambda.png", "curves_map.png", "teacher_confidence.png")
    for png in (*pngs, "continuations_map.png"):
        assert matplotlib.image.imread(tmp_path / png).shape[1] > 300


def test_a_run_from_scratch_is_drawn_from_step_0_and_not_among_the_continuations(tmp_path, monkeypatch):
    drawn = []
    monkeypatch.setattr(report_plots, "_plot_by_arm", lambda ax, colours, arm, xs, ys, **kw: drawn.append((arm, xs)))
    rows = [
        {"kind": "supervised_converged", "run": "supervised_converged", "optimizer_steps": 100, MAP: 0.4},
        {"kind": "supervised_continued", "run": "seed0/supervised_continued", "seed": 0, MAP: 0.41},
        {"kind": "online_scratch", "run": "online_scratch", "seed": 0, MAP: 0.45},
    ]
    curve = [{"semi/optimizer_steps": "50", MAP: "0.3"}]
    histories = {r["run"]: curve for r in rows}
    report_plots.plot_continuations(histories, rows, tmp_path)
    assert [arm for arm, _ in drawn] == ["supervised_continued"]
    drawn.clear()
    report_plots.plot_curves_by_steps(histories, rows, tmp_path)
    starts = {arm: xs[0] for arm, xs in drawn}
    # step 50 of its own run: the continuation after the converged run's 100 steps, the scratch run from 0
    assert starts == {"supervised_converged": 50, "supervised_continued": 150, "online_scratch": 50}


def _column(path, key):
    return [float(r[key]) for r in csv.DictReader(path.open())]


def test_tiny_protocol_end_to_end(tmp_path, capsys):
    data = write_dataset(tmp_path / "data", SynthSpec(images=30, imgsz=64, seed=2, test_images=6))
    assert main(["split", str(data), "--fraction", "0.5", "--out", str(tmp_path / "split")]) == 0
    config = tmp_path / "split" / "config.yaml"
    overrides = [
        "train.epochs=1",
        "train.imgsz=64",
        "train.batch=4",
        "train.workers=0",
        "train.plots=false",
        "semi.validate_teacher=false",
    ]
    out = tmp_path / "ablation"
    args = ["ablate", str(config), *overrides, "--out", str(out), "--steps", "2", "--seeds", "1", "--lambdas", "1"]
    assert main([*args, "--lr-scales", "2"]) == 0
    table = list(csv.DictReader((out / "ablation.csv").open()))
    rows = {r["run"]: r for r in table if r["eval_split"] == "val"}
    runs = [
        "supervised_converged",
        "seed0/supervised_continued",
        "seed0/supervised_continued_lr2",
        "seed0/supervised_continued_bg1",
        "seed0/online_bg0",
        "seed0/online_bg1",
        "seed0/offline",
        "seed0/oracle_continued",
        "fully_labeled",
        "fully_labeled_continued",
    ]
    assert list(rows) == runs
    # the runs continuations start from keep their exact-resume state (semi.keep_state), which a run drops otherwise
    assert (out / "supervised_converged" / "weights" / "train_state.pt").is_file()
    assert (out / "fully_labeled" / "weights" / "train_state.pt").is_file()
    # every run measured again on the test split, which chose nothing; the label split is the split's seed
    assert [r["run"] for r in table if r["eval_split"] == "test"] == runs
    assert {r["label_split"] for r in table} == {"0"} and (out / "seed0" / "online_bg1" / "test_metrics.json").is_file()
    assert "## Arms on the test split" in (out / "ablation.md").read_text()
    # the oracle continues on the labeled and the unlabeled images with their hidden labels, the ceiling's data,
    # and so does the ceiling's own continuation, from the ceiling's final state
    oracle_args = yaml.safe_load((out / "seed0" / "oracle_continued" / "args.yaml").read_text())
    ceiling_args = yaml.safe_load((out / "fully_labeled_continued" / "args.yaml").read_text())
    assert (
        oracle_args["data"]
        == ceiling_args["data"]
        == str(out / "fully_labeled.yaml")
        == yaml.safe_load((out / "fully_labeled" / "args.yaml").read_text())["data"]
    )
    assert ceiling_args["model"] == str(out / "fully_labeled" / "weights" / "last.pt")
    # every continuation, control and the ceiling's continuation take exactly the budget; the ceiling as many
    # steps as the converged run
    assert {rows[r]["optimizer_steps"] for r in rows if r.startswith("seed0/")} == {"2"}
    assert rows["fully_labeled_continued"]["optimizer_steps"] == "2"
    assert rows["fully_labeled"]["optimizer_steps"] == rows["supervised_converged"]["optimizer_steps"]
    # an online step carries as many unlabeled images as labeled ones: twice the images of the continuation
    assert int(rows["seed0/online_bg0"]["images_seen"]) == 2 * int(rows["seed0/supervised_continued"]["images_seen"])
    assert rows["seed0/supervised_continued_bg1"]["lambda_bg"] == "1.0"  # the penalty alone
    assert all(float(rows[r]["update_norm"]) > 0 for r in runs)  # the update sizes, for the lr control
    # no re-warm-up: AdamW's peak for 3 classes is round(0.002 * 5 / 7, 6) = 0.001429, a continuation starts at
    # 0.1 of it in every parameter group (a warm-up would start the biases elsewhere) and only decays; the
    # learning-rate control at twice that
    for run, first in (("seed0/supervised_continued", 0.0001429), ("seed0/online_bg1", 0.0001429)):
        for group in ("lr/pg0", "lr/pg1", "lr/pg2"):
            lrs = _column(out / run / "results.csv", group)
            assert lrs[0] == pytest.approx(first) and all(b <= a for a, b in itertools.pairwise(lrs))
    assert _column(out / "seed0/supervised_continued_lr2" / "results.csv", "lr/pg0")[0] == pytest.approx(0.0002858)
    # the converged run closed mosaic (Ultralytics' default close_mosaic 10 covers its one epoch): every
    # continuation closes it from its first epoch
    for run in runs[1:8]:
        run_args = yaml.safe_load((out / run / "args.yaml").read_text())
        assert run_args["close_mosaic"] == run_args["epochs"], run
    assert "gap closed" in (out / "ablation.md").read_text()
    capsys.readouterr()
    assert main([*args, "--lr-scales", "2"]) == 0
    assert capsys.readouterr().out.count("(finished earlier, skipped)") == 10
    # a second ceiling seed later: only it trains, with its own seed, and the report takes both ceilings
    assert main([*args, "--ceiling-seeds", "2", "--only", "fully_labeled", "--only-seeds", "1"]) == 0
    assert capsys.readouterr().out.count("(finished earlier, skipped)") == 1  # the converged run
    assert yaml.safe_load((out / "seed1" / "fully_labeled" / "args.yaml").read_text())["seed"] == 1
    kinds = [r["kind"] for r in csv.DictReader((out / "ablation.csv").open()) if r["eval_split"] == "val"]
    assert kinds.count("fully_labeled") == 2
    assert "| fully_labeled | 2 |" in (out / "ablation.md").read_text()
    _check_an_archive_reports_the_same(out, args, tmp_path / "archive", capsys)
    # an online arm at the lr2 control's rate (the control finished above): it alone trains, from twice 0.0001429
    assert main([*args, "--lr-scales", "--only", "variants", "--variant", "fast:lr_scale=2"]) == 0
    assert re.findall(r"^seed0/\S+$", capsys.readouterr().out, re.M) == ["seed0/online_fast"]
    assert _column(out / "seed0/online_fast" / "results.csv", "lr/pg0")[0] == pytest.approx(0.0002858)
    fast = next(r for r in csv.DictReader((out / "ablation.csv").open()) if r["run"] == "seed0/online_fast")
    assert fast["lr_scale"] == "2.0" and rows["seed0/supervised_continued"]["lr_scale"] == ""


def _check_an_archive_reports_the_same(out, args, archive, capsys):
    """The results archive (no weights) gives the same report; it cannot be continued, and says why."""
    copied = copy_results(out, archive)
    assert copied and not list(archive.glob("**/*.pt"))
    assert copy_results(out, archive) == []  # nothing twice, nothing overwritten
    with pytest.raises(ValueError, match="one lies inside the other"):
        copy_results(out, out / "archive")
    assert main([*args, "--lr-scales", "2", "--out", str(archive), "--report-only"]) == 0
    assert not list(archive.glob("**/*.pt"))  # trained nothing
    lines = [sorted((report / "ablation.csv").read_text().splitlines()) for report in (archive, out)]
    assert lines[0] == lines[1]  # every row, every figure (in the order of the call's arms: here fewer named)
    test_section = "## Arms on the test split"
    assert test_section in (archive / "ablation.md").read_text()
    for report in (archive, out):  # the test table, with its intervals over the test images, as the runs gave it
        section = (report / "ablation.md").read_text().split(test_section)[1].split("## ")[0]
        assert section == (out / "ablation.md").read_text().split(test_section)[1].split("## ")[0]
    capsys.readouterr()
    assert main([*args, "--lr-scales", "2", "--out", str(archive)]) == 2
    assert "train_state.pt is not there" in capsys.readouterr().err
    assert main([*args, "--out", str(archive.parent / "empty"), "--report-only"]) == 2
    assert "no finished run" in capsys.readouterr().err


def test_protocol_settings_are_checked():
    from semiyolo.errors import ConfigError
    from semiyolo.experiments.ablate import _fixed_batch
    from semiyolo.experiments.protocol import Protocol

    with pytest.raises(ConfigError, match="--continue-lr"):
        Protocol(continue_lr=0)
    assert Protocol(lambdas=(0.0, 1.0, 1.0, 0.5)).lambdas == (1.0, 0.5)  # lambda 0 is always run, once
    with pytest.raises(ConfigError, match=r"train.batch: the ablation needs a fixed batch size .* got -1"):
        _fixed_batch({"batch": -1})


def test_only_seeds_and_only_choose_the_continuations_to_train():
    from semiyolo.errors import ConfigError
    from semiyolo.experiments.protocol import Protocol, arms_to_run, continuation_arms

    with pytest.raises(ConfigError, match=r"--only-seeds: \[3\] outside the 3 seeds \(0 to 2\)"):
        Protocol(seeds=3, only_seeds=(3,))
    protocol = Protocol(seeds=3, only_seeds=(2, 0), only=("online", "oracle_continued"), offline=False)
    arms = continuation_arms(protocol, [5, 6, 7])  # train.seed 5: seeds 5, 6, 7
    chosen = [a.name for a in arms_to_run(protocol, arms, base_seed=5, hidden_labels=True)]
    assert chosen == [f"seed{s}/{arm}" for s in (5, 7) for arm in ("online_bg0", "online_bg1", "oracle_continued")]
    chosen = [a.name for a in arms_to_run(protocol, arms, base_seed=5, hidden_labels=False)]
    assert chosen == [f"seed{s}/{arm}" for s in (5, 7) for arm in ("online_bg0", "online_bg1")]
    everything = arms_to_run(Protocol(seeds=2), continuation_arms(Protocol(seeds=2), [0, 1]), 0, True)
    # per seed: supervised, its lr2 and lr4 and bg1 controls, online bg0 and bg1, offline, oracle
    assert len(everything) == 2 * 8
    variant = ("flip", {"teacher_flip": True})
    alone = Protocol(seeds=2, only=("variants", "supervised_continued"), only_seeds=(1,), variants=(variant,))
    chosen = [a.name for a in arms_to_run(alone, continuation_arms(alone, [0, 1]), 0, True)]
    assert chosen == ["seed1/supervised_continued", "seed1/online_flip"]  # not online_bg0 / online_bg1
    with pytest.raises(ConfigError, match="--only variants: no --variant given"):
        Protocol(only=("variants",))
    with_online = Protocol(seeds=1, only=("online",), offline=False, variants=(variant,))
    chosen = [a.name for a in arms_to_run(with_online, continuation_arms(with_online, [0]), 0, True)]
    assert chosen == ["seed0/online_bg0", "seed0/online_bg1", "seed0/online_flip"]  # online takes the variants too


def test_a_run_finished_with_other_settings_is_not_reused(tmp_path):
    import json

    import yaml

    from semiyolo.errors import ConfigError
    from semiyolo.experiments.runs import train_or_reuse

    cfg = {
        "model": "m.yaml",
        "data": "d.yaml",
        "train": {"epochs": 3},
        "semi": {"mode": "supervised", "lambda_bg": 0.0},
    }
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "args.yaml").write_text(yaml.safe_dump({"model": "m.yaml", "data": "d.yaml", "epochs": 3}))
    row = {"run": "r", "semi": {"mode": "supervised", "lambda_bg": 0.0}}  # written before pseudo_targets existed
    (tmp_path / "r" / "ablation_row.json").write_text(json.dumps(row))
    assert train_or_reuse(tmp_path, "r", "supervised_continued", 0, cfg)["run"] == "r"  # same settings: reused
    # an online-only key does not concern a supervised run; a key it predates counts as its default
    online_only = {**cfg, "semi": {**cfg["semi"], "teacher_decay": 0.5, "pseudo_targets": "hard"}}
    assert train_or_reuse(tmp_path, "r", "supervised_continued", 0, online_only)["run"] == "r"
    # an online run written before pseudo_targets and teacher_half_life existed made hard targets at a fixed decay
    online = {**cfg, "semi": {"mode": "online", "lambda_bg": 0.0, "pseudo_targets": "hard", "teacher_half_life": None}}
    stored_before = {**row, "semi": {"mode": "online", "lambda_bg": 0.0}}
    (tmp_path / "r" / "ablation_row.json").write_text(json.dumps(stored_before))
    assert train_or_reuse(tmp_path, "r", "online", 0, online)["run"] == "r"
    with pytest.raises(ConfigError, match=r"other settings \(semi.pseudo_targets\)"):
        train_or_reuse(tmp_path, "r", "online", 0, {**online, "semi": {**online["semi"], "pseudo_targets": "tiered"}})
    (tmp_path / "r" / "ablation_row.json").write_text(json.dumps(row))
    with pytest.raises(ConfigError, match=r"finished earlier with other settings \(epochs\)"):
        train_or_reuse(tmp_path, "r", "supervised_continued", 0, {**cfg, "train": {"epochs": 4}})
    with pytest.raises(ConfigError, match=r"other settings \(semi.lambda_bg\)"):
        penalised = {**cfg, "semi": {"mode": "supervised", "lambda_bg": 1.0}}
        train_or_reuse(tmp_path, "r", "supervised_continued", 0, penalised)


def test_unlabeled_images_without_hidden_labels_are_named_in_a_note(tmp_path):
    from PIL import Image

    from semiyolo.data import list_images
    from semiyolo.experiments.hidden_labels import missing_hidden_labels

    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    for name in ("a", "b", "c"):
        Image.new("RGB", (8, 8)).save(tmp_path / "images" / f"{name}.png")
    folder = str(tmp_path / "images")
    images = list_images(folder)
    assert missing_hidden_labels(images, folder) == f"the unlabeled images ({folder}) have no label files"
    (tmp_path / "labels" / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    assert missing_hidden_labels(images, folder).startswith("2 of 3 unlabeled images")
    for name in ("b", "c"):
        (tmp_path / "labels" / f"{name}.txt").write_text("")  # images without objects: an empty label file
    assert missing_hidden_labels(images, folder) == ""


def test_the_offline_arms_labels_are_made_again_for_another_teacher(tmp_path, monkeypatch):
    import json

    from semiyolo.experiments import offline_labels

    calls = []

    def fake_pseudo_label_folder(weights, source, out, filters, imgsz, overwrite, teacher_flip, teacher_scale):
        calls.append((teacher_flip, teacher_scale))
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text(json.dumps({"teacher": {"flip": teacher_flip, "scale": teacher_scale}}))

    monkeypatch.setattr(offline_labels, "pseudo_label_folder", fake_pseudo_label_folder)
    cfg = {"train": {"imgsz": 64}, "semi": {"unlabeled": "u", "filters": []}}
    flipped = {"train": {"imgsz": 64}, "semi": {"unlabeled": "u", "filters": [], "teacher_flip": True}}
    for run_cfg in (cfg, cfg, flipped, flipped, cfg):
        offline_labels.offline_pseudo_labels(tmp_path, tmp_path / "converged", run_cfg)
    assert calls == [(False, 1.0), (True, 1.0), (False, 1.0)]  # made, reused, made again, reused, made again
    (tmp_path / "offline_pseudo_labels" / "summary.json").write_text("{}")  # written before the teacher was recorded
    offline_labels.offline_pseudo_labels(tmp_path, tmp_path / "converged", cfg)
    assert len(calls) == 3  # taken as the plain teacher's


def test_ceiling_seeds_name_their_runs_and_follow_only_and_only_seeds():
    from semiyolo.errors import ConfigError
    from semiyolo.experiments.protocol import Protocol, ceiling_runs, ceilings_to_run

    three = Protocol(seeds=1, ceiling_seeds=3)
    # the first keeps the folder a single ceiling always had, so earlier ablation folders are reused
    assert ceiling_runs(three, base_seed=5) == [
        ("fully_labeled", 5),
        ("seed6/fully_labeled", 6),
        ("seed7/fully_labeled", 7),
    ]
    assert ceilings_to_run(three, 5, hidden_labels=True) == ceiling_runs(three, 5)
    assert ceilings_to_run(three, 5, hidden_labels=False) == []
    only_last = Protocol(seeds=1, ceiling_seeds=3, only_seeds=(2,), only=("fully_labeled",))
    assert ceilings_to_run(only_last, 5, hidden_labels=True) == [("seed7/fully_labeled", 7)]
    assert ceilings_to_run(Protocol(ceiling_seeds=3, only=("online",)), 5, hidden_labels=True) == []
    assert ceilings_to_run(Protocol(seeds=3, only_seeds=(1,)), 0, hidden_labels=True) == []  # one ceiling: seed 0
    with pytest.raises(ConfigError, match=r"--only-seeds: \[3\] outside the 3 seeds \(0 to 2\)"):
        Protocol(seeds=1, ceiling_seeds=3, only_seeds=(3,))
    with pytest.raises(ConfigError, match="--ceiling-seeds: expected at least 1 seed, got 0"):
        Protocol(ceiling_seeds=0)


def test_the_report_takes_every_finished_run_whatever_the_last_call_named(tmp_path):
    import json

    from semiyolo.experiments.runs import finished_rows

    for run, kind in (
        ("supervised_converged", "supervised_converged"),
        ("fully_labeled", "fully_labeled"),
        ("seed1/fully_labeled", "fully_labeled"),
        ("seed0/supervised_continued", "supervised_continued"),
        ("seed0/online_flip", "online"),  # a --variant of an earlier call
        ("seed0/online_bg1", "online"),
    ):
        (tmp_path / run).mkdir(parents=True)
        (tmp_path / run / "ablation_row.json").write_text(json.dumps({"run": run, "kind": kind}))
    (tmp_path / "seed0" / "online_bg0").mkdir()  # unfinished: no row
    names = ["supervised_converged", "seed0/supervised_continued", "seed0/online_bg0", "seed0/online_bg1"]
    runs = [row["run"] for row in finished_rows(tmp_path, [*names, "fully_labeled"])]
    assert runs == [
        "supervised_converged",
        "seed0/supervised_continued",
        "seed0/online_bg1",
        "seed0/online_flip",
        "fully_labeled",
        "seed1/fully_labeled",
    ]
