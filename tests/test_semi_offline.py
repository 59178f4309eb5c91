"""Offline mode: pseudo-label a folder with a trained checkpoint, then train on labeled + pseudo-labeled."""

import json
from pathlib import Path

import pytest
import yaml

from semiyolo.cli import main
from semiyolo.data import SynthSpec, write_dataset
from tiny_runs import tiny_train


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_run):
    """A labeled and an unlabeled set of generated images, and a trained checkpoint of their three classes (the
    session's ``tiny_run``, trained on other images of them)."""
    root = tmp_path_factory.mktemp("offline")
    labeled = write_dataset(root / "labeled", SynthSpec(images=12, imgsz=64, seed=3))
    write_dataset(root / "unlabeled", SynthSpec(images=10, imgsz=64, seed=9))
    return root, labeled, tiny_run / "weights" / "best.pt"


def test_pseudo_label_writes_yolo_labels_and_a_manifest(trained, tmp_path):
    root, _, weights = trained
    filters = tmp_path / "filters.yaml"
    filters.write_text(
        yaml.safe_dump(
            [{"name": "score", "params": {"threshold": 0.0}}, {"name": "cap", "params": {"max_per_image": 3}}]
        )
    )
    out = tmp_path / "pl"
    source = root / "unlabeled" / "images" / "train"
    assert (
        main(
            [
                "pseudo-label",
                "--weights",
                str(weights),
                "--source",
                str(source),
                "--out",
                str(out),
                "--imgsz",
                "64",
                "--min-score",
                "0",
                "--filters",
                str(filters),
            ]
        )
        == 0
    )
    images = sorted(source.glob("*.png"))
    # the images keep their names (and folders: here all images sit at the top of source)
    assert sorted(p.name for p in (out / "images").iterdir()) == [p.name for p in images]
    labels = sorted((out / "labels").glob("*.txt"))
    assert len(labels) == len(images)
    rows = [r.split() for p in labels for r in p.read_text().splitlines()]
    assert rows and all(len(r) == 5 and 0 <= float(r[3]) <= 1 for r in rows)
    assert max(len(p.read_text().splitlines()) for p in labels) <= 3  # the cap
    manifest = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(manifest) == len(images)
    for m in manifest:  # the scores of the rows written, in their order (a box under 1 px is dropped with its score)
        written = (out / "labels" / f"{Path(m['name']).stem}.txt").read_text().splitlines()
        assert len(m["scores"]) == len(m["classes"]) == len(written)
        assert [int(r.split()[0]) for r in written] == m["classes"] and (out / "images" / m["name"]).is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["images"] == len(images) and summary["filters"]["1_cap/kept"] == len(rows)


def test_pseudo_label_with_the_flip_ensemble_at_a_larger_scale(trained, tmp_path):
    root, _, weights = trained
    source, out = root / "unlabeled" / "images" / "train", tmp_path / "pl"
    args = ["pseudo-label", "--weights", str(weights), "--source", str(source), "--out", str(out), "--imgsz", "64"]
    filters = tmp_path / "filters.yaml"
    filters.write_text(yaml.safe_dump([{"name": "score", "params": {"threshold": 0.0}}]))
    settings = ["--min-score", "0", "--filters", str(filters)]
    assert main([*args, *settings, "--teacher-flip", "--teacher-scale", "1.5"]) == 0
    rows = [r.split() for p in (out / "labels").glob("*.txt") for r in p.read_text().splitlines()]
    # labelled at 96 px, written in the 64 px images' normalised frame
    assert rows and all(0 <= float(v) <= 1 for r in rows for v in r[1:])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["images"] == len(list(source.glob("*.png"))) and summary["teacher"] == {"flip": True, "scale": 1.5}
    assert sorted(map(tuple, rows)) == sorted(map(tuple, _labeler_rows(weights, source, flip=True, scale=1.5)))
    scores = (out / "manifest.jsonl").read_text()
    assert main([*args, *settings, "--overwrite"]) == 0
    assert json.loads((out / "summary.json").read_text())["teacher"] == {"flip": False, "scale": 1.0}
    assert (out / "manifest.jsonl").read_text() != scores  # the ensemble at 1.5 is not the model alone at 1


def _labeler_rows(weights, source, flip, scale):
    """The YOLO rows the trainer's labeler gives the 64 px images (no letterbox: pixels / 64), as written."""
    import torch
    from torchvision.ops import box_convert

    from semiyolo.integrations.ultralytics.offline import load_detector
    from semiyolo.integrations.ultralytics.unlabeled import UnlabeledImages, unlabeled_batches
    from semiyolo.pseudo import build_filters
    from semiyolo.teacher import TeacherPseudoLabeler

    model = load_detector(weights)
    chain = build_filters([{"name": "score", "params": {"threshold": 0.0}}], len(model.names), has_dfl=True)
    labeler = TeacherPseudoLabeler(chain, min_score=0, mirror=flip, scale=scale)
    rows = []
    dataset = UnlabeledImages.from_folder(source, 64, key="--source")
    for images, _, _ in unlabeled_batches(dataset, 8, seed=0, max_passes=1, shuffle=False):
        for det in labeler(model, images.float() / 255):
            cxcywh = box_convert(det.boxes.double().clamp(0, 64), "xyxy", "cxcywh")
            keep = (cxcywh[:, 2] > 1) & (cxcywh[:, 3] > 1)
            kept = torch.cat((det.classes[keep, None].double(), cxcywh[keep] / 64), 1)
            rows += [[f"{int(r[0])}", *(f"{v:.6f}" for v in r[1:])] for r in kept.tolist()]
    return rows


def test_a_teacher_scale_out_of_range_is_refused_before_the_output_is_touched(trained, tmp_path):
    root, _, weights = trained
    source, out = root / "unlabeled" / "images" / "train", tmp_path / "pl"
    args = ["pseudo-label", "--weights", str(weights), "--source", str(source), "--out", str(out), "--imgsz", "64"]
    assert main(args) == 0
    written = sorted(p.name for p in (out / "labels").iterdir())
    for scale in ("0", "-1", "4.5", "nan"):
        assert main([*args, "--overwrite", "--teacher-scale", scale]) == 2
        assert sorted(p.name for p in (out / "labels").iterdir()) == written  # the earlier output is still there


def test_offline_mode_trains_on_labeled_and_pseudo_labeled_images(trained, tmp_path):
    root, labeled, weights = trained
    out = tmp_path / "pl"
    assert (
        main(
            [
                "pseudo-label",
                "--weights",
                str(weights),
                "--source",
                str(root / "unlabeled" / "images" / "train"),
                "--out",
                str(out),
                "--imgsz",
                "64",
            ]
        )
        == 0
    )
    cfg = {
        "model": "yolov8n.yaml",
        "data": str(labeled),
        "train": tiny_train(tmp_path / "runs", "offline", epochs=1),
        "semi": {"mode": "offline", "pseudo_labels": str(out), "burn_in": 0, "lambda_bg_warmup": 0},
    }
    path = tmp_path / "offline.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["train", str(path)]) == 0
    args = yaml.safe_load((tmp_path / "runs" / "offline" / "args.yaml").read_text())
    assert args["data"] == str(labeled)
    # Ultralytics' label cache of the training set lists the pseudo-labeled images next to the labeled ones
    import numpy as np

    cache = np.load(labeled.parent / "labels" / "train.cache", allow_pickle=True).item()
    files = {entry["im_file"] for entry in cache["labels"]}
    assert any(f.startswith(str(out / "images")) for f in files)
    assert any(f.startswith(str(labeled.parent / "images")) for f in files)
    rows = (tmp_path / "runs" / "offline" / "results.csv").read_text().splitlines()
    assert len(rows) == 2 and "train/bg_loss" in rows[0]


def test_offline_input_errors(trained, tmp_path, capsys):
    root, labeled, _ = trained
    bad = tmp_path / "bad.pt"
    bad.write_text("not a checkpoint")
    assert main(["pseudo-label", "--weights", str(bad), "--source", str(root), "--out", str(tmp_path / "x")]) == 2
    assert "is not an Ultralytics checkpoint" in capsys.readouterr().err
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"data": str(labeled), "semi": {"mode": "offline"}}))
    assert main(["train", str(cfg)]) == 2
    assert "semi.pseudo_labels: offline mode needs" in capsys.readouterr().err
    assert main(["train", str(cfg), f"semi.pseudo_labels={tmp_path / 'none'}"]) == 2
    assert "not found (write it with 'semiyolo pseudo-label')" in capsys.readouterr().err


def test_output_names_keep_folders_and_stems_and_images_apart():
    from semiyolo.integrations.ultralytics.offline import output_names

    src = Path("/data/unlabeled")
    names = output_names([src / p for p in ("a/x.jpg", "b/x.jpg", "x.jpg", "x.png")], src, Path("/out"))
    assert names == ["a/x.jpg", "b/x.jpg", "x_jpg.jpg", "x_png.png"]  # x.jpg and x.png: one label file otherwise


def test_pseudo_label_rows_by_hand(tmp_path):
    import torch
    from PIL import Image

    from semiyolo.integrations.ultralytics.offline import _yolo_rows
    from semiyolo.pseudo import Detections

    image = tmp_path / "wide.png"
    Image.new("RGB", (100, 50)).save(image)
    # 100 x 50 letterboxed to 64: ratio 0.64, 64 x 32, padded by (0, 16); a point p lands at p * 0.64 + pad
    boxes = torch.tensor(
        [
            [6.4, 19.2, 38.4, 35.2],  # (10, 5, 60, 30) in the image: centre (35, 17.5), size 50 x 25
            [-10.0, 10.0, 32.0, 26.0],  # (-15.6, -9.4, 50, 15.6): clipped to (0, 0, 50, 15.625)
            [0.0, 16.0, 0.5, 16.5],  # 0.78 px wide and high: dropped
        ]
    )
    det = Detections(boxes, torch.tensor([0.9, 0.8, 0.7]), torch.tensor([2, 0, 1]))
    rows, kept = _yolo_rows(det, image, imgsz=64)
    assert kept.tolist() == [True, True, False]
    # (class, cx / 100, cy / 50, w / 100, h / 50)
    expected = [[2, 0.35, 0.35, 0.5, 0.5], [0, 0.25, 0.15625, 0.5, 0.3125]]
    assert len(rows) == 2 and all(r == pytest.approx(e, abs=1e-6) for r, e in zip(rows, expected, strict=True))
