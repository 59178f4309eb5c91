"""The protocol's controls and test split (issue 28): the baseline is the best-tuned labeled-only continuation,
chosen on validation; test figures come from images that chose nothing."""

import csv
import json

import pytest

from semiyolo.errors import ConfigError
from semiyolo.experiments.held_out import TEST_IMAGE_STATS, TEST_METRICS, measured_on_test, rows_by_split
from semiyolo.experiments.report import summarize_arms, write_protocol_report
from tiny_runs import tiny_train


def _row(kind, seed, map5095, run=None, **extra):
    return {
        "kind": kind,
        "run": run or (f"seed{seed}/{kind}" if seed is not None else kind),
        "seed": seed,
        "lambda_bg": extra.pop("lambda_bg", 0.0),
        "bg_mode": "max",
        "optimizer_steps": 10,
        "metrics/mAP50-95(B)": map5095,
        "bg_fp/background_fp_per_image": 0.5,
        **extra,
    }


ROWS = [
    _row("supervised_converged", None, 0.45),
    _row("supervised_continued", 0, 0.50),
    _row("supervised_continued", 1, 0.52),
    _row("supervised_continued_lr", 0, 0.56, run="seed0/supervised_continued_lr2"),
    _row("supervised_continued_lr", 1, 0.54, run="seed1/supervised_continued_lr2"),
    _row("supervised_continued_bg", 0, 0.51, run="seed0/supervised_continued_bg1", lambda_bg=1.0),
    _row("supervised_continued_bg", 1, 0.51, run="seed1/supervised_continued_bg1", lambda_bg=1.0),
    _row("online", 0, 0.66, lambda_bg=1.0),
    _row("online", 1, 0.64, lambda_bg=1.0),
    _row("fully_labeled", None, 0.80),
]


def test_the_best_labeled_only_continuation_is_the_baseline():
    arms = {e["arm"]: e for e in summarize_arms(ROWS)}
    # supervised_continued averages 0.51, its lr2 control 0.55: lr2 is the baseline, the controls named by folder
    assert arms["supervised_continued_lr2"]["baseline"] and not arms["supervised_continued"]["baseline"]
    assert not arms["supervised_continued_bg1"]["baseline"]  # another recipe (the penalty): a control, never it
    # online bg1 against lr2, per seed: (0.66 - 0.56) / (0.80 - 0.56) = 0.41667, (0.64 - 0.54) / 0.26 = 0.38462
    assert arms["online bg1"]["gap closed"][0] == pytest.approx((0.1 / 0.24 + 0.1 / 0.26) / 2)
    # the penalty alone, against the same baseline: (0.51 - 0.56) / 0.24 and (0.51 - 0.54) / 0.26, below zero
    assert arms["supervised_continued_bg1"]["gap closed"][0] == pytest.approx((-0.05 / 0.24 - 0.03 / 0.26) / 2)


def test_test_rows_keep_the_baseline_chosen_on_validation(tmp_path):
    # on test, plain supervised_continued would win (0.60 against 0.58): the test split must not choose it
    tests = {r["run"]: {"metrics/mAP50-95(B)": r["metrics/mAP50-95(B)"]} for r in ROWS}
    tests["seed0/supervised_continued"] = tests["seed1/supervised_continued"] = {"metrics/mAP50-95(B)": 0.60}
    tests["seed0/supervised_continued_lr2"] = tests["seed1/supervised_continued_lr2"] = {"metrics/mAP50-95(B)": 0.58}
    rows = rows_by_split(ROWS, tests)
    assert [r["eval_split"] for r in rows] == ["val"] * len(ROWS) + ["test"] * len(ROWS)
    test_rows = rows[len(ROWS) :]
    assert all("bg_fp/background_fp_per_image" not in r for r in test_rows)  # measured on validation only
    md = write_protocol_report(rows, {}, tmp_path).read_text()
    test_table, val_table = md.split("## Arms on the validation split")
    baseline = "| supervised_continued_lr2 (baseline) |"
    assert baseline in test_table and baseline in val_table
    # online bg1 on test against lr2's 0.58: (0.66 - 0.58) / 0.22 and (0.64 - 0.58) / 0.22; mean 0.318, and
    # std (0.3636 - 0.2727) / sqrt(2) = 0.064
    assert "| online bg1 | 2 | 10 | 0.650 ± 0.014 |" in test_table and "| 0.318 ± 0.064 |" in test_table
    csv_rows = list(csv.DictReader((tmp_path / "ablation.csv").open()))
    assert {r["eval_split"] for r in csv_rows} == {"val", "test"} and len(csv_rows) == 2 * len(ROWS)


def test_a_runs_test_metrics_are_measured_once(tmp_path):
    calls = []

    def evaluate(weights, image_stats):
        calls.append(weights)
        image_stats.parent.mkdir(parents=True, exist_ok=True)
        image_stats.write_bytes(b"per-image statistics")
        return {"metrics/mAP50-95(B)": 0.4}

    run = tmp_path / "seed0" / "online_bg1"
    assert measured_on_test(run, evaluate) is None and calls == []  # no weights to measure: said, left out
    (run / "weights").mkdir(parents=True)
    (run / "weights" / "last.pt").write_bytes(b"weights")
    assert measured_on_test(run, evaluate) == {"metrics/mAP50-95(B)": 0.4}
    assert measured_on_test(run, evaluate) == {"metrics/mAP50-95(B)": 0.4}
    assert calls == [run / "weights" / "last.pt"]  # the second call read the cached file
    (run / TEST_METRICS).write_text("")  # cut short: measured again
    assert measured_on_test(run, evaluate) == {"metrics/mAP50-95(B)": 0.4} and len(calls) == 2
    assert json.loads((run / TEST_METRICS).read_text()) == {"metrics/mAP50-95(B)": 0.4}
    (run / TEST_IMAGE_STATS).unlink()  # measured before the statistics were kept: measured again, to keep them
    assert measured_on_test(run, evaluate) == {"metrics/mAP50-95(B)": 0.4} and len(calls) == 3
    assert (run / TEST_IMAGE_STATS).is_file()
    (run / TEST_IMAGE_STATS).unlink()
    (run / "weights" / "last.pt").unlink()  # restored without weights: the cached metrics alone, not measured
    assert measured_on_test(run, evaluate) == {"metrics/mAP50-95(B)": 0.4} and len(calls) == 3


def test_converged_is_said_only_of_a_flat_curve():
    from semiyolo.experiments.report import convergence_note

    def history(maps):
        return [{"semi/optimizer_steps": str(10 * i), "metrics/mAP50-95(B)": str(m)} for i, m in enumerate(maps, 1)]

    # 8 epochs: three quarters is the 6th (0.50 at 60 steps); the end 0.503 adds +0.003, under 0.005
    flat = convergence_note(history([0.1, 0.3, 0.4, 0.45, 0.49, 0.50, 0.501, 0.503]))
    assert flat.startswith("supervised_converged: converged (flat within 0.005)") and "added +0.003" in flat
    # the same run still climbing: +0.020 over its last quarter
    climbing = convergence_note(history([0.1, 0.3, 0.4, 0.45, 0.49, 0.50, 0.51, 0.52]))
    assert climbing.startswith("WARNING: supervised_converged is NOT converged") and "added +0.020" in climbing
    assert "not shown to be converged" in convergence_note(history([0.1, 0.2]))


def test_the_ceiling_trained_as_long_as_the_arms_is_used_only_where_every_ceiling_has_one():
    from semiyolo.experiments.report import ceiling_runs_by_split

    two = [_row("fully_labeled", 0, 0.80, run="fully_labeled"), _row("fully_labeled", 1, 0.82)]
    one_continued = [*two, _row("fully_labeled_continued", 0, 0.85, run="fully_labeled_continued")]
    assert ceiling_runs_by_split(one_continued) == {None: [0.80, 0.82]}  # never a mix of the two kinds
    both = [*one_continued, _row("fully_labeled_continued", 1, 0.86)]
    assert ceiling_runs_by_split(both) == {None: [0.85, 0.86]}
    # gap closed against the continued ceiling: online bg1's seed 0 (0.66 - 0.56) / (0.855 - 0.56)
    rows = [r for r in ROWS if r["kind"] != "fully_labeled"] + both
    arms = {e["arm"]: e for e in summarize_arms(rows)}
    assert arms["online bg1"]["gap closed"][0] == pytest.approx((0.10 / 0.295 + 0.10 / 0.315) / 2)


def test_the_augmentation_control_blends_every_labeled_batch(tmp_path, tiny_data, monkeypatch):
    import yaml

    from semiyolo.integrations.ultralytics import supervised, train

    blended = []

    def recording(batch, probability, generator, **options):
        before = batch["img"].clone()
        out = supervised_mix(batch, probability, generator, **options)
        blended.append((probability, before.shape[0], bool((out["img"] != before).any())))
        return out

    supervised_mix = supervised.mix_labeled
    monkeypatch.setattr(supervised, "mix_labeled", recording)
    cfg = {
        "model": "yolov8n.yaml",
        "data": str(tiny_data),
        "train": tiny_train(tmp_path, "train", epochs=1),
        "semi": {"mode": "supervised", "labeled_mixup": 1.0},
    }
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(cfg))
    train(tmp_path / "run.yaml")
    # tiny_data has 12 images, 80 % for training: ceil(10 / 4) = 3 batches (the last of 2); each one blended whole
    assert [b[:2] for b in blended] == [(1.0, 4), (1.0, 4), (1.0, 2)] and all(b[2] for b in blended)


def test_label_splits_are_drawn_like_the_configs_own_with_the_next_seeds(tmp_path):
    import yaml

    from semiyolo.data import SynthSpec, split_dataset, write_dataset
    from semiyolo.experiments.label_splits import split_configs

    data = write_dataset(tmp_path / "data", SynthSpec(images=20, imgsz=32, seed=0))
    config = split_dataset(data, 0.25, 5, tmp_path / "split")
    plans = split_configs(config, tmp_path / "out", 3, ["train.epochs=2"])
    assert [seed for seed, _ in plans] == [5, 6, 7] and plans[0][1] == ["train.epochs=2"]
    labeled = []
    for seed, overrides in plans[1:]:
        folder = tmp_path / "out" / f"split{seed}" / "data"
        assert overrides == [
            "train.epochs=2",
            f"data={folder / 'data.yaml'}",
            f"semi.unlabeled={folder / 'unlabeled' / 'images'}",
        ]
        manifest = json.loads((folder / "split.json").read_text())
        assert (manifest["seed"], manifest["fraction"], manifest["source"]) == (seed, 0.25, str(data))
        labeled.append(sorted(manifest["labeled"]))
    first = sorted(json.loads((tmp_path / "split" / "split.json").read_text())["labeled"])
    assert len({tuple(first), *map(tuple, labeled)}) == 3  # three different labeled subsets of 4 of 16 images
    mine = yaml.safe_load(config.read_text())
    mine["data"] = str(data)  # a dataset that no 'semiyolo split' made
    (tmp_path / "plain.yaml").write_text(yaml.safe_dump(mine))
    with pytest.raises(ConfigError, match=r"--splits: .* was not made by 'semiyolo split'"):
        split_configs(tmp_path / "plain.yaml", tmp_path / "out", 2)


def test_the_report_over_label_splits_pairs_each_run_within_its_split(tmp_path, monkeypatch):
    from semiyolo.experiments import ablate

    def one_split(config, out_dir, protocol, overrides, train):
        seed = int(out_dir.name.removeprefix("split"))
        shift = 0.1 * (seed - 5)  # split 6 is 0.1 better everywhere: pairing within the split removes it
        rows = [{**r, "label_split": seed, "metrics/mAP50-95(B)": r["metrics/mAP50-95(B)"] + shift} for r in ROWS]
        return rows, rows, {}, []

    monkeypatch.setattr(ablate, "_run_one_split", one_split)
    monkeypatch.setattr(ablate, "split_configs", lambda config, out, splits, overrides: [(5, []), (6, [])])
    rows = ablate.run_ablation("unused.yaml", tmp_path, ablate.Protocol(splits=2))
    assert {r["label_split"] for r in rows} == {5, 6} and len(rows) == 2 * len(ROWS)
    table = list(csv.DictReader((tmp_path / "ablation.csv").open()))
    assert table[0]["run"] == "split5/supervised_converged" and table[len(ROWS)]["run"] == "split6/supervised_converged"
    arms = {e["arm"]: e for e in summarize_arms(rows)}
    # online bg1 per split and seed, against its own split's lr2 baseline and ceiling: the shift cancels, so the
    # four gaps are the two of test_the_best_labeled_only_continuation_is_the_baseline, twice
    one = (0.1 / 0.24 + 0.1 / 0.26) / 2
    assert arms["online bg1"]["gap closed"][0] == pytest.approx(one) and arms["online bg1"]["seeds"] == 4


def test_only_splits_trains_the_chosen_label_splits_and_reports_them_all(tmp_path, monkeypatch):
    from semiyolo.experiments import ablate

    with pytest.raises(ConfigError, match=r"--only-splits: \[2\] outside the 2 label splits \(0 to 1\)"):
        ablate.Protocol(splits=2, only_splits=(2,))
    trained = {}

    def one_split(config, out_dir, protocol, overrides, train):
        trained[out_dir.name] = train
        rows = [{**r, "label_split": out_dir.name} for r in ROWS]
        return rows, rows, {}, []

    monkeypatch.setattr(ablate, "_run_one_split", one_split)
    monkeypatch.setattr(ablate, "split_configs", lambda config, out, splits, overrides: [(5, []), (6, []), (7, [])])
    rows = ablate.run_ablation("unused.yaml", tmp_path, ablate.Protocol(splits=3, only_splits=(1,)))
    # split6 (the second, 0-based 1) is trained; the other two only read, and every split is in the report
    assert trained == {"split5": False, "split6": True, "split7": False}
    assert {r["label_split"] for r in rows} == {"split5", "split6", "split7"}


def test_a_split_another_process_trains_is_read_not_trained(tmp_path, monkeypatch):
    from semiyolo.experiments import ablate

    monkeypatch.setattr(ablate, "_train_split", lambda *a: pytest.fail("a split left to another process was trained"))
    monkeypatch.setattr(ablate, "check_detection_dataset", lambda data: {"n_train": 2})
    monkeypatch.setattr(ablate, "list_images", lambda folder: ["a.png"])
    monkeypatch.setattr(ablate, "hidden_labels_dataset", lambda *a: None)
    monkeypatch.setattr(ablate, "_with_test_rows", lambda plan, rows: rows)
    config = tmp_path / "run.yaml"
    config.write_text(f"data: {tmp_path / 'data.yaml'}\nsemi:\n  mode: online\n  unlabeled: {tmp_path}\n")
    rows, *_ = ablate._run_one_split(config, tmp_path / "split1", ablate.Protocol(seeds=1), [], train=False)
    assert rows == []  # nothing finished there yet, and nothing trained


def test_each_arm_gets_the_interval_of_its_gain_over_the_baseline_it_is_paired_with(tmp_path):
    asked = {}

    def gain_interval(pairs):
        asked[tuple(pairs)] = True
        return (0.1, 0.02, 0.18) if pairs[0][0].endswith("online") else (0.01, -0.01, 0.03)

    tests = {r["run"]: {"metrics/mAP50-95(B)": r["metrics/mAP50-95(B)"]} for r in ROWS}
    md = write_protocol_report(rows_by_split(ROWS, tests), {}, tmp_path, gain_interval=gain_interval).read_text()
    test_table, val_table = md.split("## Arms on the validation split")
    # each continuation with the lr2 baseline of its own seed; the baseline itself, the converged run and the
    # ceiling get none
    assert (
        ("seed0/online", "seed0/supervised_continued_lr2"),
        ("seed1/online", "seed1/supervised_continued_lr2"),
    ) in asked
    assert len(asked) == 3  # online bg1, supervised_continued and the penalty control
    assert "| +0.100 [+0.020, +0.180] |" in test_table and "| +0.010 [-0.010, +0.030] (includes 0) |" in test_table
    assert "interval over images" in test_table and "interval over images" not in val_table


def test_a_baseline_at_the_edge_of_the_learning_rate_sweep_is_flagged(tmp_path):
    from semiyolo.experiments.report import sweep_edge_note

    # ROWS: lr2 (0.55) beats plain supervised_continued (0.51) and is the largest rate tried
    md = write_protocol_report(ROWS, {}, tmp_path).read_text()
    assert "WARNING: the baseline is supervised_continued_lr2, the largest learning rate of the sweep (2 x" in md
    assert "--lr-scales ... 4" in md
    # with lr4 tried and worse (0.53), lr2 is inside the sweep: nothing to say
    lr4 = [_row("supervised_continued_lr", s, 0.53, run=f"seed{s}/supervised_continued_lr4") for s in (0, 1)]
    assert sweep_edge_note(summarize_arms([*ROWS, *lr4])) == ""
    assert "largest learning rate" not in write_protocol_report([*ROWS, *lr4], {}, tmp_path).read_text()


def _seed_runs(kind, name, maps, **extra):
    """One row per seed (0, 1, ...) of label split 0, with the mAP50-95 of ``maps``."""
    return [
        {"kind": kind, "run": f"seed{s}/{name}", "seed": s, "label_split": 0, "metrics/mAP50-95(B)": m, **extra}
        for s, m in enumerate(maps)
    ]


def test_what_survives_each_control_by_hand():
    from semiyolo.experiments.control_report import control_gains, controls_markdown

    rows = [
        *_seed_runs("supervised_continued", "supervised_continued", [0.80, 0.82]),
        *_seed_runs("supervised_continued_bg", "supervised_continued_bg1", [0.81, 0.83], lambda_bg=1.0),
        *_seed_runs("supervised_continued_aug", "supervised_continued_aug_mix", [0.84, 0.84]),
        *_seed_runs("online", "online_mix", [0.85, 0.86], lambda_bg=1.0, variant="mix"),
    ]
    entries = {e["against"]: e for e in control_gains(rows, "supervised_continued")}
    assert list(entries) == ["supervised_continued", "supervised_continued_bg1", "supervised_continued_aug_mix"]
    # over the baseline: +0.05 and +0.04, mean 0.045, std 0.01 / sqrt(2)
    assert entries["supervised_continued"]["gain"] == pytest.approx((0.045, 0.01 / 2**0.5))
    # over the penalty alone: +0.04, +0.03: 0.035 of the 0.045 is left (78 %), above its spread
    assert entries["supervised_continued_bg1"]["gain"][0] == pytest.approx(0.035)
    assert entries["supervised_continued_bg1"]["share left"] == pytest.approx(0.035 / 0.045)
    # over the blend alone: +0.01, +0.02: a third of the gain is left, 0.015 above its spread 0.0071
    aug = entries["supervised_continued_aug_mix"]
    assert aug["gain"][0] == pytest.approx(0.015) and aug["share left"] == pytest.approx(1 / 3) and aug["counts"]
    assert "| online mix | supervised_continued_aug_mix | 2 | +0.0150 ± 0.0071 | 33% | yes |" in controls_markdown(
        control_gains(rows, "supervised_continued")
    )
    # one pair has no spread to beat: not called a gain
    assert not control_gains(rows[::2], "supervised_continued")[0]["counts"]


def test_each_arm_is_compared_with_the_labeled_only_continuation_at_its_own_learning_rate():
    from semiyolo.experiments.control_report import control_gains

    rows = [
        *_seed_runs("supervised_continued", "supervised_continued", [0.80, 0.80]),
        *_seed_runs("supervised_continued_lr", "supervised_continued_lr8", [0.83, 0.83]),  # the baseline
        *_seed_runs("supervised_continued_lr", "supervised_continued_lr10", [0.82, 0.84]),
        *_seed_runs("online", "online_default", [0.81, 0.82], lambda_bg=0.0, variant="default"),
        *_seed_runs("online", "online_default_lr10", [0.84] * 2, lambda_bg=0.0, variant="default_lr10", lr_scale=10.0),
    ]
    entries = {(e["arm"], e["against"]): e for e in control_gains(rows, "supervised_continued_lr8")}
    assert list(entries) == [
        ("online default", "supervised_continued_lr8"),
        ("online default", "supervised_continued"),  # its own rate: +0.01, +0.02 from the pseudo-labels
        ("online default_lr10", "supervised_continued_lr8"),
        ("online default_lr10", "supervised_continued_lr10"),  # its own rate: +0.02, 0.00
    ]
    assert entries[("online default", "supervised_continued")]["gain"][0] == pytest.approx(0.015)
    # over the baseline +0.01 each, over the same rate +0.01 on average: all of the gain is left
    lr_matched = entries[("online default_lr10", "supervised_continued_lr10")]
    assert lr_matched["gain"][0] == pytest.approx(0.01) and lr_matched["share left"] == pytest.approx(1.0)
    assert not lr_matched["counts"]  # +0.01 ± 0.0141: within its spread
    # a penalised arm at 10 x is not paired with the penalty alone, which runs at 1 x: that would mix rate and labels
    penalised = _seed_runs("supervised_continued_bg", "supervised_continued_bg1", [0.80, 0.80], lambda_bg=1.0)
    fast = _seed_runs("online", "online_mix_lr10", [0.85, 0.85], lambda_bg=1.0, variant="mix_lr10", lr_scale=10.0)
    slow = _seed_runs("online", "online_mix", [0.85, 0.85], lambda_bg=1.0, variant="mix")
    against = {}
    for e in control_gains([*rows, *penalised, *fast, *slow], "supervised_continued_lr8"):
        against.setdefault(e["arm"], []).append(e["against"])
    assert against["online mix_lr10"] == ["supervised_continued_lr8", "supervised_continued_lr10"]
    assert against["online mix"] == ["supervised_continued_lr8", "supervised_continued", "supervised_continued_bg1"]
    # an arm at the baseline's own rate has the baseline as its only rate control
    assert [e["against"] for e in control_gains(rows, "supervised_continued_lr10") if "lr10" in e["arm"]] == [
        "supervised_continued_lr10"
    ]


def test_an_object_aware_blend_gets_a_control_with_the_same_rule():
    from semiyolo.experiments.protocol import Protocol, control_arms

    protocol = Protocol(
        variants=(("aware", {"pseudo_mixup": 0.5, "mixup_max_overlap": 0.3}), ("mix", {"pseudo_mixup": 0.5}))
    )
    controls = {a.name: a.semi for a in control_arms(protocol, 0) if a.kind == "supervised_continued_aug"}
    assert controls["seed0/supervised_continued_aug_aware"]["mixup_max_overlap"] == 0.3
    assert controls["seed0/supervised_continued_aug_aware"]["labeled_mixup"] == 0.5
    assert "mixup_max_overlap" not in controls["seed0/supervised_continued_aug_mix"]


def test_a_diverged_run_pairs_with_nothing():
    from semiyolo.experiments.control_report import control_gains

    rows = [
        {
            "kind": "supervised_continued",
            "run": f"seed{s}/supervised_continued",
            "seed": s,
            "label_split": 0,
            "metrics/mAP50-95(B)": 0.30,
        }
        for s in (0, 1)
    ]
    rows += [
        {
            "kind": "online",
            "run": f"seed{s}/online_default",
            "seed": s,
            "label_split": 0,
            "variant": "default",
            "lambda_bg": 0.0,
            "metrics/mAP50-95(B)": m,
        }
        for s, m in ((0, 0.35), (1, float("nan")))
    ]
    (entry,) = control_gains(rows, "supervised_continued")
    # one finite pair: +0.05, and no spread to beat, so not called a gain
    assert entry["pairs"] == 1 and entry["gain"][0] == pytest.approx(0.05) and not entry["counts"]
