"""The one box and label I/O layer: label paths, label files, list files and links, read as Ultralytics reads
them; and the dataset list rewriting the trainers do (labeled repeat, DSAT hold-out, offline pseudo-labels)."""

import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from ultralytics.data.base import BaseDataset
from ultralytics.data.utils import img2label_paths

from semiyolo.data import (
    check_detection_dataset,
    held_out_train,
    label_path,
    link,
    pseudo_labeled_train,
    read_image_list,
    read_label_file,
    repeated_train,
    split_holdout,
    train_images,
    write_image_list,
    write_label_file,
)
from semiyolo.errors import DataError

LABEL_PATH_CASES = [
    "/d/images/train/a.jpg",  # the usual layout: /d/labels/train/a.txt
    "/d/images/x/images/b.png",  # nested images folders: the last one becomes labels
    "/d/imgs/c.jpg",  # no images folder: the label sits next to the image
    "/d/images/train/D.JPG",  # upper-case suffix
    "/d/images/train/e.tar.jpeg",  # dots in the name: only the last suffix goes
    "/data.v1/images/f.png",  # a dot in a folder name
    "/d/myimages/train/g.png",  # "images" inside a folder name is not the images folder
    "/d/images/train/images",  # a file named images (no suffix)
    "rel/images/h.bmp",  # relative, with an images folder
    "images/i.png",  # relative, starting with images: no separator before it, so Ultralytics keeps it
]


@pytest.mark.parametrize("image", LABEL_PATH_CASES)
def test_label_path_is_ultralytics_rule(image):
    assert label_path(image) == Path(img2label_paths([image])[0])
    assert label_path(Path(image)) == label_path(image)


def test_label_path_by_hand():
    assert label_path("/d/images/x/images/b.png") == Path("/d/images/x/labels/b.txt")
    assert label_path("/d/images/train/D.JPG") == Path("/d/labels/train/D.txt")
    assert label_path("/d/imgs/c.jpg") == Path("/d/imgs/c.txt")
    assert label_path("images/i.png") == Path("images/i.txt")


def _ultralytics_images(list_file: Path) -> list[str]:
    """The images Ultralytics' dataset reads from a list file (it sorts them)."""
    return BaseDataset.get_img_files(SimpleNamespace(prefix="", fraction=1.0), str(list_file))


def test_image_list_lines_resolve_as_in_ultralytics(tmp_path, monkeypatch):
    (tmp_path / "lists" / "sub").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    for name in ("lists/sub/a.jpg", "lists/b.png", "elsewhere/c.jpg"):
        (tmp_path / name).write_bytes(b"x")
    listing = tmp_path / "lists" / "train.txt"
    # a byte-order mark, a ./ line (relative to the list's folder), an absolute line, a blank line, and a
    # relative line without ./ (Ultralytics takes it from the working folder)
    listing.write_text(f"\ufeff./sub/a.jpg\n{tmp_path / 'elsewhere' / 'c.jpg'}\n\n./b.png\nelsewhere/c.jpg\n")
    monkeypatch.chdir(tmp_path)
    images = read_image_list(listing)
    assert images == [
        tmp_path / "lists" / "sub" / "a.jpg",
        tmp_path / "elsewhere" / "c.jpg",
        tmp_path / "lists" / "b.png",
        Path("elsewhere/c.jpg"),
    ]
    assert sorted(map(str, images)) == _ultralytics_images(listing)


def test_a_list_file_with_dot_slash_lines_passes_the_dataset_checks(tmp_path):
    (tmp_path / "pics").mkdir()
    for i in range(2):
        (tmp_path / "pics" / f"{i}.png").write_bytes(b"x")
        (tmp_path / "pics" / f"{i}.txt").write_text("0 0.5 0.5 0.2 0.2\n")  # no images folder: next to it
    (tmp_path / "train.txt").write_text("./pics/0.png\n")
    (tmp_path / "val.txt").write_text("./pics/1.png\n")
    data_yaml = tmp_path / "data.yaml"
    data_yaml.write_text("train: train.txt\nval: val.txt\nnames: [a]\n")
    data = check_detection_dataset(data_yaml)
    assert data["n_train"] == 1 and data["n_val"] == 1


def test_write_image_list_is_atomic_and_leaves_no_part_file(tmp_path):
    listing = tmp_path / "runs" / "list.txt"  # the folder is created
    assert write_image_list(listing, [Path("/a.jpg"), "/b.jpg"]) == listing
    assert listing.read_text() == "/a.jpg\n/b.jpg\n"

    def failing():
        yield "/c.jpg"
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_image_list(listing, failing())
    assert listing.read_text() == "/a.jpg\n/b.jpg\n"  # the old list, whole
    assert os.listdir(listing.parent) == ["list.txt"]
    assert read_image_list(listing) == [Path("/a.jpg"), Path("/b.jpg")]


def test_label_file_round_trip(tmp_path):
    path = tmp_path / "x.txt"
    write_label_file(path, [(2, 0.5, 0.25, 0.1234564, 1.0), (0.0, 0, 0, 0, 0)])
    assert path.read_text() == "2 0.500000 0.250000 0.123456 1.000000\n0 0.000000 0.000000 0.000000 0.000000\n"
    np.testing.assert_allclose(read_label_file(path), [[2, 0.5, 0.25, 0.123456, 1], [0, 0, 0, 0, 0]], atol=1e-7)
    write_label_file(path, [])
    assert path.read_text() == "" and read_label_file(path).shape == (0, 5)
    assert read_label_file(tmp_path / "missing.txt").shape == (0, 5)  # no file: background


def test_link_replaces_and_falls_back_to_a_copy(tmp_path, monkeypatch):
    src = tmp_path / "a.jpg"
    src.write_bytes(b"one")
    dst = tmp_path / "out" / "b.jpg"
    link(src, dst)
    assert dst.is_symlink() and dst.read_bytes() == b"one"
    link(src, dst)  # again: replaced, not an error
    assert dst.is_symlink()

    def no_links(*args):
        raise OSError("links not supported")

    monkeypatch.setattr(os, "symlink", no_links)
    link(src, dst)
    assert not dst.is_symlink() and dst.read_bytes() == b"one"


def _images(n):
    return [Path(f"/d/{i}.png") for i in range(n)]


@pytest.mark.parametrize(
    ("n", "fraction", "max_held", "held"),
    [
        # round(10 * 0.3) = 3 held, every 10 / 3 = 3.33 images: int(0), int(3.33), int(6.67) = 0, 3, 6
        (10, 0.3, 200, [0, 3, 6]),
        # round(5 * 0.01) = 0, but at least 1: position 0
        (5, 0.01, 200, [0]),
        # round(20 * 0.5) = 10, at most 4: every 20 / 4 = 5 images
        (20, 0.5, 4, [0, 5, 10, 15]),
        # round(2 * 0.5) = 1 of 2
        (2, 0.5, 200, [0]),
    ],
)
def test_split_holdout_by_hand(n, fraction, max_held, held):
    images = _images(n)
    kept, out = split_holdout(images, fraction, max_held)
    assert out == [images[i] for i in held]
    assert kept == [p for i, p in enumerate(images) if i not in held]  # order kept


def test_split_holdout_refuses_to_hold_out_everything():
    with pytest.raises(ValueError, match="holding out 1 of 1 labeled train images leaves none to train on"):
        split_holdout(_images(1), 0.1)


def _dataset(tmp_path):
    folder = tmp_path / "images" / "train"
    folder.mkdir(parents=True)
    for name in ("b.png", "a.png"):
        (folder / name).write_bytes(b"x")
    extra = tmp_path / "extra.txt"
    extra.write_text("./images/train/a.png\n")
    return {"train": [str(folder), str(extra)], "val": str(folder), "nc": 1}, folder


def test_train_images_of_folders_and_list_files(tmp_path):
    data, folder = _dataset(tmp_path)
    # the folder sorted, then the list file in its order
    assert train_images(data) == [folder / "a.png", folder / "b.png", folder / "a.png"]
    assert train_images({"train": str(folder)}) == [folder / "a.png", folder / "b.png"]
    with pytest.raises(DataError, match="does not exist"):
        train_images({"train": str(tmp_path / "nope")})


def test_repeated_train_lists_the_whole_set_times_over(tmp_path):
    data, folder = _dataset(tmp_path)
    repeated = repeated_train(data, 2, tmp_path / "run")
    assert repeated["train"] == str(tmp_path / "run" / "labeled_repeated.txt")
    assert read_image_list(repeated["train"]) == [folder / n for n in ("a.png", "b.png", "a.png")] * 2
    assert repeated["val"] == data["val"] and isinstance(data["train"], list)  # the input is left as it was


def test_held_out_train_writes_both_lists(tmp_path):
    data, folder = _dataset(tmp_path)
    # 3 images, round(3 * 0.4) = 1 held: position 0
    kept, held = held_out_train(data, 0.4, tmp_path / "run")
    assert held == [folder / "a.png"]
    assert kept["train"] == str(tmp_path / "run" / "semi_train.txt")
    assert read_image_list(kept["train"]) == [folder / "b.png", folder / "a.png"]
    assert read_image_list(tmp_path / "run" / "dsat_holdout.txt") == held


def test_pseudo_labeled_train_adds_the_folder(tmp_path):
    data, folder = _dataset(tmp_path)
    (tmp_path / "pl" / "images").mkdir(parents=True)
    added = pseudo_labeled_train({**data, "train": str(folder)}, tmp_path / "pl")
    assert added["train"] == [str(folder), str(tmp_path / "pl" / "images")]
    with pytest.raises(DataError, match=r"nope/images not found \(write it with 'semiyolo pseudo-label'\)"):
        pseudo_labeled_train(data, tmp_path / "nope")
