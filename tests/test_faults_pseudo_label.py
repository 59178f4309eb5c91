"""Messy input to ``semiyolo pseudo-label`` and the unlabeled loaders (issue 27): colliding names, truncated images,
bad numbers and checkpoints of other tasks."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from ultralytics import YOLO
from ultralytics.utils import LOGGER

from semiyolo.cli import main
from semiyolo.data import label_path, read_label_file
from semiyolo.integrations.ultralytics.offline import pseudo_label_folder
from semiyolo.integrations.ultralytics.unlabeled import UnlabeledImages, unlabeled_batches
from tiny_runs import tiny_train


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "w.pt"
    YOLO("yolov8n.yaml").save(path)
    return path


def _noise(path: Path, seed: int, size: tuple[int, int] = (64, 64)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def _truncated_jpeg(path: Path) -> Path:
    """A JPEG cut in half: PIL's verify() passes it, the decoder (cv2) cannot read it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    data = cv2.imencode(".jpg", pixels)[1].tobytes()
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.fixture
def warnings(monkeypatch):
    said = []
    monkeypatch.setattr(LOGGER, "warning", lambda message, *args, **kwargs: said.append(str(message)))
    return said


def _run(capsys, *args):
    code = main(["pseudo-label", *map(str, args)])
    said = capsys.readouterr()
    return code, said.err, said.out


# --- 3: output names cannot collide ----------------------------------------------------------------------------


class _ClassIsGreyLevel:
    """A labeler that finds one box in each image, of class (grey level // 40): a label file says which image it
    was written for."""

    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, model, images):
        from semiyolo.pseudo import Detections

        classes = [round(float(image[0, 32, 32]) * 255) // 40 for image in images]
        return [Detections(torch.tensor([[8.0, 8.0, 40.0, 40.0]]), torch.ones(1), torch.tensor([c])) for c in classes]


def test_images_whose_flat_names_collide_get_their_own_labels(weights, tmp_path, monkeypatch):
    from semiyolo.integrations.ultralytics import offline
    from semiyolo.review.sources import open_folder_source

    monkeypatch.setattr(offline, "TeacherPseudoLabeler", _ClassIsGreyLevel)
    source, out = tmp_path / "source", tmp_path / "pl"
    # a/x.png and a__x.png, a/b/x.png and a_b/x.png: one name each before; c/y.jpg and c/y.png share a label stem
    relative = ["a/x.png", "a__x.png", "a/b/x.png", "a_b/x.png", "c/y.jpg", "c/y.png"]
    for number, name in enumerate(relative):  # image number n: grey level 40 n + 20, pseudo-label class n
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (64, 64), (40 * number + 20,) * 3).save(source / name, quality=100)
    summary = pseudo_label_folder(weights, source, out, imgsz=64)

    manifest = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    names = [entry["name"] for entry in manifest]
    # the source's folders and stems are kept; only a stem two images share gets its suffix folded in
    assert sorted(names) == ["a/b/x.png", "a/x.png", "a__x.png", "a_b/x.png", "c/y_jpg.jpg", "c/y_png.png"]
    for entry in manifest:  # each label file holds its own image's box
        link = out / "images" / entry["name"]
        number = relative.index(Path(entry["image"]).relative_to(source).as_posix())
        assert link.resolve() == Path(entry["image"]).resolve()
        assert read_label_file(label_path(link))[:, 0].tolist() == entry["classes"] == [number]
    on_disk = [row for path in (out / "labels").rglob("*.txt") for row in path.read_text().splitlines()]
    assert summary["pseudo_labels"] == len(on_disk) == 6 and summary["images"] == 6

    review = open_folder_source(out, reviewed=tmp_path / "reviewed")  # the review's reader finds every score
    assert sorted(review.images) == sorted(names) and sorted(review.scores) == sorted(names)


def test_names_that_still_collide_are_refused_before_anything_is_written(weights, tmp_path, capsys):
    source, out = tmp_path / "source", tmp_path / "pl"
    for seed, name in enumerate(["y.jpg", "y.png", "y_png.png"]):  # y.png's folded name is taken
        _noise(source / name, seed)
    code, err, _ = _run(capsys, "--weights", weights, "--source", source, "--out", out, "--imgsz", 64)
    assert code == 2 and "Traceback" not in err and "y_png.png" in err and "--source" in err
    assert not out.exists()


# --- 8: an image the decoder cannot read -----------------------------------------------------------------------


def test_a_truncated_jpeg_passes_verify_but_not_the_decoder(tmp_path):
    bad = _truncated_jpeg(tmp_path / "bad.jpg")
    with Image.open(bad) as image:
        image.verify()  # no complaint
    assert cv2.imdecode(np.fromfile(bad, np.uint8), cv2.IMREAD_COLOR) is None


@pytest.mark.parametrize("batch", [2, 1])  # batch 1: a batch of the bad image alone
def test_pseudo_label_skips_a_truncated_jpeg_and_counts_it(weights, tmp_path, capsys, warnings, batch):
    source, out = tmp_path / "source", tmp_path / "pl"
    for seed in range(3):
        _noise(source / f"good{seed}.png", seed)
    bad = _truncated_jpeg(source / "bad.jpg")
    options = ("--imgsz", 64, "--batch", batch)
    code, err, said = _run(capsys, "--weights", weights, "--source", source, "--out", out, *options)
    assert code == 0 and "Traceback" not in err and "on 3 images" in said and "1 unreadable images skipped" in said
    assert any("--source" in w and str(bad) in w and "semi.unlabeled" not in w for w in warnings), warnings
    summary = json.loads((out / "summary.json").read_text())
    assert summary["images"] == 3 and summary["skipped"] == 1 and summary["skipped_images"] == [str(bad)]
    manifest = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert sorted(entry["name"] for entry in manifest) == ["good0.png", "good1.png", "good2.png"]
    assert sorted(p.name for p in (out / "images").iterdir()) == ["good0.png", "good1.png", "good2.png"]


def test_the_online_stream_skips_a_truncated_jpeg_and_goes_on(tmp_path, warnings):
    folder = tmp_path / "unlabeled"
    good = [_noise(folder / f"{i}.png", i) for i in range(3)]
    bad = _truncated_jpeg(folder / "1_bad.jpg")  # sorted between 0.png and 1.png
    dataset = UnlabeledImages.from_folder(folder, imgsz=32)
    assert len(dataset) == 4  # the up-front check lets it through
    batches = list(unlabeled_batches(dataset, 4, seed=0, max_passes=2))
    assert len(batches) == 2
    for images, hidden, paths in batches:  # a full batch: the next readable image takes the bad one's place
        assert images.shape == (4, 3, 32, 32) and len(hidden) == len(paths) == 4
        assert str(bad) not in paths and set(paths) == {str(p) for p in good}
    assert any("semi.unlabeled" in w and str(bad) in w for w in warnings), warnings


def test_the_ultralytics_view_skips_a_truncated_jpeg_and_goes_on(tmp_path, warnings):
    from ultralytics.cfg import get_cfg

    from semiyolo.integrations.ultralytics.unlabeled import UnlabeledYOLODataset, ultralytics_view_batches

    folder = tmp_path / "unlabeled"
    good = [_noise(folder / f"{i}.png", i) for i in range(3)]
    bad = _truncated_jpeg(folder / "1_bad.jpg")
    hyp = get_cfg(overrides={"mosaic": 1.0})
    data = {"names": {0: "a"}, "nc": 1, "channels": 3}
    dataset = UnlabeledYOLODataset(img_path=str(folder), imgsz=64, batch_size=4, augment=True, hyp=hyp, data=data)
    batches = list(ultralytics_view_batches(dataset, 4, seed=0, max_passes=2))
    assert len(batches) >= 1
    for images, _, paths in batches:
        assert images.shape == (4, 3, 64, 64) and str(bad) not in paths and set(paths) <= {str(p) for p in good}
    assert any("semi.unlabeled" in w and str(bad) in w for w in warnings), warnings


# --- 19: numbers out of range ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "option, value",
    [
        ("--imgsz", "0"),
        ("--imgsz", "-64"),
        ("--imgsz", "65"),  # the model's stride is 32
        ("--batch", "0"),
        ("--min-score", "1.5"),
        ("--min-score", "-1"),
    ],
)
def test_a_bad_number_is_one_line_before_the_output_exists(weights, tmp_path, capsys, option, value):
    source, out = tmp_path / "source", tmp_path / "pl"
    _noise(source / "a.png", 0)
    code, err, _ = _run(capsys, "--weights", weights, "--source", source, "--out", out, "--imgsz", 64, option, value)
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert err.startswith(f"semiyolo pseudo-label: error: {option}: ") and value in err
    assert not out.exists()


# --- 20: a checkpoint of another task, without train_args.task -------------------------------------------------


@pytest.mark.parametrize(
    "yaml, task", [("yolov8n-seg.yaml", "segment"), ("yolov8n-pose.yaml", "pose"), ("yolov8n-cls.yaml", "classify")]
)
def test_a_checkpoint_of_another_task_is_refused_by_its_head(tmp_path, capsys, yaml, task):
    other = tmp_path / "other.pt"
    YOLO(yaml).save(other)
    checkpoint = torch.load(other, weights_only=False)
    for model in filter(None, (checkpoint["model"], checkpoint.get("ema"))):  # saved without its task: not in
        vars(model).pop("task", None)  # the model's attributes, nor in its training arguments
    checkpoint.get("train_args", {}).pop("task", None)
    torch.save(checkpoint, other)
    source, out = tmp_path / "source", tmp_path / "pl"
    _noise(source / "a.png", 0)
    code, err, _ = _run(capsys, "--weights", other, "--source", source, "--out", out, "--imgsz", 64)
    assert code == 2 and "Traceback" not in err
    assert f"--weights: {other} is a {task} model; pseudo-labels need a detection model" in err
    assert not out.exists()


def test_online_training_goes_on_past_a_truncated_jpeg(tmp_path, tiny_data, warnings):
    import yaml

    folder = tmp_path / "unlabeled"
    for i in range(3):
        _noise(folder / f"{i}.png", i)
    bad = _truncated_jpeg(folder / "bad.jpg")
    cfg = {"model": "yolov8n.yaml", "data": str(tiny_data), "train": tiny_train(tmp_path / "runs", "train", epochs=1)}
    cfg["semi"] = {"mode": "online", "unlabeled": str(folder), "burn_in": 0}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["train", str(tmp_path / "run.yaml")]) == 0
    assert any("semi.unlabeled: skipping" in w and str(bad) in w for w in warnings), warnings
