"""Issue 29, items 4 and 9: stored paths that work from any folder, paths checked when a trainer is bound, and a
``split`` that says what it made, writes a config sized to the data and keeps the images' names."""

from pathlib import Path

import pytest
import yaml

from semiyolo.cli import main
from semiyolo.config_loading import load_config
from semiyolo.data import SynthSpec, label_path, write_dataset
from semiyolo.errors import ConfigError
from semiyolo.integrations.ultralytics import semi_trainer


@pytest.fixture(scope="module")
def data_80px(tmp_path_factory):
    """10 train images of 80 x 80 px (and 2 val), three classes."""
    return write_dataset(tmp_path_factory.mktemp("d80"), SynthSpec(images=12, imgsz=80, seed=3))


def _unlabeled_folder(data_yaml: Path, folder: Path) -> Path:
    folder.mkdir(parents=True)
    for image in sorted((data_yaml.parent / "images" / "train").glob("*.png"))[:2]:
        (folder / image.name).write_bytes(image.read_bytes())
    return folder


def test_semi_trainer_checks_paths_when_called(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"semi\.unlabeled: .*nope/images"):
        semi_trainer(mode="online", unlabeled="nope/images")
    with pytest.raises(ConfigError, match=r"semi\.init_state: .*missing\.pt"):
        semi_trainer(mode="supervised", init_state="missing.pt")
    assert not (tmp_path / "runs").exists()  # refused before anything was made


def test_stored_semi_paths_are_absolute(data_80px, tmp_path, monkeypatch):
    work = tmp_path / "work"
    _unlabeled_folder(data_80px, work / "u" / "images")
    (work / "r").mkdir()
    monkeypatch.chdir(work)
    bound = semi_trainer(mode="online", unlabeled="u/images", reviewed="r").keywords["semi"]
    assert (bound.unlabeled, bound.reviewed) == (str(work / "u" / "images"), str(work / "r"))
    from_mapping = load_config({"data": str(data_80px), "semi": {"mode": "online", "unlabeled": "u/images"}})
    assert from_mapping.semi.unlabeled == str(work / "u" / "images")
    config = tmp_path / "configs" / "run.yaml"  # a config in another folder: its own relative paths, and the
    _unlabeled_folder(data_80px, config.parent / "own" / "images")  # command line's, relative to the working one
    config.write_text(yaml.safe_dump({"data": str(data_80px), "semi": {"mode": "online", "unlabeled": "own/images"}}))
    cfg = load_config(config, ["semi.reviewed=r"])
    assert (cfg.semi.unlabeled, cfg.semi.reviewed) == (str(config.parent / "own" / "images"), str(work / "r"))


def _numbers(line: str) -> list[int]:
    return [int(field) for field in line.split()[1:]]


def _counts(images: list[Path], cls: int | None = None) -> list[int]:
    rows = [[int(line.split()[0]) for line in label_path(i).read_text().splitlines() if line] for i in images]
    if cls is not None:
        rows = [[c for c in row if c == cls] for row in rows]
    return [sum(1 for row in rows if row), sum(len(row) for row in rows)]


def test_split_says_what_it_made_sizes_the_run_and_keeps_names(data_80px, tmp_path, capsys):
    out = tmp_path / "s"
    assert main(["split", str(data_80px), "--fraction", "0.3", "--seed", "0", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    sources = sorted((data_80px.parent / "images" / "train").glob("*.png"))
    labeled = sorted((out / "labeled" / "images").iterdir())
    unlabeled = sorted((out / "unlabeled" / "images").iterdir())
    assert sorted(p.name for p in labeled + unlabeled) == [p.name for p in sources]  # 000001.png stays 000001.png
    labeled_src = [p.resolve() for p in labeled]
    unlabeled_src = [p.resolve() for p in unlabeled]
    lines = {line.split()[0]: line for line in printed.splitlines() if line.strip()}
    assert _numbers(lines["all"]) == [3, *_counts(labeled_src)[1:], 7, *_counts(unlabeled_src)[1:]]
    for cls, name in enumerate(("circle", "square", "triangle")):
        assert _numbers(lines[name]) == [*_counts(labeled_src, cls), *_counts(unlabeled_src, cls)]
    train = yaml.safe_load((out / "config.yaml").read_text())["train"]
    assert train == {"epochs": 60, "imgsz": 64}  # 80 px images: 64, the largest multiple of 32 within them; 3
    # labeled images are one step an epoch at batch 16: the longest run of the 30 to 60 epoch range
    assert "imgsz" in (out / "config.yaml").read_text().split("train:")[0]  # the choice is explained above it
    assert "semiyolo train" in printed


def test_split_disambiguates_only_names_that_collide(tmp_path, capsys):
    first = write_dataset(tmp_path / "d1", SynthSpec(images=6, imgsz=64, seed=1))
    second = write_dataset(tmp_path / "d2", SynthSpec(images=6, imgsz=64, seed=2))
    (second.parent / "images" / "train" / "000000.png").rename(second.parent / "images" / "train" / "extra.png")
    (second.parent / "labels" / "train" / "000000.txt").rename(second.parent / "labels" / "train" / "extra.txt")
    both = tmp_path / "both.yaml"
    names = yaml.safe_load(first.read_text())["names"]
    train = [str(first.parent / "images" / "train"), str(second.parent / "images" / "train")]
    both.write_text(yaml.safe_dump({"train": train, "val": str(first.parent / "images" / "val"), "names": names}))
    out = tmp_path / "s"
    assert main(["split", str(both), "--fraction", "0.5", "--out", str(out)]) == 0
    made = {p.name: p.resolve() for part in ("labeled", "unlabeled") for p in (out / part / "images").iterdir()}
    assert made["extra.png"] == (second.parent / "images" / "train" / "extra.png").resolve()
    assert made["d1_000001.png"] == (first.parent / "images" / "train" / "000001.png").resolve()
    assert made["d2_000001.png"] == (second.parent / "images" / "train" / "000001.png").resolve()
    for part in ("labeled", "unlabeled"):
        for image in (out / part / "images").iterdir():
            assert label_path(image).resolve() == label_path(image.resolve()).resolve()
