"""A first run, as an Ultralytics user sees it (issue 29): a warning when burn-in or a warm-up covers the whole
run, a start banner and a closing summary, ``semi.yaml`` beside ``args.yaml``, and no exact-resume state left
behind by a finished run."""

from __future__ import annotations

import math

import pytest
import torch
import yaml
from ultralytics.utils import LOGGER

from semiyolo.config import SemiConfig
from semiyolo.data import SynthSpec, list_images, write_dataset
from semiyolo.integrations.ultralytics.banner import closing_summary, coverage_warnings, start_banner
from semiyolo.integrations.ultralytics.exact_resume import remove_resume_states
from tiny_runs import tiny_train

STATE_FILES = ("train_state.pt", "train_state.pt.prev", "semi_state.pt", "semi_state.pt.prev")


@pytest.fixture
def said(monkeypatch):
    """What semiyolo and Ultralytics log (the tests run Ultralytics quiet), warnings and info lines alike."""
    lines: list[str] = []
    for level in ("info", "warning"):
        monkeypatch.setattr(LOGGER, level, lambda message, *args, **kwargs: lines.append(str(message)))
    return lines


def _train(tiny_data, tmp_path, name, epochs=2):
    return {"data": str(tiny_data), "model": "yolov8n.yaml", **tiny_train(tmp_path, name, epochs=epochs, nbs=4)}


# --- item 1: burn-in or a warm-up that covers the whole run ----------------------------------------------------
def test_a_supervised_run_whose_burn_in_covers_it_is_warned_before_training(tmp_path, tiny_data, said):
    from semiyolo.integrations.ultralytics import SupervisedTrainer

    trainer = SupervisedTrainer(overrides=_train(tiny_data, tmp_path, "sup"), semi=SemiConfig())  # burn_in 5
    trainer.run_lock.release()
    warned = [line for line in said if "semi.burn_in" in line]
    assert warned == [
        "semi.burn_in: 5 epochs cover the whole 2-epoch run: lambda_bg stays 0 (no background penalty); "
        "lower semi.burn_in below 2"
    ]


def test_online_burn_in_and_warm_ups_that_cover_the_run_are_named():
    burn_in = coverage_warnings(SemiConfig(mode="online", unlabeled="u"), epochs=2)
    assert burn_in == [
        "semi.burn_in: 5 epochs cover the whole 2-epoch run: the unlabeled images are never used and lambda_bg "
        "stays 0 (no background penalty); lower semi.burn_in below 2"
    ]
    warmups = coverage_warnings(
        SemiConfig(mode="online", unlabeled="u", burn_in=1, lambda_bg_warmup=4, lambda_unsup_warmup=3), epochs=3
    )  # epochs 1 and 2 after burn-in: lambda_unsup 1/3, 2/3 of 1.0; lambda_bg 1/4, 2/4 of 1.0
    assert warmups == [
        "semi.lambda_unsup_warmup: 3 epochs after semi.burn_in 1 leave lambda_unsup below 1 for the whole 3-epoch "
        "run (at most 0.667); lower semi.lambda_unsup_warmup to 2 or less",
        "semi.lambda_bg_warmup: 4 epochs after semi.burn_in 1 leave lambda_bg below 1 for the whole 3-epoch run "
        "(at most 0.5); lower semi.lambda_bg_warmup to 2 or less",
    ]
    assert coverage_warnings(SemiConfig(burn_in=1, lambda_bg_warmup=1), epochs=2) == []
    assert coverage_warnings(SemiConfig(lambda_bg=0), epochs=2) == []  # no penalty asked for: nothing withheld


# --- item 8: the banner, the summary and semi.yaml; item 10: the state files of a finished run --------------------
@pytest.fixture(scope="module")
def online_run(tmp_path_factory, tiny_data):
    """One tiny online run (2 epochs, burn-in 1), its log lines and folder."""
    root = tmp_path_factory.mktemp("first_hour")
    unlabeled = write_dataset(root / "unlabeled", SynthSpec(images=10, imgsz=64, seed=5)).parent / "images" / "train"
    from semiyolo.integrations.ultralytics import OnlineTrainer

    lines: list[str] = []
    with pytest.MonkeyPatch.context() as patch:
        for level in ("info", "warning"):
            patch.setattr(LOGGER, level, lambda message, *args, **kwargs: lines.append(str(message)))
        filters = [{"name": "score", "params": {"threshold": 0.001}}, {"name": "cap", "params": {"max_per_image": 5}}]
        semi = SemiConfig(mode="online", unlabeled=str(unlabeled), burn_in=1, lambda_bg_warmup=1, pseudo_min_score=1e-4)
        semi.filters = filters
        trainer = OnlineTrainer(overrides={**_train(tiny_data, root, "online"), "plots": True}, semi=semi)
        trainer.train()
    return trainer, lines, unlabeled


def test_an_online_run_opens_with_a_banner_of_what_it_will_do(online_run, tiny_data):
    _, lines, unlabeled = online_run
    banner = "\n".join(lines[lines.index(next(x for x in lines if "semi: " in x and "online" in x)) :])
    n_unlabeled = len(list_images(unlabeled))
    batches = math.ceil(len(list_images(tiny_data.parent / "images" / "train")) / 4)
    assert f"{n_unlabeled} unlabeled images" in banner
    assert f"{batches * 4} per epoch ({batches} batches of 4" in banner  # unlabeled_ratio 1 x batch 4
    assert "burn-in: 1 epoch (labeled images only); the unlabeled images join at epoch 2" in banner
    steps = batches * 2  # nbs = batch: a step per batch, 2 epochs
    # 0.1 of the run's 6 steps is 0.6, and the teacher's rule never goes below one step: the banner says what it uses
    assert f"half-life {max(0.1 * steps, 1):g} optimizer steps (semi.teacher_half_life 0.1 of {steps} steps)" in banner
    assert "pseudo-targets: tiered" in banner and "filters: score(threshold=0.001) -> cap(max_per_image=5)" in banner


def test_semi_yaml_holds_the_resolved_settings_beside_args_yaml(online_run):
    trainer, _, unlabeled = online_run
    assert (trainer.save_dir / "args.yaml").is_file()
    written = yaml.safe_load((trainer.save_dir / "semi.yaml").read_text())
    assert written["mode"] == "online" and written["burn_in"] == 1
    assert written["unlabeled"] == str(unlabeled.resolve())
    assert written["teacher_decay"] == pytest.approx(trainer.teacher_decay())  # resolved from the half-life


def test_an_online_run_closes_with_teacher_student_and_pseudo_label_quality(online_run):
    trainer, lines, _ = online_run
    summary = "\n".join(lines[-6:])
    assert "student mAP50-95" in summary and "teacher mAP50-95" in summary
    assert "pseudo-labels against the unlabeled images' hidden labels" in summary
    assert f"weights: {trainer.best}" in summary


def test_a_finished_run_leaves_no_exact_resume_state(online_run):
    trainer, lines, _ = online_run
    assert trainer.last.is_file() and trainer.best.is_file()
    assert [name for name in STATE_FILES if (trainer.wdir / name).exists()] == []
    assert any("semi.keep_state: true" in line for line in lines)


def test_keep_state_keeps_the_state_files(tmp_path):
    for name in STATE_FILES:
        torch.save({"epoch": 0}, tmp_path / name)
    assert remove_resume_states(tmp_path, keep=True) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(STATE_FILES)
    assert sorted(p.name for p in remove_resume_states(tmp_path, keep=False)) == sorted(STATE_FILES)
    assert list(tmp_path.iterdir()) == []


# --- the pure text builders, on hand-built inputs ------------------------------------------------------------------
def test_the_banner_of_an_offline_run_names_the_pseudo_label_folder_and_counts():
    semi = SemiConfig(mode="offline", pseudo_labels="pl", burn_in=0, lambda_bg_warmup=1)
    lines = start_banner(semi, epochs=3, labeled_batches=5, batch=4, pseudo_label_summary={"images": 20,
                         "pseudo_labels": 57, "skipped": 1})  # fmt: skip
    text = "\n".join(lines)
    assert "offline" in text and "pl: 20 pseudo-labeled images, 57 pseudo-labels (1 skipped)" in text
    assert "burn-in: none" in text


def test_the_closing_summary_says_unknown_where_nothing_is_known():
    lines = closing_summary(
        {"metrics/mAP50-95(B)": 0.25, "semi/pl_precision": math.nan, "semi/pl_recall": math.nan},
        weights="run/weights/best.pt",
        removed=[],
    )
    text = "\n".join(lines)
    assert "student mAP50-95 0.25" in text and "teacher" not in text
    assert "no hidden labels" in text and "weights: run/weights/best.pt" in text


# --- item 7: what the console, results.csv and the plots show -------------------------------------------------------
def test_the_two_validation_tables_are_named_and_no_column_is_always_zero(online_run):
    trainer, lines, _ = online_run
    teacher = [i for i, line in enumerate(lines) if "the teacher on the validation images:" in line]
    student = [i for i, line in enumerate(lines) if "the student (its EMA) on the validation images:" in line]
    assert len(teacher) == len(student) == 2 and all(t < s for t, s in zip(teacher, student, strict=True))  # 2 epochs
    header = (trainer.save_dir / "results.csv").read_text().splitlines()[0]
    columns = [c.strip() for c in header.split(",")]
    assert "train/u_box_loss" in columns and "val/box_loss" in columns and "val/bg_loss" in columns
    assert [c for c in columns if c.startswith("val/u_")] == []  # validation images carry no pseudo-labels
    assert (trainer.save_dir / "semi.png").is_file() and (trainer.save_dir / "results.png").is_file()


def test_semi_png_draws_the_columns_that_moved(tmp_path):
    from semiyolo.plots import semi_panels, write_semi_figure

    columns = {  # what Ultralytics' trainer.read_results_csv() gives
        "epoch": [1, 2],
        "metrics/mAP50-95(B)": [0.1, 0.3],
        "teacher/mAP50-95(B)": [0.12, 0.28],
        "semi/lambda_bg": [0.0, 1.0],
        "semi/pl_recall": [0.2, 0.5],
        "semi/optimizer_steps": [10, 20],
        "semi/flat": [3, 3],
    }
    panels = semi_panels(columns)
    # the teacher beside the student, then the semi/ columns that moved; the step counter and a flat column left out
    assert [(title, list(lines)) for title, lines in panels] == [
        ("mAP50-95", ["student", "teacher"]),
        ("lambda_bg", ["lambda_bg"]),
        ("pl_recall", ["pl_recall"]),
    ]
    assert panels[0][1]["teacher"] == [0.12, 0.28]
    out = write_semi_figure(columns, tmp_path / "semi.png")
    import matplotlib.image

    assert out == tmp_path / "semi.png" and matplotlib.image.imread(out).shape[1] >= 3 * 320
    assert write_semi_figure({"epoch": [1, 2], "semi/flat": [3, 3]}, tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()
