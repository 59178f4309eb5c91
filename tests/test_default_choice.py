"""One default chosen on validation across sets (issue 31, item 5): the rule on hand-built rows, and the reader of
an ablation folder."""

import csv
import json
import math
from pathlib import Path

import pytest

from semiyolo.errors import ConfigError
from semiyolo.experiments.default_choice import (
    choose_default,
    default_choice_markdown,
    harmful_splits,
    rows_from_report,
    rows_under,
)
from semiyolo.experiments.report import write_protocol_report

MAP = "metrics/mAP50-95(B)"


def _row(kind, name, split, seed, value, variant=None, where="val"):
    return {
        "kind": kind,
        "run": f"split{split}/seed{seed}/{name}",
        "label_split": split,
        "seed": seed,
        "variant": variant,
        "lambda_bg": 1.0,
        "bg_mode": "max",
        MAP: value,
        "eval_split": where,
    }


def _set(arm_values, mix_values, control_values, baseline=(0.50, 0.50, 0.50, 0.50)):
    """One set: two label splits x two seeds; ceiling 0.60 on both splits, so a gain of 0.01 closes 10 %."""
    rows = [_row("fully_labeled", "fully_labeled", s, 0, 0.60) for s in (0, 1)]
    pairs = [(0, 0), (0, 1), (1, 0), (1, 1)]
    for (split, seed), b, a, m, c in zip(pairs, baseline, arm_values, mix_values, control_values, strict=True):
        rows.append(_row("supervised_continued", "supervised_continued", split, seed, b))
        rows.append(_row("online", "online_default", split, seed, a, variant="default"))
        rows.append(_row("online", "online_mix", split, seed, m, variant="mix"))
        rows.append(_row("supervised_continued_aug", "supervised_continued_aug_mix", split, seed, c))
    return rows


def test_the_default_is_the_best_worst_set_arm_that_harms_no_split_and_beats_its_augmentation():
    # set a: default gains 0.01 everywhere (10 %); mix gains 0.03 (30 %) and its blend alone 0.02 (mix beats it)
    # set b: default gains 0.02 (20 %); mix gains 0.05 on split 0 (50 %) but loses 0.02 on split 1 (-20 %): the
    # baseline's spread is 0 (every run 0.50), so split 1's mean difference -0.02 is harm and mix is not eligible
    a = _set([0.51] * 4, [0.53] * 4, [0.52] * 4)
    b = _set([0.52] * 4, [0.55, 0.55, 0.48, 0.48], [0.50] * 4)
    choice = choose_default({"a": a, "b": b})
    assert choice["baselines"] == {"a": "supervised_continued", "b": "supervised_continued"}
    default, mix = choice["candidates"]["online default"], choice["candidates"]["online mix"]
    assert default["worst"] == pytest.approx(0.10) and default["mean"] == pytest.approx(0.15)  # (10 + 20) / 2
    assert mix["b"]["harm"] == [(1, pytest.approx(-0.02))] and not mix["eligible"]
    assert mix["a"]["over control"] == pytest.approx(0.01) and default["a"]["over control"] is None
    assert choice["chosen"] == "online default"
    md = default_choice_markdown(choice)
    assert "| online default | 10 % ± 0 % | 20 % ± 0 % | 10 % | none | - | **chosen** |" in md
    assert "b split 1: -0.020" in md


def test_an_arm_fed_the_hidden_labels_is_never_a_candidate():
    a = _set([0.51] * 4, [0.53] * 4, [0.52] * 4)
    fed = [
        {
            **_row("online", "online_oracle_pl", s, seed, 0.58, variant="oracle_pl"),
            "semi": {"oracle_pseudo_labels": True},
        }
        for s, seed in [(0, 0), (0, 1), (1, 0), (1, 1)]
    ]
    choice = choose_default({"a": a + fed})
    assert "online oracle_pl" not in choice["candidates"] and choice["chosen"] == "online mix"


def test_an_arm_that_does_not_beat_its_augmentation_alone_is_not_chosen_and_none_left_keeps_the_defaults():
    # mix gains 0.03 but its blend alone gains 0.03 too: no gain over its control; default harms split 1 of set a
    a = _set([0.51, 0.51, 0.47, 0.47], [0.53] * 4, [0.53] * 4)
    choice = choose_default({"a": a})
    assert choice["candidates"]["online mix"]["a"]["over control"] == pytest.approx(0.0)
    assert choice["chosen"] is None
    assert "No arm is eligible: the defaults stay as they are." in default_choice_markdown(choice)


def test_an_arm_whose_augmentation_control_did_not_run_is_not_eligible():
    rows = [r for r in _set([0.51] * 4, [0.53] * 4, [0.52] * 4) if r["kind"] != "supervised_continued_aug"]
    rows = [{**r, "semi": {"pseudo_mixup": 0.5}} if r.get("variant") == "mix" else r for r in rows]
    choice = choose_default({"a": rows})
    assert (
        choice["candidates"]["online mix"]["a"]["over control"]
        != choice["candidates"]["online mix"]["a"]["over control"]
    )  # NaN: no control ran
    assert choice["chosen"] == "online default"


def _degenerate_set(arm_values, mix_values):
    """Two splits x two seeds whose baseline runs 0.49 and 0.53 (sample standard deviation over the four:
    sqrt(4 x 0.02^2 / 3) = 0.0231) and whose ceiling is 0.532 on both splits: a gap of 0.532 - 0.51 = +0.022 per
    split, within the spread."""
    rows = _set(arm_values, mix_values, [0.48] * 4, baseline=(0.49, 0.53, 0.49, 0.53))
    return [{**r, MAP: 0.532} if r["kind"] == "fully_labeled" else r for r in rows]


def test_a_set_whose_gap_is_within_the_spread_gates_but_does_not_rank():
    # set a (gap 0.10, real): default closes 10 %, mix 30 %.
    # set n (gap +0.022 < spread 0.0231): default gains +0.02 on each pair, mix nothing (0 %). Per pair the default
    # closes 0.02 / (0.532 - 0.49) = 48 % and 0.02 / (0.532 - 0.53) = 1000 %: a mean of 524 %, a share of noise.
    # Ranked on both sets, mix's worst would be 0 % and default (worst 10 %) would win; n's gap is noise, so a alone
    # ranks and mix (30 % against 10 %) is chosen; n still gates (neither harms it).
    a = _set([0.51] * 4, [0.53] * 4, [0.52] * 4)
    n = _degenerate_set([0.51, 0.55, 0.51, 0.55], [0.49, 0.53, 0.49, 0.53])
    choice = choose_default({"a": a, "n": n})
    assert choice["gaps"]["n"] == (pytest.approx(0.022), pytest.approx(0.02309, abs=1e-5))
    default, mix = choice["candidates"]["online default"], choice["candidates"]["online mix"]
    assert default["n"]["gap closed"][0] == pytest.approx(5.238, abs=1e-3) and not default["n"]["ranks"]
    assert mix["n"]["gap closed"][0] == pytest.approx(0.0) and mix["eligible"] and default["eligible"]
    assert default["worst"] == pytest.approx(0.10) and default["mean"] == pytest.approx(0.10)  # a alone ranks
    assert mix["worst"] == pytest.approx(0.30) and mix["ranked by"] == "gap closed"
    assert choice["chosen"] == "online mix"
    md = default_choice_markdown(choice)
    assert "(gap within spread; gain +0.020)" in md
    assert "n: +0.022 against a spread of 0.023 (gates only)" in md


def test_with_no_set_that_ranks_the_arms_are_ranked_by_their_worst_set_gain():
    # both sets degenerate (the pairs' gaps: 0.532 - 0.49 = 0.042 and 0.532 - 0.53 = 0.002). The default gains +0.012
    # only on the 0.53 pairs: mean gain +0.006, gap closed (0 + 0.012 / 0.002) / 2 = 300 %. Mix gains +0.016 only
    # on the 0.49 pairs: mean gain +0.008, gap closed (0.016 / 0.042 + 0) / 2 = 19 %. Gap closed would choose the
    # default; the gain, which ranks here, chooses mix.
    n = _degenerate_set([0.49, 0.542, 0.49, 0.542], [0.506, 0.53, 0.506, 0.53])
    choice = choose_default({"n": n, "m": n})
    default, mix = choice["candidates"]["online default"], choice["candidates"]["online mix"]
    assert default["n"]["gap closed"][0] == pytest.approx(3.0) and mix["n"]["gap closed"][0] == pytest.approx(
        0.19, abs=0.001
    )
    assert default["ranked by"] == mix["ranked by"] == "gain"
    assert default["worst"] == pytest.approx(0.006) and mix["worst"] == pytest.approx(0.008)
    assert default["eligible"] and mix["eligible"] and choice["chosen"] == "online mix"
    assert "| gain +0.008 |" in default_choice_markdown(choice)


def test_a_set_without_a_ceiling_gates_only():
    # set a as in the first test; set z has no fully labeled run: no gap to rank by, so a alone ranks (mix 30 %)
    a = _set([0.51] * 4, [0.53] * 4, [0.52] * 4)
    z = [r for r in _set([0.52] * 4, [0.50] * 4, [0.49] * 4) if r["kind"] != "fully_labeled"]
    choice = choose_default({"a": a, "z": z})
    assert math.isnan(choice["gaps"]["z"][0])
    assert not choice["candidates"]["online mix"]["z"]["ranks"] and choice["chosen"] == "online mix"
    assert "z: no ceiling (gates only)" in default_choice_markdown(choice)


def test_harm_is_measured_against_the_baselines_spread():
    baseline = [_row("supervised_continued", "b", s, seed, v) for s, seed, v in [(0, 0, 0.50), (0, 1, 0.54)]]
    # the baseline's runs 0.50 and 0.54: standard deviation 0.0283; the arm's mean difference -0.02 is within it
    arm = [_row("online", "a", 0, 0, 0.48), _row("online", "a", 0, 1, 0.52)]
    assert harmful_splits(arm, baseline) == []
    worse = [_row("online", "a", 0, 0, 0.46), _row("online", "a", 0, 1, 0.50)]  # -0.04: beyond it
    assert harmful_splits(worse, baseline) == [(0, pytest.approx(-0.04))]
    elsewhere = [_row("online", "a", 1, 0, 0.9)]  # a split the baseline never ran: nothing shows it does no harm
    assert [split for split, _ in harmful_splits(elsewhere, baseline)] == [0, 1]  # and split 0 it did not run
    missing = [_row("online", "a", 0, 0, 0.50), _row("online", "a", 0, 1, 0.54)]
    two_splits = [*baseline, _row("supervised_continued", "b", 1, 0, 0.52)]  # the arm never ran split 1
    assert [split for split, _ in harmful_splits(missing, two_splits)] == [1]


def test_rows_under_an_ablation_folder_take_their_split_from_the_path_and_test_figures_from_their_file(tmp_path):
    run = tmp_path / "split2" / "seed1" / "online_mix"
    run.mkdir(parents=True)
    (run / "ablation_row.json").write_text(
        json.dumps({"kind": "online", "run": "seed1/online_mix", "seed": 1, "variant": "mix", MAP: 0.8})
    )
    (run / "test_metrics.json").write_text(json.dumps({MAP: 0.7}))
    converged = tmp_path / "supervised_converged"
    converged.mkdir()
    (converged / "ablation_row.json").write_text(json.dumps({"kind": "supervised_converged", "seed": 0, MAP: 0.6}))
    rows = rows_under(tmp_path)
    by = {(r["run"], r["eval_split"]): r for r in rows}
    assert set(by) == {
        ("split2/seed1/online_mix", "val"),
        ("split2/seed1/online_mix", "test"),
        ("supervised_converged", "val"),
    }
    assert (
        by["split2/seed1/online_mix", "val"]["label_split"] == 2
        and by["supervised_converged", "val"]["label_split"] == 0
    )
    assert by["split2/seed1/online_mix", "test"][MAP] == 0.7 and by["split2/seed1/online_mix", "val"][MAP] == 0.8


def test_an_arm_at_another_learning_rate_is_a_control_not_a_candidate_also_read_back(tmp_path):
    # online_default_lr10 gains 0.08 (80 %) on every split, more than mix's 0.03, but its learning rate is a protocol
    # setting (--variant default_lr10:lr_scale=10) a default cannot ship; the CSV keeps its lr_scale column
    a = _set([0.51] * 4, [0.53] * 4, [0.52] * 4)
    fast = [
        {**_row("online", "online_default_lr10", s, seed, 0.58, variant="default_lr10"), "lr_scale": 10.0}
        for s, seed in [(0, 0), (0, 1), (1, 0), (1, 1)]
    ]
    choice = choose_default({"a": a + fast})
    assert "online default_lr10" not in choice["candidates"] and choice["chosen"] == "online mix"
    write_protocol_report(a + fast, {}, tmp_path)
    back = rows_from_report(tmp_path / "ablation.csv")
    assert {r["lr_scale"] for r in back if r.get("variant") == "default_lr10"} == {10.0}
    assert choose_default({"a": back})["chosen"] == "online mix"


def _fed_rows(split_seeds, value=0.58):
    return [
        {
            **_row("online", "online_oracle_pl", s, seed, value, variant="oracle_pl"),
            "semi": {"oracle_pseudo_labels": True},
        }
        for s, seed in split_seeds
    ]


def test_a_report_csv_read_back_gives_the_same_choice(tmp_path):
    # the set of the first test plus an arm fed the hidden labels and a focal arm (no variant: named by its penalty
    # and mode, not by its folder); ablation.csv keeps what the rule reads
    rows = _set([0.51] * 4, [0.53] * 4, [0.52] * 4) + _fed_rows([(0, 0), (0, 1), (1, 0), (1, 1)])
    rows += [{**_row("online", "online_focal1", s, 0, 0.505), "bg_mode": "focal"} for s in (0, 1)]
    write_protocol_report(rows, {}, tmp_path)
    back = rows_from_report(tmp_path / "ablation.csv")
    direct, read = choose_default({"a": rows}), choose_default({"a": back})
    assert read["chosen"] == direct["chosen"] == "online mix" and "online oracle_pl" not in read["candidates"]
    assert "online bg1 focal" in read["candidates"]
    assert default_choice_markdown(read) == default_choice_markdown(direct)
    assert {r["label_split"] for r in back} == {0, 1} and {type(r[MAP]) for r in back} == {float}


def test_the_committed_reports_read_back_give_the_committed_choice():
    # docs/ablation/default_choice.md was written from the shapes and nuclei run folders (rows_under); their
    # committed ablation.csv files, read back, must give the same table (the test intervals need the folders)
    docs = Path(__file__).parent.parent / "docs" / "ablation"
    sets = {
        name: rows_from_report(docs / f"{name}10_controlled" / "ablation.csv", fed=["oracle_pl", "oracle_boxes"])
        for name in ("shapes", "nuclei")
    }
    table = default_choice_markdown(choose_default(sets)).split("## ")[0]
    assert table == (docs / "default_choice.md").read_text().split("## ")[0]


def test_a_report_csv_older_than_its_fed_column_needs_the_fed_variants_named(tmp_path):
    rows = _set([0.51] * 4, [0.53] * 4, [0.52] * 4) + _fed_rows([(0, 0), (0, 1), (1, 0), (1, 1)], value=0.70)
    write_protocol_report(rows, {}, tmp_path)
    with open(tmp_path / "ablation.csv", newline="") as f:
        table = [
            {k: v for k, v in r.items() if k not in ("variant", "oracle_pseudo_labels")} for r in csv.DictReader(f)
        ]
    old = tmp_path / "old.csv"
    with open(old, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)
    with pytest.raises(ConfigError, match=r"old\.csv: written before the oracle_pseudo_labels column"):
        rows_from_report(old)
    back = rows_from_report(old, fed=["oracle_pl"])  # variants from the run folders' names
    assert {r["variant"] for r in back if r["kind"] == "online"} == {"default", "mix", "oracle_pl"}
    assert choose_default({"a": back})["chosen"] == "online mix"  # the fed arm (0.70) is no candidate
