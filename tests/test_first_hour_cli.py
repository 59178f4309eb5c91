"""An Ultralytics user's first hour with ``semiyolo pseudo-label``, ``review`` and ``--version`` (issue 29, items 2,
3 and 11): filters validated as in a run config, ``--conf``, the knob that stopped every candidate named, the
checkpoint's training size, a progress bar, a dataset folder's class names."""

import importlib.metadata
import json

import numpy as np
import pytest
import torch
from PIL import Image
from ultralytics import YOLO

from semiyolo.cli import HANDLERS, _review_source, main
from semiyolo.cli_parser import build_parser


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """Random YOLOv8n weights, saved as Ultralytics saves a model that was trained at 64 px (its train_args)."""
    path = tmp_path_factory.mktemp("weights") / "w.pt"
    YOLO("yolov8n.yaml").save(path)
    ckpt = torch.load(path, weights_only=False)
    ckpt["train_args"] = {"imgsz": 64, "task": "detect"}
    torch.save(ckpt, path)
    return path


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    folder = tmp_path_factory.mktemp("unlabeled")
    for seed in range(2):
        pixels = np.random.default_rng(seed).integers(0, 255, (64, 64, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{seed}.png")
    return folder


def _pseudo_label(capsys, weights, source, out, *options):
    command = ["pseudo-label", "--weights", weights, "--source", source, "--out", out, *options]
    code = main(list(map(str, command)))
    said = capsys.readouterr()
    return code, said.err, said.out


# --- 2: --filters validated as semi.filters, --conf, the knob that stopped the candidates -------------------------


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("semi:\n  filtres: [{name: score}]\n", "semi.filtres: unknown key; did you mean 'semi.filters'?"),
        ("filtres: [{name: score}]\n", "filtres: unknown key; did you mean 'semi.filters'?"),
        ("foo: bar\n", "foo: unknown key"),
        ("name: score\nparams: {threshold: 0.3}\n", "one filter as a mapping; expected a list of filters"),
        ("- {name: scor}\n", "semi.filters.0.name"),
        ("- {name: score, params: {threshold: 3}}\n", "semi.filters.0.params.threshold (score)"),
    ],
)
def test_a_bad_filters_file_is_refused_in_one_line(capsys, weights, source, tmp_path, text, said):
    filters = tmp_path / "filters.yaml"
    filters.write_text(text)
    code, err, _ = _pseudo_label(capsys, weights, source, tmp_path / "pl", "--filters", filters)
    assert code == 2 and said in err and str(filters) in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "pl").exists()


def test_conf_is_the_score_filters_threshold_and_conflicts_with_filters(capsys, weights, source, tmp_path):
    # random weights score every box near 0: with no floor before NMS, --conf 0 keeps every box NMS keeps
    code, _, _ = _pseudo_label(capsys, weights, source, tmp_path / "all", "--min-score", "0", "--conf", "0")
    summary = json.loads((tmp_path / "all" / "summary.json").read_text())
    assert code == 0 and summary["pseudo_labels"] > 0
    assert summary["filters"]["0_score/kept"] > 0 and summary["filters"]["0_score/dropped"] == 0
    filters = tmp_path / "filters.yaml"
    filters.write_text("- {name: score}\n")
    with pytest.raises(SystemExit) as refusal:
        _pseudo_label(capsys, weights, source, tmp_path / "both", "--conf", "0.3", "--filters", filters)
    assert refusal.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


def test_nothing_kept_names_the_knob_that_stopped_the_candidates(capsys, weights, source, tmp_path):
    # no candidate above the default floor before NMS: the filters saw nothing, so lowering them would not help
    assert _pseudo_label(capsys, weights, source, tmp_path / "floor")[0] == 0
    warning = json.loads((tmp_path / "floor" / "summary.json").read_text())["warning"]
    assert "no candidate reached the filters" in warning
    assert "--min-score 0.1 (semi.pseudo_min_score for training)" in warning
    # candidates reached the score filter, which dropped them all
    assert _pseudo_label(capsys, weights, source, tmp_path / "score", "--min-score", "0", "--conf", "0.5")[0] == 0
    warning = json.loads((tmp_path / "score" / "summary.json").read_text())["warning"]
    assert "filter 0 (score, threshold 0.5) dropped all" in warning and "--min-score" not in warning


def test_online_training_names_the_knob_through_the_same_function():
    from semiyolo.pseudo import build_filters, nothing_kept_reason

    chain = build_filters([{"name": "score", "params": {"threshold": 0.9}}], num_classes=1, has_dfl=True)
    counts = {"0_score/kept": 0, "0_score/dropped": 7}
    said = nothing_kept_reason(chain, counts, "semi.pseudo_min_score 0.1", "semi.filters.{}")
    assert said == "semi.filters.0 (score, threshold 0.9) dropped all 7 candidates that reached it: lower its threshold"
    said = nothing_kept_reason(chain, dict.fromkeys(counts, 0), "semi.pseudo_min_score 0.1", "semi.filters.{}")
    assert "no candidate reached the filters" in said and "above semi.pseudo_min_score 0.1: lower it" in said


# --- 3: the checkpoint's training size ----------------------------------------------------------------------------


def test_pseudo_label_runs_at_the_checkpoints_training_size(capsys, weights, source, tmp_path):
    code, _, out = _pseudo_label(capsys, weights, source, tmp_path / "pl")
    assert code == 0 and json.loads((tmp_path / "pl" / "summary.json").read_text())["imgsz"] == 64
    assert "at 64 px" in out
    code, _, out = _pseudo_label(capsys, weights, source, tmp_path / "given", "--imgsz", "32")
    assert code == 0 and json.loads((tmp_path / "given" / "summary.json").read_text())["imgsz"] == 32
    with pytest.raises(SystemExit):
        main(["pseudo-label", "--help"])
    assert "(default: the checkpoint's training size)" in " ".join(capsys.readouterr().out.split())


# --- 11: a progress bar, a dataset folder's names, --version ------------------------------------------------------


def test_pseudo_label_shows_ultralytics_progress_bar(capsys, weights, source, tmp_path, monkeypatch):
    from semiyolo.integrations.ultralytics import offline

    bars = []

    class Bar:
        def __init__(self, *args, total=None, desc=None, **kwargs):
            bars.append({"total": total, "desc": desc, "done": 0})

        def update(self, n=1):
            bars[-1]["done"] += n

        def close(self):
            pass

    monkeypatch.setattr(offline, "TQDM", Bar)
    assert _pseudo_label(capsys, weights, source, tmp_path / "pl", "--batch", "1")[0] == 0
    assert bars == [{"total": 2, "desc": "pseudo-label", "done": 2}]


def test_review_of_a_dataset_folder_names_its_classes_from_its_data_yaml(tmp_path):
    from semiyolo.data import SynthSpec, write_dataset

    data = write_dataset(tmp_path / "shapes", SynthSpec(images=4, imgsz=64, seed=0))
    source, _ = _review_source(build_parser(HANDLERS).parse_args(["review", str(data.parent)]))
    assert source.names == {0: "circle", 1: "square", 2: "triangle"}


def test_version_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"semiyolo {importlib.metadata.version('semiyolo')}"
