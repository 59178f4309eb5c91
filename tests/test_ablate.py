"""The ablation: its plan, the report writer on fixture results, and a tiny end-to-end run that re-runs fast."""

import csv

import matplotlib.image

from semiyolo.cli import main
from semiyolo.data import SynthSpec, write_dataset
from semiyolo.integrations.ultralytics.ablate import plan
from semiyolo.report import plot_against_lambda, plot_curves, write_tables

FIXTURE = [
    {
        "run": "a_supervised",
        "mode": "supervised",
        "lambda_bg": 0.0,
        "metrics/precision(B)": 0.5,
        "metrics/recall(B)": 0.4,
        "metrics/mAP50(B)": 0.45,
        "metrics/mAP50-95(B)": 0.3,
        "bg_fp/background_fp_per_image": 0.8,
        "semi/pl_precision": float("nan"),
        "minutes": 1.0,
    },
    {
        "run": "c_online_bg0",
        "mode": "online",
        "lambda_bg": 0.0,
        "metrics/precision(B)": 0.6,
        "metrics/recall(B)": 0.5,
        "metrics/mAP50(B)": 0.55,
        "metrics/mAP50-95(B)": 0.35,
        "bg_fp/background_fp_per_image": 0.6,
        "semi/pl_precision": 0.7,
        "semi/pl_recall": 0.4,
        "minutes": 2.0,
    },
    {
        "run": "d_online_bg1",
        "mode": "online",
        "lambda_bg": 1.0,
        "metrics/precision(B)": 0.7,
        "metrics/recall(B)": 0.49,
        "metrics/mAP50(B)": 0.56,
        "metrics/mAP50-95(B)": 0.36,
        "bg_fp/background_fp_per_image": 0.3,
        "semi/pl_precision": 0.8,
        "semi/pl_recall": 0.38,
        "minutes": 2.1,
    },
]


def test_plan_covers_the_documented_runs():
    names = [name for name, _ in plan({"semi": {"unlabeled": "u"}}, [0.5, 1.0, 1.5], focal=True)]
    assert names == [
        "a_supervised",
        "b_offline",
        "c_online_bg0",
        "d_online_bg0.5",
        "d_online_bg1",
        "d_online_bg1.5",
        "e_online_focal1",
    ]
    runs = dict(plan({"semi": {"unlabeled": "u"}}, [1.0], focal=True))
    assert (
        runs["e_online_focal1"]["semi"]["bg_mode"] == "focal" and runs["a_supervised"]["semi"]["mode"] == "supervised"
    )


def test_online_runs_start_from_the_supervised_run_unless_asked_otherwise():
    cfg = {"model": "yolov8n.yaml", "semi": {"unlabeled": "u", "burn_in": 7, "teacher_tau": 100.0}}
    runs = dict(plan(cfg, [1.0], focal=False))
    online = runs["d_online_bg1"]
    # model None: run_ablation puts run (a)'s best.pt there; (a) is the burn-in, and the teacher needs no ramp
    assert online["model"] is None and online["semi"]["burn_in"] == 0 and online["semi"]["teacher_tau"] == 0
    assert runs["a_supervised"]["model"] == runs["b_offline"]["model"] == "yolov8n.yaml"
    assert runs["a_supervised"]["semi"]["burn_in"] == 7
    scratch = dict(plan(cfg, [1.0], focal=False, online_from_supervised=False))["c_online_bg0"]
    assert scratch["model"] == "yolov8n.yaml" and scratch["semi"]["burn_in"] == 7
    assert scratch["semi"]["teacher_tau"] == 100.0


def test_equal_steps_adds_a_supervised_run_with_repeated_labeled_images():
    runs = dict(plan({"model": "m.yaml", "semi": {"unlabeled": "u"}}, [1.0], focal=False, equal_steps_repeat=10))
    assert list(runs)[:3] == ["a_supervised", "a2_supervised_x10", "b_offline"]
    assert runs["a2_supervised_x10"]["semi"]["labeled_repeat"] == 10
    assert runs["a2_supervised_x10"]["semi"]["mode"] == "supervised"
    assert "labeled_repeat" not in runs["b_offline"]["semi"]


def test_report_writer_on_fixture_results(tmp_path):
    md, path = write_tables(FIXTURE, tmp_path)
    lines = md.read_text().splitlines()
    assert lines[0].startswith("| run | lambda_bg | precision | recall | mAP50 | mAP50-95 | bg FP / image |")
    assert lines[2] == "| a_supervised | 0 | 0.500 | 0.400 | 0.450 | 0.300 | 0.800 | - | - | 1.000 |"
    assert len(list(csv.reader(path.open()))) == 4
    history = {
        "c_online_bg0": [
            {"metrics/mAP50-95(B)": "0.1", "semi/teacher_conf": "0.5"},
            {"metrics/mAP50-95(B)": "0.2", "semi/teacher_conf": "0.6"},
        ]
    }
    for png in plot_against_lambda(FIXTURE, tmp_path) + plot_curves(history, tmp_path):
        assert matplotlib.image.imread(png).shape[1] > 300


def test_plots_have_labelled_axes(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    saved = []
    monkeypatch.setattr(Figure, "savefig", lambda fig, path, **kw: saved.append(fig))
    plot_against_lambda(FIXTURE, tmp_path)
    plot_curves({"r": [{"metrics/mAP50-95(B)": "0.1"}]}, tmp_path)
    assert len(saved) == 4
    for fig in saved:
        ax = fig.axes[0]
        assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()


def test_tiny_ablation_end_to_end_and_rerun_skips(tmp_path, capsys):
    data = write_dataset(tmp_path / "data", SynthSpec(images=30, imgsz=64, seed=2))
    assert main(["split", str(data), "--fraction", "0.5", "--out", str(tmp_path / "split")]) == 0
    config = tmp_path / "split" / "config.yaml"
    overrides = [
        "train.epochs=1",
        "train.imgsz=64",
        "train.batch=4",
        "train.workers=0",
        "train.plots=false",
        "semi.burn_in=0",
        "semi.validate_teacher=false",
    ]
    out = tmp_path / "ablation"
    assert main(["ablate", str(config), *overrides, "--out", str(out), "--lambdas", "1.0"]) == 0
    rows = list(csv.DictReader((out / "ablation.csv").open()))
    assert [r["run"] for r in rows] == ["a_supervised", "b_offline", "c_online_bg0", "d_online_bg1"]
    for png in ("precision_recall_vs_lambda.png", "bg_fp_vs_lambda.png", "curves_map.png", "teacher_confidence.png"):
        assert (out / png).is_file()
    capsys.readouterr()
    assert main(["ablate", str(config), *overrides, "--out", str(out), "--lambdas", "1.0"]) == 0
    assert capsys.readouterr().out.count("(finished earlier, skipped)") == 4
