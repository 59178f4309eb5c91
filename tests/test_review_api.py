"""The review server's API (FastAPI's test client): list, read, write, reject, no objects, refused names and bodies,
atomic writes under a simulated crash, the order by doubt, and the reviewed folder the trainer reads."""

import io
import json
import os
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from PIL import Image

from semiyolo.review import ScoredBox, box_doubts, image_worth, reviewed_images
from semiyolo.review.app import MAX_BOXES, create_app
from semiyolo.review.server import allowed_hosts, is_loopback, serve
from semiyolo.review.sources import open_folder_source
from semiyolo.review.store import ReviewStore


def _image(path: Path, size=(40, 20), colour=(90, 120, 200), exif_orientation: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", size, colour)
    if exif_orientation is None:
        image.save(path)
    else:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        image.save(path, exif=exif)
    return path


def _labels(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def split(tmp_path):
    """A YOLO split folder: a.png (one box), b.png (two boxes of two classes, apart), c.png (no label file),
    big.png (3000 x 1000); and data.yaml with 2 classes."""
    root = tmp_path / "split"
    for name in ("a", "b", "c"):
        _image(root / "images" / f"{name}.png")
    _image(root / "images" / "big.png", size=(3000, 1000))
    _labels(root / "labels" / "a.txt", "0 0.5 0.5 0.25 0.5\n")
    _labels(root / "labels" / "b.txt", "0 0.25 0.25 0.2 0.2\n1 0.75 0.75 0.2 0.2\n")
    (tmp_path / "data.yaml").write_text(yaml.safe_dump({"names": ["cat", "dog"]}))
    return root


def _client(source_folder: Path, names=None, **kwargs) -> tuple[TestClient, Path]:
    reviewed = source_folder / "reviewed"
    source = open_folder_source(source_folder, reviewed, names)
    return TestClient(create_app(source, ReviewStore(reviewed, user="tester"), **kwargs)), reviewed


def test_list_gives_every_image_with_its_box_count(split):
    client, _ = _client(split, {0: "cat", 1: "dog"})
    listing = client.get("/api/images").json()
    by_name = {i["name"]: i for i in listing["images"]}
    assert sorted(by_name) == ["a.png", "b.png", "big.png", "c.png"]
    assert [by_name[n]["boxes"] for n in ("a.png", "b.png", "big.png", "c.png")] == [1, 2, 0, 0]
    assert listing["pending"] == 0
    assert client.get("/api/info").json()["names"] == ["cat", "dog"]


def test_read_gives_the_label_file_boxes_and_the_upright_size(split):
    client, _ = _client(split, {0: "cat", 1: "dog"})
    body = client.get("/api/labels/b.png").json()
    assert [[b["cls"], b["cx"], b["cy"], b["w"], b["h"]] for b in body["boxes"]] == [
        [0, 0.25, 0.25, 0.2, 0.2],
        [1, 0.75, 0.75, 0.2, 0.2],
    ]
    assert (body["width"], body["height"], body["reviewed"]) == (40, 20, False)


def test_an_exif_turned_image_is_served_upright(tmp_path):
    _image(tmp_path / "d" / "images" / "turned.jpg", size=(40, 20), exif_orientation=6)  # 90 degrees clockwise
    client, _ = _client(tmp_path / "d", {0: "x"})
    body = client.get("/api/labels/turned.jpg").json()
    assert (body["width"], body["height"]) == (20, 40)
    assert Image.open(io.BytesIO(client.get("/api/pixels/turned.jpg").content)).size == (20, 40)


def test_images_are_served_scaled_to_1280_px(split):
    client, _ = _client(split, {0: "cat", 1: "dog"})
    response = client.get("/api/pixels/big.png")
    assert response.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(response.content)).size == (1280, 427)  # 1000 * 1280 / 3000 = 426.7
    assert client.get("/api/labels/big.png").json()["width"] == 3000


def test_accept_writes_a_yolo_label_file_a_link_and_a_log_line(split):
    client, reviewed = _client(split, {0: "cat", 1: "dog"})
    box = {"cls": 1, "cx": 0.5, "cy": 0.4, "w": 0.25, "h": 0.5}
    response = client.put("/api/labels/a.png", json={"action": "accept", "boxes": [box]})
    assert response.status_code == 200, response.text
    assert response.json()["action"] == "edit"  # class 0 became 1
    assert (reviewed / "labels" / "a.txt").read_text() == "1 0.500000 0.400000 0.250000 0.500000\n"
    assert (reviewed / "images" / "a.png").resolve() == (split / "images" / "a.png").resolve()
    (entry,) = [json.loads(line) for line in (reviewed / "review_log.jsonl").read_text().splitlines()]
    assert (entry["image"], entry["action"], entry["user"]) == ("a.png", "edit", "tester")
    assert entry["before"] == [[0, 0.5, 0.5, 0.25, 0.5]] and entry["after"] == [[1, 0.5, 0.4, 0.25, 0.5]]
    assert entry["time"].endswith("Z")
    again = client.get("/api/labels/a.png").json()
    assert again["reviewed"] and again["boxes"][0]["cls"] == 1


def test_accepting_the_proposal_unchanged_is_logged_as_accept(split):
    client, reviewed = _client(split, {0: "cat", 1: "dog"})
    boxes = [{k: b[k] for k in ("cls", "cx", "cy", "w", "h")} for b in client.get("/api/labels/a.png").json()["boxes"]]
    assert client.put("/api/labels/a.png", json={"action": "accept", "boxes": boxes}).json()["action"] == "accept"
    assert (reviewed / "labels" / "a.txt").read_text() == "0 0.500000 0.500000 0.250000 0.500000\n"


def test_rejecting_a_box_writes_the_others(split):
    client, reviewed = _client(split, {0: "cat", 1: "dog"})
    first, _ = client.get("/api/labels/b.png").json()["boxes"]
    kept = {k: first[k] for k in ("cls", "cx", "cy", "w", "h")}
    assert client.put("/api/labels/b.png", json={"action": "accept", "boxes": [kept]}).status_code == 200
    assert (reviewed / "labels" / "b.txt").read_text() == "0 0.250000 0.250000 0.200000 0.200000\n"
    entry = json.loads((reviewed / "review_log.jsonl").read_text())
    assert (len(entry["before"]), len(entry["after"])) == (2, 1)


def test_no_objects_writes_an_empty_label_file(split):
    client, reviewed = _client(split, {0: "cat", 1: "dog"})
    assert client.put("/api/labels/b.png", json={"action": "no_objects"}).json()["action"] == "no_objects"
    assert (reviewed / "labels" / "b.txt").read_text() == ""
    assert reviewed_images(reviewed) == [reviewed / "images" / "b.png"]


def test_a_reviewed_image_goes_to_the_end_of_the_list(split):
    client, _ = _client(split, {0: "cat", 1: "dog"})
    client.put("/api/labels/b.png", json={"action": "no_objects"})
    listing = client.get("/api/images").json()["images"]
    assert listing[-1]["name"] == "b.png" and listing[-1]["reviewed"]
    assert not any(i["reviewed"] for i in listing[:-1])


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/api/labels/..%2F..%2Fetc%2Fpasswd", 400),
        ("/api/labels/%2Fetc%2Fpasswd", 400),
        ("/api/pixels/images%2F..%2F..%2Fdata.yaml", 400),
        ("/api/labels/a.png%00.txt", 400),
        ("/api/labels/out/inside.png", 404),  # under a folder link that leaves the image folder
        ("/api/pixels/secret.png", 404),  # a file link to something that is not an image
        ("/api/labels/nothere.png", 404),
    ],
)
def test_names_outside_the_served_images_are_refused(split, tmp_path, url, status):
    _image(tmp_path / "outside" / "inside.png")
    os.symlink(tmp_path / "outside", split / "images" / "out")
    (tmp_path / "secret.txt").write_text("do not serve")
    os.symlink(tmp_path / "secret.txt", split / "images" / "secret.png")
    client, _ = _client(split, {0: "cat", 1: "dog"})
    assert client.get(url).status_code == status
    before = _snapshot(tmp_path)
    body = {"action": "accept", "boxes": [{"cls": 0, "cx": 0.5, "cy": 0.5, "w": 0.1, "h": 0.1}]}
    response = client.put(url.replace("/api/pixels/", "/api/labels/"), json=body)
    assert response.status_code == status and response.json()["detail"]
    assert _snapshot(tmp_path) == before
    assert sorted(i["name"] for i in client.get("/api/images").json()["images"]) == [
        "a.png",
        "b.png",
        "big.png",
        "c.png",
    ]


GOOD_BOX = {"cls": 0, "cx": 0.5, "cy": 0.5, "w": 0.2, "h": 0.2}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"action": "accept", "boxes": [{**GOOD_BOX, "cls": 2}]}, "boxes.0.cls: class 2 out of range: 2 classes"),
        ({"action": "accept", "boxes": [{**GOOD_BOX, "cls": -1}]}, "boxes.0.cls"),
        ({"action": "accept", "boxes": [{**GOOD_BOX, "cls": "1"}]}, "boxes.0.cls"),
        ({"action": "accept", "boxes": [{**GOOD_BOX, "cx": 1.5}]}, "boxes.0.cx: Input should be less than or equal"),
        ({"action": "accept", "boxes": [GOOD_BOX, {**GOOD_BOX, "w": 0}]}, "boxes.1.w: Input should be greater than 0"),
        ({"action": "accept", "boxes": [{**GOOD_BOX, "h": -0.1}]}, "boxes.0.h"),
        (
            {"action": "accept", "boxes": [{k: v for k, v in GOOD_BOX.items() if k != "cy"}]},
            "boxes.0.cy: Field required",
        ),
        ({"action": "accept", "boxes": [{**GOOD_BOX, "score": 0.9}]}, "boxes.0.score: Extra inputs"),
        (
            {"action": "accept", "boxes": [GOOD_BOX] * (MAX_BOXES + 1)},
            f"boxes: List should have at most {MAX_BOXES} items",
        ),
        ({"action": "delete_everything", "boxes": []}, "action: Input should be 'accept' or 'no_objects'"),
        ({"action": "no_objects", "boxes": [GOOD_BOX]}, "action 'no_objects' takes no boxes"),
        ({"boxes": []}, "action: Field required"),
    ],
)
def test_malformed_bodies_are_refused_and_change_nothing(split, body, message):
    client, reviewed = _client(split, {0: "cat", 1: "dog"})
    before = _snapshot(split)
    response = client.put("/api/labels/a.png", json=body)
    assert response.status_code == 422
    assert message in response.json()["detail"]
    assert _snapshot(split) == before and not reviewed.exists()


@pytest.mark.parametrize("raw", [b"{not json", b'{"action": "accept", "boxes": [{"cls": 0, "cx": NaN}]}'])
def test_unparsable_bodies_are_refused_and_change_nothing(split, raw):
    client, reviewed = _client(split, {0: "cat", 1: "dog"})
    response = client.put("/api/labels/a.png", content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 422 and response.json()["detail"]
    assert not reviewed.exists()


def test_a_crash_in_the_rename_keeps_the_previous_label_file_and_leaves_no_temporary_file(split, monkeypatch):
    client, reviewed = _client(split, {0: "cat", 1: "dog"})
    first = {"action": "accept", "boxes": [GOOD_BOX]}
    assert client.put("/api/labels/a.png", json=first).status_code == 200
    label = reviewed / "labels" / "a.txt"
    written = label.read_text()

    def crash(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    second = {"action": "accept", "boxes": [{**GOOD_BOX, "cls": 1, "cx": 0.3}]}
    response = client.put("/api/labels/a.png", json=second)
    assert response.status_code == 500
    assert "could not write" in response.json()["detail"] and "No space left" in response.json()["detail"]
    assert label.read_text() == written == "0 0.500000 0.500000 0.200000 0.200000\n"
    assert sorted(p.name for p in (reviewed / "labels").iterdir()) == ["a.txt"]
    assert len((reviewed / "review_log.jsonl").read_text().splitlines()) == 1  # the failed write is not logged


def test_a_server_for_loopback_refuses_other_host_headers(split):
    client, _ = _client(split, {0: "cat", 1: "dog"}, allowed_hosts=allowed_hosts("127.0.0.1"))
    assert client.get("/api/info", headers={"Host": "127.0.0.1:8765"}).status_code == 200
    assert client.get("/api/info", headers={"Host": "attacker.example:8765"}).status_code == 400


def test_another_address_than_loopback_prints_a_warning(split, monkeypatch):
    import socket

    import uvicorn

    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: None)
    loopback = socket.create_server(("127.0.0.1", 0))  # nothing is bound on every interface by the test
    monkeypatch.setattr("semiyolo.review.server.bind", lambda host, port: loopback)
    out = io.StringIO()
    client, _ = _client(split, {0: "cat", 1: "dog"})
    with loopback:
        serve(client.app, "0.0.0.0", 0, out=out)
    assert "warning: serving on 0.0.0.0" in out.getvalue()
    assert (is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("0.0.0.0")) == (True, True, False)


# --- the order: the expected number of wrong boxes -------------------------------------------------------------


@pytest.fixture
def pseudo_output(tmp_path):
    """A hand-built 'semiyolo pseudo-label' output: images linked to a source folder, labels, manifest scores."""
    source, out = tmp_path / "unlabeled", tmp_path / "pseudo"
    rows = {
        "confident": [(0, 0.2, 0.2, 0.2, 0.2, 0.95), (0, 0.7, 0.7, 0.2, 0.2, 0.9)],
        "hesitant": [(0, 0.5, 0.5, 0.4, 0.4, 0.6), (1, 0.5, 0.5, 0.4, 0.4, 0.55)],
        "lowscore": [(1, 0.5, 0.5, 0.2, 0.2, 0.3)],
        "many": [(0, 0.15, 0.5, 0.1, 0.1, 0.6), (0, 0.5, 0.5, 0.1, 0.1, 0.6), (0, 0.85, 0.5, 0.1, 0.1, 0.6)],
        "empty": [],
    }
    manifest = []
    for stem, boxes in rows.items():
        original = _image(source / f"{stem}.png")
        flat = f"{stem}_png.png"  # the writer's flat name
        (out / "images").mkdir(parents=True, exist_ok=True)
        os.symlink(original, out / "images" / flat)
        _labels(out / "labels" / f"{stem}_png.txt", "".join(f"{c} {x} {y} {w} {h}\n" for c, x, y, w, h, _ in boxes))
        manifest.append({"image": str(original), "classes": [b[0] for b in boxes], "scores": [b[5] for b in boxes]})
    (out / "manifest.jsonl").write_text("".join(json.dumps(m) + "\n" for m in manifest))
    (out / "summary.json").write_text(json.dumps({"images": 5, "pseudo_labels": 8, "names": {"0": "ok", "1": "ko"}}))
    return out


def test_the_list_puts_the_expected_number_of_wrong_boxes_first(pseudo_output):
    client, _ = _client(pseudo_output)
    listing = client.get("/api/images").json()["images"]
    # hesitant: two classes on one box (IoU 1): 1 - (0.6 - 0.55) = 0.95 and 1 - (0.55 - 0.6) = 1.05 -> 1; sum 1.95
    # many: 3 x (1 - 0.6) = 1.2; lowscore: 1 - 0.3 = 0.7; confident: 0.05 + 0.1 = 0.15; empty: 0
    assert [(i["name"], i["worth"]) for i in listing] == [
        ("hesitant_png.png", pytest.approx(1.95)),
        ("many_png.png", pytest.approx(1.2)),
        ("lowscore_png.png", pytest.approx(0.7)),
        ("confident_png.png", pytest.approx(0.15)),
        ("empty_png.png", 0.0),
    ]
    assert client.get("/api/info").json()["names"] == ["ok", "ko"]
    boxes = client.get("/api/labels/hesitant_png.png").json()["boxes"]
    assert [(b["score"], b["doubt"]) for b in boxes] == [(0.6, pytest.approx(0.95)), (0.55, 1.0)]


def test_the_doubt_of_boxes_without_scores_and_with_dfl_entropy():
    same = [ScoredBox(0, 0.5, 0.5, 0.4, 0.4), ScoredBox(0, 0.52, 0.5, 0.4, 0.4), ScoredBox(1, 0.1, 0.1, 0.1, 0.1)]
    assert box_doubts(same) == [0.5, 0.5, 0.0]  # IoU of the first two: 0.38 * 0.4 / (2 * 0.16 - 0.152) = 0.905
    assert image_worth([ScoredBox(0, 0.5, 0.5, 0.2, 0.2, score=0.9, entropy=0.6)]) == pytest.approx(0.6)
    assert image_worth([ScoredBox(0, 0.5, 0.5, 0.2, 0.2, score=0.9, second=0.7, entropy=0.1)]) == pytest.approx(0.8)


def test_scores_are_left_out_when_the_manifest_does_not_match_the_label_rows(pseudo_output):
    _labels(pseudo_output / "labels" / "lowscore_png.txt", "1 0.5 0.5 0.2 0.2\n0 0.1 0.1 0.1 0.1\n")
    client, _ = _client(pseudo_output)
    body = client.get("/api/labels/lowscore_png.png").json()
    assert [b["score"] for b in body["boxes"]] == [None, None]
    assert "1 scores in manifest.jsonl for 2 label rows" in body["note"]


# --- the reviewed folder, as online training reads it ---------------------------------------------------------


def test_reviewed_images_lists_only_images_whose_label_file_is_written(tmp_path):
    folder = tmp_path / "reviewed"
    assert reviewed_images(folder) == []
    store = ReviewStore(folder, user="tester")
    originals = [_image(tmp_path / "src" / f"{n}.png") for n in ("x", "y", "z")]
    store.save("x.png", originals[0], [[0, 0.5, 0.5, 0.2, 0.2]], "accept", [])
    store.save("sub/z.png", originals[2], [], "no_objects", [])
    os.symlink(originals[1], folder / "images" / "y.png")  # linked, but its label was never written (a crash)
    (folder / "labels" / ".y.txt.123.abcd.part").write_text("0 0.5 0.5 0.2 0.2\n")
    assert reviewed_images(folder) == [folder / "images" / "sub" / "z.png", folder / "images" / "x.png"]
    assert [p.resolve() for p in reviewed_images(folder)] == [originals[2].resolve(), originals[0].resolve()]
    assert (folder / "labels" / "sub" / "z.txt").read_text() == ""


# --- an online run: its unlabeled images labelled on demand by its checkpoint ----------------------------------


def _detector(class_bias: float):
    """An untrained YOLOv8n for 2 classes whose every anchor scores sigmoid(class_bias) for both classes."""
    from ultralytics.nn.tasks import DetectionModel

    model = DetectionModel("yolov8n.yaml", nc=2, verbose=False)
    for branch in model.model[-1].cv3:
        branch[-1].bias.data.fill_(class_bias)
    model.names = {0: "a", 1: "b"}
    return model


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    """A run folder (weights/last.pt, args.yaml, summary.json with its semi settings) and 3 unlabeled images."""
    import torch

    root = tmp_path_factory.mktemp("review_run")
    for i in range(3):
        _image(root / "unlabeled" / f"u{i}.png", size=(64, 48), colour=(30 * i, 80, 160))
    run = root / "run"
    (run / "weights").mkdir(parents=True)
    torch.save({"model": _detector(3.0).half(), "train_args": {"imgsz": 64}}, run / "weights" / "last.pt")
    (run / "args.yaml").write_text(yaml.safe_dump({"imgsz": 64}))
    semi = {
        "mode": "online",
        "unlabeled": str(root / "unlabeled"),
        "filters": [{"name": "score", "params": {"threshold": 0.5}}, {"name": "cap", "params": {"max_per_image": 2}}],
    }
    (run / "summary.json").write_text(json.dumps({"semi": semi}))
    return run


def _run_client(run: Path, state=None) -> TestClient:
    from semiyolo.integrations.ultralytics.review_source import RunSource, run_semi_settings

    semi = run_semi_settings(run, None, state)
    source = RunSource(run, semi, run / "reviewed", state)
    return TestClient(create_app(source, ReviewStore(run / "reviewed", user="tester")))


def test_a_run_labels_an_image_on_demand_with_the_filters_verdicts(run_folder):
    client = _run_client(run_folder)
    info = client.get("/api/info").json()
    assert (info["kind"], info["names"], info["images"]) == ("run", ["a", "b"], 3)
    body = client.get("/api/labels/u1.png").json()
    assert len(body["boxes"]) == 2  # cap: 2 of the candidates, all above the score threshold
    assert all(b["score"] == pytest.approx(0.95257, abs=1e-4) for b in body["boxes"])  # sigmoid(3)
    assert all(0 <= b["entropy"] <= 1 for b in body["boxes"])
    assert body["dropped"] and {b["dropped_by"] for b in body["dropped"]} == {"cap"}
    # the rule on what the page shows: each box's doubt is max(1 - score, entropy) (one class, no rival)
    expected = sum(min(max(1 - b["score"], b["entropy"]), 1) for b in body["boxes"])
    assert body["worth"] == pytest.approx(expected, abs=1e-4)


def test_a_run_labels_the_rest_in_the_background_for_the_order(run_folder):
    import time

    client = _run_client(run_folder)
    deadline = time.monotonic() + 120
    while (listing := client.get("/api/images").json())["pending"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert listing["pending"] == 0
    assert [i["boxes"] for i in listing["images"]] == [2, 2, 2]


def test_a_run_with_a_teacher_state_labels_with_the_teacher(run_folder):
    from semiyolo.pseudo import build_filters

    chain = build_filters([{"name": "score", "params": {"threshold": 0.5}}], num_classes=2, has_dfl=True)
    semi = {"mode": "online", "unlabeled": str(run_folder.parent / "unlabeled"), "filters": [{"name": "score"}]}
    state = {"epoch": 3, "teacher": _detector(-3.0).state_dict(), "filters": chain.state_dict(), "semi": semi}
    client = _run_client(run_folder, state)
    body = client.get("/api/labels/u0.png").json()
    assert body["boxes"] == [] and body["dropped"] == []  # sigmoid(-3) = 0.047: no candidate above 0.1


def test_review_of_a_run_without_its_settings_asks_for_the_config(run_folder, tmp_path, capsys):
    import shutil

    from semiyolo.cli import main

    bare = tmp_path / "bare"
    shutil.copytree(run_folder / "weights", bare / "weights")
    assert main(["review", str(bare)]) == 2
    assert "pass --config with the run's config file" in capsys.readouterr().err


def test_the_review_core_imports_without_ultralytics():
    import subprocess
    import sys

    modules = "semiyolo.review, semiyolo.review.app, semiyolo.review.server, semiyolo.review.sources"
    code = f"import sys, {modules}; sys.exit('ultralytics' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_review_of_a_missing_folder_is_one_line_naming_it(tmp_path, capsys):
    from semiyolo.cli import main

    assert main(["review", str(tmp_path / "nothere")]) == 2
    assert capsys.readouterr().err.strip() == f"semiyolo review: error: SOURCE: {tmp_path / 'nothere'} is not a folder"


def test_review_with_names_of_the_wrong_file_names_the_file(split, tmp_path, capsys):
    from semiyolo.cli import main

    (tmp_path / "bad.yaml").write_text("train: images\n")
    assert main(["review", str(split), "--names", str(tmp_path / "bad.yaml")]) == 2
    assert f"--names: {tmp_path / 'bad.yaml'} has no 'names' key" in capsys.readouterr().err


def test_review_answers_help_with_its_options(capsys):
    from semiyolo.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["review", "--help"])
    assert exit_info.value.code == 0
    shown = capsys.readouterr().out
    assert all(option in shown for option in ("SOURCE", "--host", "--port", "--reviewed", "--names", "--config"))


def test_teacher_student_disagreement_by_hand():
    from semiyolo.review import ScoredBox, box_doubts, image_worth

    confirmed = ScoredBox(0, 0.5, 0.5, 0.2, 0.2, score=0.9, student_agrees=True)
    unconfirmed = ScoredBox(1, 0.2, 0.2, 0.1, 0.1, score=0.9, student_agrees=False)
    # 1 - 0.9 = 0.1 each; the box the student does not confirm is worth at least 0.5; 3 student-only boxes add 1.5
    assert box_doubts([confirmed, unconfirmed]) == pytest.approx([0.1, 0.5])
    assert image_worth([confirmed, unconfirmed], student_only=3) == pytest.approx(0.1 + 0.5 + 1.5)


def test_a_run_with_a_teacher_orders_by_what_the_student_sees_that_it_does_not(run_folder):
    from semiyolo.pseudo import build_filters

    student = _run_client(run_folder).get("/api/labels/u0.png").json()["boxes"]  # no teacher state: last.pt labels
    filters = [{"name": "score", "params": {"threshold": 0.5}}, {"name": "cap", "params": {"max_per_image": 2}}]
    chain = build_filters(filters, num_classes=2, has_dfl=True)  # the run's own filters, as in its summary.json
    semi = {"mode": "online", "unlabeled": str(run_folder.parent / "unlabeled"), "filters": filters}
    state = {"epoch": 3, "teacher": _detector(-3.0).state_dict(), "filters": chain.state_dict(), "semi": semi}
    client = _run_client(run_folder, state)
    assert client.get("/api/labels/u0.png").json()["boxes"] == []  # the teacher sees nothing
    worth = {
        row["name"]: row["worth"] for row in client.get("/api/images").json()["images"] if row["worth"] is not None
    }
    # every box the student (last.pt, confident everywhere) keeps is a disagreement worth 0.5
    assert student and worth["u0.png"] == pytest.approx(0.5 * len(student))
