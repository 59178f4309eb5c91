import hashlib
import re

import numpy as np
import pytest
import yaml

from semiyolo.data import CLASSES, SynthSpec, check_detection_dataset, write_dataset
from semiyolo.data.synth import render
from semiyolo.errors import DataError, UserInputError


def _digest(folder):
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in (".png", ".txt")):
        h.update(path.relative_to(folder).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def test_same_seed_same_bytes_other_seed_other_images(tmp_path):
    spec = SynthSpec(images=12, imgsz=64, seed=3)
    write_dataset(tmp_path / "a", spec)
    write_dataset(tmp_path / "b", spec)
    write_dataset(tmp_path / "c", SynthSpec(images=12, imgsz=64, seed=4))
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b") != _digest(tmp_path / "c")


def test_layout_labels_and_data_yaml(tmp_path):
    data_yaml = write_dataset(tmp_path, SynthSpec(images=30, imgsz=64, seed=0, background_only=0.3))
    data = yaml.safe_load(data_yaml.read_text())
    assert data["names"] == dict(enumerate(CLASSES)) and data["train"] == "images/train"
    assert len(list((tmp_path / "images" / "val").glob("*.png"))) == 6  # round(30 * 0.2)
    assert len(list((tmp_path / "images" / "train").glob("*.png"))) == 24
    labels = sorted((tmp_path / "labels").rglob("*.txt"))
    assert len(labels) == 30
    empty = [p for p in labels if not p.read_text().strip()]
    assert empty, "some images are background only"
    for path in labels:
        for row in path.read_text().split("\n"):
            if row:
                c, cx, cy, w, h = map(float, row.split())
                assert int(c) in range(len(CLASSES))
                assert 0 < w <= 1 and 0 < h <= 1
                eps = 1e-6  # six decimals in the file
                assert -eps <= cx - w / 2 and cx + w / 2 <= 1 + eps and -eps <= cy - h / 2 and cy + h / 2 <= 1 + eps
    checked = check_detection_dataset(data_yaml)
    assert checked["nc"] == 3 and checked["n_train"] == 24 and checked["n_val"] == 6


def test_label_boxes_are_tight_around_the_drawn_object():
    spec = SynthSpec(images=4, imgsz=96, seed=1, max_distractors=0, background_only=0.0)
    image, labels = render(spec, 0)
    background, _ = render(SynthSpec(images=4, imgsz=96, seed=1, max_distractors=0, background_only=1.0), 0)
    assert labels
    for _, cx, cy, w, h in labels:
        x1, y1 = round((cx - w / 2) * 96), round((cy - h / 2) * 96)
        x2, y2 = round((cx + w / 2) * 96), round((cy + h / 2) * 96)
        assert x2 > x1 and y2 > y1
        inside = np.abs(image[y1:y2, x1:x2].astype(int) - background[y1:y2, x1:x2].astype(int)).sum()
        assert inside > 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"images": 1}, "images must be >= 2"), ({"val_fraction": 1.0}, "val_fraction"), ({"imgsz": 8}, "imgsz")],
)
def test_bad_spec(kwargs, message):
    with pytest.raises(UserInputError, match=message):
        SynthSpec(**kwargs)


def test_dataset_checks_name_the_problem(tmp_path):
    with pytest.raises(DataError, match="dataset file not found"):
        check_detection_dataset(tmp_path / "missing.yaml")
    (tmp_path / "images" / "train").mkdir(parents=True)
    (tmp_path / "images" / "val").mkdir(parents=True)
    data_yaml = tmp_path / "data.yaml"
    data_yaml.write_text(f"path: {tmp_path}\ntrain: images/train\nval: images/val\nnames: [a]\n")
    with pytest.raises(DataError, match=r"train: no images found under 'images/train'"):
        check_detection_dataset(data_yaml)
    data_yaml.write_text(f"path: {tmp_path}\ntrain: images/nope\nval: images/val\nnames: [a]\n")
    with pytest.raises(DataError, match=r"train: .*images/nope does not exist"):
        check_detection_dataset(data_yaml)
    data_yaml.write_text("train: a\n")
    with pytest.raises(DataError, match="missing key"):
        check_detection_dataset(data_yaml)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("0 0.5 0.5 0.2", "expected 5 values 'class cx cy w h', got 4"),
        ("zero 0.5 0.5 0.2 0.2", "not numbers"),
        ("3 0.5 0.5 0.2 0.2", "class 3 out of range: the dataset has 3 classes (0 to 2)"),
        ("1.5 0.5 0.5 0.2 0.2", "class 1.5 out of range"),
        ("0 0.5 0.5 1.2 0.2", "box 0.5 0.5 1.2 0.2 is not normalised to [0, 1]"),
    ],
)
def test_bad_label_lines_name_file_and_line(tmp_path, line, message):
    data_yaml = write_dataset(tmp_path, SynthSpec(images=4, imgsz=32, seed=0))
    label = sorted((tmp_path / "labels" / "train").glob("*.txt"))[0]
    label.write_text("0 0.5 0.5 0.2 0.2\n" + line + "\n")
    with pytest.raises(DataError, match=re.escape(f"{label}:2: {message}")):
        check_detection_dataset(data_yaml)


def test_digits_scenes_are_deterministic_and_labelled(tmp_path):
    from semiyolo.cli import main
    from semiyolo.data import DigitsSpec, write_digits_dataset

    spec = DigitsSpec(images=20, imgsz=64, seed=1)
    a = write_digits_dataset(tmp_path / "a", spec)
    write_digits_dataset(tmp_path / "b", spec)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    data = yaml.safe_load(a.read_text())
    assert data["names"] == {i: str(i) for i in range(10)}
    checked = check_detection_dataset(a)  # every label line valid: 10 classes, boxes in [0, 1]
    assert checked["nc"] == 10 and checked["n_train"] + checked["n_val"] == 20
    classes = {
        int(line.split()[0]) for p in (tmp_path / "a" / "labels").rglob("*.txt") for line in p.read_text().splitlines()
    }
    assert len(classes) >= 5
    assert main(["data", "digits", "--out", str(tmp_path / "c"), "--images", "4", "--imgsz", "48"]) == 0
    assert main(["data", "digits", "--out", str(tmp_path / "d"), "--images", "1"]) == 2
