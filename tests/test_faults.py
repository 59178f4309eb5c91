"""Messy real-world input (issue 13): each case answered clearly, skipped with a warning, or refused."""

import json
import os

import cv2
import numpy as np
import pytest
from ultralytics import YOLO
from ultralytics.data.utils import img2label_paths

from semiyolo.data import label_path, read_label_file
from semiyolo.errors import DataError
from semiyolo.integrations.ultralytics.evaluate import background_false_positives
from semiyolo.integrations.ultralytics.offline import pseudo_label_folder
from semiyolo.integrations.ultralytics.unlabeled import UnlabeledImages
from tiny_runs import tiny_train


def _jpeg(path, value=100, size=48) -> bytes:
    _, buf = cv2.imencode(".jpg", np.full((size, size, 3), value, np.uint8))
    data = buf.tobytes()
    with open(path, "wb") as f:
        f.write(data)
    return data


@pytest.fixture
def odd_names(tmp_path):
    """An unlabeled folder with one ordinary file name and one that is not valid UTF-8."""
    folder = tmp_path / "unlabeled" / "images"
    folder.mkdir(parents=True)
    _jpeg(folder / "plain.jpg")
    _jpeg(os.fsencode(folder) + b"/\xff\xfeodd.jpg", value=30)
    return folder


def test_a_file_name_that_is_not_utf8_is_read_not_a_crash(odd_names):
    # cv2.imread(str(path)) ended the process with SIGSEGV on such a name
    dataset = UnlabeledImages.from_folder(odd_names, imgsz=32)
    assert len(dataset) == 2 and not dataset.skipped
    values = sorted(int(dataset[i][0][0, 16, 16]) for i in range(2))  # the centre pixel, no padding there
    assert values == [30, 100]


def test_pseudo_labelling_a_folder_with_such_a_name_finishes(odd_names, tmp_path):
    weights = tmp_path / "w.pt"
    YOLO("yolov8n.yaml").save(weights)
    summary = pseudo_label_folder(weights, odd_names, tmp_path / "pl", imgsz=32)
    assert summary["images"] == 2
    assert json.loads((tmp_path / "pl" / "summary.json").read_text())["images"] == 2
    assert len((tmp_path / "pl" / "manifest.jsonl").read_text().splitlines()) == 2


def test_a_malformed_hidden_label_is_left_out_of_the_audit(tmp_path, capsys):
    folder = tmp_path / "unlabeled" / "images"
    folder.mkdir(parents=True)
    _jpeg(folder / "a.jpg")
    (tmp_path / "unlabeled" / "labels").mkdir()
    (tmp_path / "unlabeled" / "labels" / "a.txt").write_text("0 0.5 0.5\n")  # 3 values: IndexError before
    image, hidden, _ = UnlabeledImages.from_folder(folder, imgsz=32)[0]
    assert image.shape == (3, 32, 32) and hidden.shape == (0, 5)


def test_unreadable_validation_images_are_skipped_by_the_background_fp_metric(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    good = images / "good.jpg"
    _jpeg(good)
    data = _jpeg(images / "truncated.jpg", size=64)
    (images / "truncated.jpg").write_bytes(data[: len(data) // 2])  # OSError: image file is truncated, before
    (images / "empty.jpg").write_bytes(b"")
    result = background_false_positives(YOLO("yolov8n.yaml"), sorted(images.iterdir()), imgsz=32)
    assert result["images"] == 1 and result["skipped_images"] == 2


def test_a_byte_order_mark_is_named(tmp_path):
    label = tmp_path / "a.txt"
    label.write_text("\ufeff0 0.5 0.5 0.1 0.1\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"a.txt:1: the file starts with a byte-order mark \(BOM\)"):
        read_label_file(label, nc=1)


def test_label_rows_are_read_and_checked(tmp_path):
    label = tmp_path / "a.txt"
    label.write_text("1 0.5 0.5 0.2 0.4\n\n0 0.1 0.1 0.1 0.1\n")
    expected = np.array([[1, 0.5, 0.5, 0.2, 0.4], [0, 0.1, 0.1, 0.1, 0.1]], np.float32)
    assert np.array_equal(read_label_file(label, nc=2), expected)
    assert read_label_file(tmp_path / "missing.txt").shape == (0, 5)
    with pytest.raises(DataError, match=r"a.txt:1: class 1 out of range: the dataset has 1 classes"):
        read_label_file(label, nc=1)


@pytest.mark.parametrize(
    "image",
    ["/d/images/a.jpg", "/d/images/train/a.b.png", "/images/x/images/y/c.jpeg", "rel/images/z.JPG", "/no/folder/a.jpg"],
)
def test_one_label_path_rule_equal_to_ultralytics(image):
    from pathlib import Path

    assert str(label_path(Path(image))) == img2label_paths([image])[0]


def _config(tmp_path, data, **semi):
    import yaml

    cfg = {
        "model": "yolov8n.yaml",
        "data": str(data),
        "train": tiny_train(tmp_path / "runs", "train", epochs=1),  # "train": Ultralytics' default name
        "semi": semi,
    }
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _refused(capsys, args, message):
    from semiyolo.cli import main

    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_resume_path_must_exist_and_belong_to_this_run(tmp_path, tiny_data, capsys):
    import torch

    config = str(_config(tmp_path, tiny_data))
    _refused(capsys, ["train", config, "train.resume=/nonexistent/last.pt"], "train.resume: /nonexistent/last.pt not")
    _refused(capsys, ["train", config, "train.resume=true"], "train.resume: give the path of the run's weights/last.pt")
    other = tmp_path / "other.pt"
    torch.save({"train_args": {"data": str(tmp_path / "other" / "data.yaml")}}, other)
    _refused(capsys, ["train", config, f"train.resume={other}"], f"train.resume: {other} belongs to a run on")
    assert not (tmp_path / "runs").exists()


def test_pseudo_label_output_is_fresh_or_explicitly_overwritten(odd_names, tmp_path, capsys):
    from semiyolo.cli import main

    weights = tmp_path / "w.pt"
    YOLO("yolov8n.yaml").save(weights)
    out = tmp_path / "pl"
    args = ["pseudo-label", "--weights", str(weights), "--source", str(odd_names), "--imgsz", "32"]
    assert main([*args, "--out", str(out)]) == 0
    # random weights keep nothing: the summary and the log say what offline training would then learn
    assert "no pseudo-label survived" in json.loads((out / "summary.json").read_text())["warning"]
    (out / "labels" / "stale.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    _refused(capsys, [*args, "--out", str(out)], "holds an earlier pseudo-label output; choose a new folder or pass")
    assert main([*args, "--out", str(out), "--overwrite"]) == 0
    assert not (out / "labels" / "stale.txt").exists() and len(list((out / "labels").iterdir())) == 2
    _refused(capsys, [*args, "--out", str(odd_names / "pl")], "holds or lies inside --source")
    # a folder above the source, or one that is not an earlier output, is never cleared
    _refused(capsys, [*args, "--out", str(odd_names.parent), "--overwrite"], "holds or lies inside --source")
    (tmp_path / "mine" / "images").mkdir(parents=True)
    (tmp_path / "mine" / "images" / "x.jpg").write_bytes(b"keep me")
    _refused(capsys, [*args, "--out", str(tmp_path / "mine"), "--overwrite"], "not a pseudo-label output (images)")
    (tmp_path / "mine" / "notes.md").write_text("keep me")
    _refused(capsys, [*args, "--out", str(tmp_path / "mine"), "--overwrite"], "not a pseudo-label output (notes.md)")
    assert (tmp_path / "mine" / "images" / "x.jpg").read_bytes() == b"keep me"


def test_offline_refuses_unfinished_or_malformed_pseudo_labels(tmp_path, tiny_data, capsys):
    pl = tmp_path / "pl"
    (pl / "images").mkdir(parents=True)
    (pl / "labels").mkdir()
    config = str(_config(tmp_path, tiny_data, mode="offline", pseudo_labels=str(pl)))
    _refused(capsys, ["train", config], "has no summary.json: the pseudo-labelling did not finish")
    (pl / "summary.json").write_text(json.dumps({"names": {"0": "circle", "1": "square", "2": "triangle"}}))
    (pl / "labels" / "x.txt").write_text("7 0.5 0.5 0.1 0.1\n")
    _refused(capsys, ["train", config], "x.txt:1: class 7 out of range: the dataset has 3 classes")


def test_a_run_folder_has_one_writer_at_a_time(tmp_path, tiny_data, capsys):
    import subprocess
    import sys

    from semiyolo.cli import main

    config = str(_config(tmp_path, tiny_data))
    folder = tmp_path / "runs" / "same"
    folder.mkdir(parents=True)
    holder = "import sys, time; from semiyolo.runfiles import RunLock; RunLock(sys.argv[1]).acquire(); "
    holder += "print('held', flush=True); time.sleep(60)"
    other = subprocess.Popen([sys.executable, "-c", holder, str(folder)], stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "held"  # a real process holds the real lock
        args = ["train", config, "train.name=same", "train.exist_ok=true"]
        _refused(capsys, args, f"another run (process {other.pid}) is writing to this folder")
        assert not (folder / "results.csv").exists()
    finally:
        other.kill()
        other.wait()
    # the other process is gone (killed: its lock file stays, with its id): the claim is free, and released at the end
    assert (folder / ".semiyolo.lock").read_text() == str(other.pid)
    assert main(args) == 0
    assert (folder / "results.csv").is_file() and not (folder / ".semiyolo.lock").exists()


@pytest.mark.parametrize(
    ("code", "message"),
    [(28, "no space left on the device of"), (13, "is not writable (Permission denied); give train.project")],
)
def test_a_failed_checkpoint_write_is_one_line_and_leaves_no_part_file(
    tmp_path, tiny_data, capsys, monkeypatch, code, message
):
    import pathlib

    write_bytes = pathlib.Path.write_bytes

    def failing(path, data):
        if path.name.endswith(".pt.part"):
            write_bytes(path, data[: len(data) // 2])  # half written, then the device refuses
            raise OSError(code, os.strerror(code))
        return write_bytes(path, data)

    monkeypatch.setattr(pathlib.Path, "write_bytes", failing)
    _refused(capsys, ["train", str(_config(tmp_path, tiny_data)), "train.name=full"], message)
    assert not list((tmp_path / "runs" / "full" / "weights").glob("*.part"))


def test_ctrl_c_says_where_to_resume(tmp_path, tiny_data, capsys, monkeypatch):
    from semiyolo.cli import main
    from semiyolo.integrations.ultralytics import SupervisedTrainer

    preprocess = SupervisedTrainer.preprocess_batch

    def interrupted_in_epoch_2(self, batch):
        if self.epoch == 1:
            raise KeyboardInterrupt
        return preprocess(self, batch)

    monkeypatch.setattr(SupervisedTrainer, "preprocess_batch", interrupted_in_epoch_2)
    assert main(["train", str(_config(tmp_path, tiny_data)), "train.epochs=2", "train.name=ctrlc"]) == 130
    last = tmp_path / "runs" / "ctrlc" / "weights" / "last.pt"
    err = capsys.readouterr().err
    assert f"interrupted; continue with train.resume={last}" in err and "Traceback" not in err
    assert last.is_file() and not (last.parent.parent / ".semiyolo.lock").exists()


def test_pseudo_label_errors_name_the_weights_and_the_source(tmp_path, odd_names):
    from semiyolo.errors import ConfigError

    weights = tmp_path / "w.pt"
    YOLO("yolov8n.yaml").save(weights)  # 80 classes
    with pytest.raises(ConfigError, match=rf"num_classes is 10, --weights {weights} has 80"):
        pseudo_label_folder(weights, odd_names, tmp_path / "a", [{"name": "dsat", "params": {"num_classes": 10}}])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"^--source: no images found in"):
        pseudo_label_folder(weights, tmp_path / "empty", tmp_path / "b")


def test_empty_image_files_are_listed_by_the_dataset_check(tmp_path):
    from semiyolo.data import SynthSpec, check_detection_dataset, write_dataset

    data = write_dataset(tmp_path / "d", SynthSpec(images=8, imgsz=32, seed=0))
    empty = tmp_path / "d" / "images" / "train" / "empty.jpg"
    empty.write_bytes(b"")  # Ultralytics skips it, saying "No module named 'pi_heif'"
    assert check_detection_dataset(data)["empty_images"] == [empty]


def test_a_label_that_is_not_finite_is_named(tmp_path):
    label = tmp_path / "a.txt"
    label.write_text("nan 0.5 0.5 0.1 0.1\n")
    with pytest.raises(DataError, match=r"a.txt:1: not finite numbers"):
        read_label_file(label, nc=1)


def test_an_empty_filter_chain_is_warned_about(tmp_path, tiny_data, odd_names, monkeypatch):
    from ultralytics.utils import LOGGER

    from semiyolo.integrations.ultralytics.api import prepare

    said = []
    monkeypatch.setattr(LOGGER, "warning", lambda message, *args, **kwargs: said.append(message))
    prepare(_config(tmp_path, tiny_data, mode="online", unlabeled=str(odd_names), filters=[]))
    assert any("semi.filters is empty: every candidate above semi.pseudo_min_score" in m for m in said)


def test_a_reviewed_folder_that_is_missing_or_a_file_is_refused(tmp_path, tiny_data, odd_names, capsys):
    # before, the run trained without the person's reviews, silently
    config = _config(tmp_path, tiny_data, mode="online", unlabeled=str(odd_names))
    missing, a_file = tmp_path / "nonexistent", tmp_path / "reviewed.txt"
    a_file.write_text("")
    _refused(capsys, ["train", str(config), f"semi.reviewed={missing}"], f"semi.reviewed: {missing} does not exist")
    _refused(capsys, ["train", str(config), f"semi.reviewed={a_file}"], f"semi.reviewed: {a_file} is a file")
    assert not (tmp_path / "runs").exists()
