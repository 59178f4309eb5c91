import json

import pytest
import yaml

from semiyolo.cli import main
from semiyolo.config_loading import load_config
from semiyolo.data import SynthSpec, choose_labeled, write_dataset
from semiyolo.data.checks import label_path


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("split"), SynthSpec(images=60, imgsz=32, seed=4))


def _train_images(data_yaml):
    return sorted((data_yaml.parent / "images" / "train").glob("*.png"))


def test_split_is_seeded_disjoint_and_complete(dataset, tmp_path):
    images = _train_images(dataset)
    a, b = choose_labeled(images, 0.1, seed=1), choose_labeled(images, 0.1, seed=1)
    assert a == b and a != choose_labeled(images, 0.1, seed=2)
    assert len(a) == round(0.1 * len(images))
    assert main(["split", str(dataset), "--fraction", "0.1", "--seed", "1", "--out", str(tmp_path / "s")]) == 0
    manifest = json.loads((tmp_path / "s" / "split.json").read_text())
    labeled, unlabeled = set(manifest["labeled"]), set(manifest["unlabeled"])
    assert not labeled & unlabeled and labeled | unlabeled == {str(p) for p in images}
    assert labeled == {str(p) for p in a}


def test_split_is_class_stratified(dataset):
    images = _train_images(dataset)
    labeled = choose_labeled(images, 0.1, seed=0)
    classes = set()
    for image in labeled:
        classes |= {int(line.split()[0]) for line in label_path(image).read_text().splitlines() if line}
    assert classes == {0, 1, 2}  # every class has labeled images even at 10 %


def test_unlabeled_labels_never_reach_training(dataset, tmp_path):
    out = tmp_path / "s"
    assert main(["split", str(dataset), "--fraction", "0.2", "--out", str(out)]) == 0
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data["train"] == "labeled/images"
    train_images = sorted((out / "labeled" / "images").iterdir())
    assert len(train_images) == round(0.2 * len(_train_images(dataset)))
    # the unlabeled labels sit under unlabeled/labels, for auditing only; the run config points at the images
    cfg = load_config(out / "config.yaml")
    assert cfg.semi.mode == "online" and cfg.semi.unlabeled == str(out / "unlabeled" / "images")
    assert (out / "unlabeled" / "labels").is_dir()
    assert not any("unlabeled" in str(p.resolve()) for p in train_images)
    from semiyolo.integrations.ultralytics import prepare

    assert prepare(out / "config.yaml").semi.mode == "online"  # the written config passes every check


def test_bad_fraction(dataset, tmp_path, capsys):
    assert main(["split", str(dataset), "--fraction", "1.5", "--out", str(tmp_path / "x")]) == 2
    assert "--fraction must lie in (0, 1)" in capsys.readouterr().err
