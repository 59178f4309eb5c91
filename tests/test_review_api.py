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
    assert info["order"] == "expected wrong boxes, scores as they are"  # its args.yaml names no dataset
    body = client.get("/api/labels/u1.png").json()
    assert len(body["boxes"]) == 2  # cap: 2 of the candidates, all above the score threshold
    assert all(b["score"] == pytest.approx(0.95257, abs=1e-4) for b in body["boxes"])  # sigmoid(3)
    assert all(0 <= b["entropy"] <= 1 for b in body["boxes"])
    assert body["dropped"] and {b["dropped_by"] for b in body["dropped"]} == {"cap"}
    # the rule on what the page shows: each box's doubt is max(1 - score, entropy) (one class, no rival)
    expected = sum(min(max(1 - b["score"], b["entropy"]), 1) for b in body["boxes"])
    assert body["worth"] == pytest.approx(expected, abs=1e-4)


def _listed(client: TestClient) -> dict:
    """``GET /api/images`` once the run's background thread has labelled every image (2 minutes at most)."""
    import time

    deadline = time.monotonic() + 120
    while (listing := client.get("/api/images").json())["pending"] and time.monotonic() < deadline:
        time.sleep(0.2)
    return listing


def test_a_run_labels_the_rest_in_the_background_for_the_order(run_folder):
    listing = _listed(_run_client(run_folder))
    assert listing["pending"] == 0
    assert [i["boxes"] for i in listing["images"]] == [2, 2, 2]


def test_a_run_whose_dataset_has_labelled_validation_images_orders_by_the_calibrated_worth(
    run_folder, tmp_path, monkeypatch
):
    import shutil
    import threading

    from ultralytics.utils import LOGGER

    from semiyolo.integrations.ultralytics.review_source import RunSource, run_semi_settings
    from semiyolo.review.calibration import possible_misses
    from semiyolo.review.doubt import image_worth

    run = tmp_path / "run"
    shutil.copytree(run_folder, run)
    data = tmp_path / "data"
    for i in range(2):  # two validation images with empty label files: no objects, so every kept box is spurious
        _image(data / "images" / "val" / f"v{i}.png", size=(64, 48), colour=(10, 200, 60 * i))
        _labels(data / "labels" / "val" / f"v{i}.txt", "")
    _image(data / "images" / "val" / "v2.png", size=(64, 48), colour=(10, 20, 30))  # its label cannot be read
    _labels(data / "labels" / "val" / "v2.txt", "0 0.5 0.5 not-a-number 0.1\n")
    said = []
    monkeypatch.setattr(LOGGER, "warning", lambda message, *args, **kwargs: said.append(str(message)))
    names = {0: "a", 1: "b"}
    (data / "data.yaml").write_text(yaml.safe_dump({"path": str(data), "val": "images/val", "names": names}))
    (run / "args.yaml").write_text(yaml.safe_dump({"imgsz": 64, "data": str(data / "data.yaml")}))
    source = RunSource(run, run_semi_settings(run, None, None), run / "reviewed")
    early = source.proposal("u1.png")  # labelled before the rates are measured: the uncalibrated worth
    assert source.rates is None and "calibrating the scores on 3 labelled" in source.order_note()
    assert early.worth == pytest.approx(image_worth(early.boxes, early.student_only))
    source.calibrate()
    rates = source.rates
    # the cap keeps 2 boxes an image, each scored sigmoid(3) = 0.953 (the last kept bin, middle 0.975): 0 hits of 4
    # -> (0 + 2 x 0.975) / (4 + 2) = 0.325; the other bins read their middle score
    assert (rates.images, rates.kept_boxes) == (2, 4)  # v2 left out, and the warning says of what
    assert [m for m in said if "v2.txt" in m] and all("review order's calibration" in m for m in said if "v2" in m)
    assert rates.kept.tolist() == pytest.approx([0.55, 0.65, 0.75, 0.85, 0.925, 0.325])
    # this detector puts every candidate where the kept boxes are, so none is a possible miss (their rates are
    # tested on hand-built boxes in test_review_yield.py)
    proposal = source.proposal("u1.png")  # the same proposal, scored again with the rates
    assert rates.candidate_boxes == 0 and possible_misses(proposal.boxes, proposal.dropped) == []
    assert proposal is early and proposal.worth == pytest.approx(2 * (1 - 0.325), abs=1e-5)
    assert "calibrated on 2 labelled validation images" in source.describe()
    info = TestClient(create_app(source, ReviewStore(run / "reviewed", user="tester"))).get("/api/info").json()
    assert info["order"] == "expected wrong boxes, scores calibrated on 2 labelled validation images"
    # the page: usable at once while the background thread calibrates (held here until released), the list
    # pending until the rates are in, then filled in the calibrated order, the listing saying which rule
    fresh = RunSource(run, run_semi_settings(run, None, None), run / "reviewed")
    release, measure = threading.Event(), fresh._measure_rates
    fresh._measure_rates = lambda images: release.wait(60) and measure(images)
    client = TestClient(create_app(fresh, ReviewStore(run / "reviewed", user="tester")))
    during = client.get("/api/images").json()  # starts the background thread, which waits on the release
    assert during["pending"] == 3 and all(i["pending"] for i in during["images"])
    assert "calibrating the scores" in during["order"] == client.get("/api/info").json()["order"]
    assert len(client.get("/api/labels/u1.png").json()["boxes"]) == 2  # an image opens meanwhile, labelled on demand
    assert client.get("/api/images").json()["pending"] == 3  # still calibrating: the page keeps asking
    release.set()
    listing = _listed(client)
    worths = [i["worth"] for i in listing["images"]]
    assert listing["order"] == info["order"] and worths == pytest.approx([2 * (1 - 0.325)] * 3, abs=1e-3)
    # without labelled validation images the order is the uncalibrated one and the page says so
    assert "not calibrated" in RunSource(run_folder, run_semi_settings(run_folder, None, None), run / "r").describe()


def test_a_run_with_a_teacher_state_labels_with_the_teacher(run_folder):
    from semiyolo.pseudo import build_filters

    chain = build_filters([{"name": "score", "params": {"threshold": 0.5}}], num_classes=2, has_dfl=True)
    semi = {"mode": "online", "unlabeled": str(run_folder.parent / "unlabeled"), "filters": [{"name": "score"}]}
    teacher = {"teacher": _detector(-3.0).state_dict(), "filters": chain.state_dict()}
    state = {"epoch": 3, "mean_teacher": teacher, "semi": semi}  # the online trainer's semi_state.pt
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
    teacher = {"teacher": _detector(-3.0).state_dict(), "filters": chain.state_dict()}
    state = {"epoch": 3, "mean_teacher": teacher, "semi": semi}  # the online trainer's semi_state.pt
    client = _run_client(run_folder, state)
    assert client.get("/api/labels/u0.png").json()["boxes"] == []  # the teacher sees nothing
    worth = {
        row["name"]: row["worth"] for row in client.get("/api/images").json()["images"] if row["worth"] is not None
    }
    # every box the student (last.pt, confident everywhere) keeps is a disagreement worth 0.5
    assert student and worth["u0.png"] == pytest.approx(0.5 * len(student))


# --- faults: a full disk, stale pages, hostile pages and odd input (issue 27) ---------------------------------

CAT_DOG = {0: "cat", 1: "dog"}


def _log_entries(reviewed: Path) -> list[dict]:
    text = (reviewed / "review_log.jsonl").read_text()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def test_a_full_disk_while_logging_leaves_the_label_file_and_the_log_as_they_were(split, monkeypatch):
    import errno

    client, reviewed = _client(split, CAT_DOG)
    assert client.put("/api/labels/a.png", json={"action": "accept", "boxes": [GOOD_BOX]}).status_code == 200
    label, log = reviewed / "labels" / "a.txt", reviewed / "review_log.jsonl"
    written, logged = label.read_bytes(), log.read_bytes()
    real_write = os.write

    def half_a_line_then_full(fd, data):
        if bytes(data).startswith(b'{"image"'):
            real_write(fd, bytes(data)[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", half_a_line_then_full)
    relabel = {"action": "accept", "boxes": [{**GOOD_BOX, "cls": 1}]}
    response = client.put("/api/labels/a.png", json=relabel)
    assert response.status_code == 500 and "No space left on device" in response.json()["detail"]
    first_time = client.put("/api/labels/b.png", json={"action": "no_objects"})
    assert first_time.status_code == 500
    assert label.read_bytes() == written and log.read_bytes() == logged
    assert not (reviewed / "labels" / "b.txt").exists() and reviewed_images(reviewed) == [reviewed / "images" / "a.png"]
    monkeypatch.undo()
    assert client.put("/api/labels/a.png", json=relabel).status_code == 200
    first, second = _log_entries(reviewed)
    assert second["before"] == first["after"] == [[0, 0.5, 0.5, 0.2, 0.2]]
    assert second["after"] == [[1, 0.5, 0.5, 0.2, 0.2]]


def test_a_save_from_a_stale_page_is_a_409_showing_both_versions_and_writes_nothing(split):
    client, reviewed = _client(split, CAT_DOG)
    first_tab = client.get("/api/labels/a.png").json()
    second_tab = client.get("/api/labels/a.png").json()
    assert first_tab["version"] == second_tab["version"] == "none"  # not reviewed yet
    saved = client.put("/api/labels/a.png", json={"action": "accept", "boxes": [GOOD_BOX], "version": "none"})
    assert saved.status_code == 200 and saved.json()["version"] != "none"
    label = reviewed / "labels" / "a.txt"
    written = label.read_text()
    stale = {"action": "accept", "boxes": [{**GOOD_BOX, "cls": 1}], "version": second_tab["version"]}
    conflict = client.put("/api/labels/a.png", json=stale)
    assert conflict.status_code == 409
    body = conflict.json()
    assert "changed since this page read it" in body["detail"]
    assert (body["sent"], body["version"]) == ("none", saved.json()["version"])
    assert body["version"] == client.get("/api/labels/a.png").json()["version"]
    assert [[b["cls"], b["cx"], b["cy"], b["w"], b["h"]] for b in body["boxes"]] == [[0, 0.5, 0.5, 0.2, 0.2]]
    assert label.read_text() == written and len(_log_entries(reviewed)) == 1
    label.write_text("1 0.1 0.1 0.1 0.1\n")  # another program changes the file
    changed = client.put("/api/labels/a.png", json={**stale, "version": body["version"]})
    assert changed.status_code == 409 and label.read_text() == "1 0.1 0.1 0.1 0.1\n"
    # told so, the person saves their draft over the file's version on purpose
    assert client.put("/api/labels/a.png", json={**stale, "version": changed.json()["version"]}).status_code == 200
    assert label.read_text() == "1 0.500000 0.500000 0.200000 0.200000\n"
    assert _log_entries(reviewed)[-1]["before"] == [[1, 0.1, 0.1, 0.1, 0.1]]


def test_concurrent_saves_log_each_before_as_the_previous_after(split, monkeypatch):
    import time
    from concurrent.futures import ThreadPoolExecutor

    import semiyolo.review.store as store_module

    client, reviewed = _client(split, CAT_DOG)
    real_write_label = store_module.write_label_file

    def slow_write_label(path, rows):
        time.sleep(0.005)  # widens the window between reading `before` and writing
        real_write_label(path, rows)

    monkeypatch.setattr(store_module, "write_label_file", slow_write_label)
    boxes = [{**GOOD_BOX, "cx": round(0.3 + 0.01 * i, 2)} for i in range(24)]
    with ThreadPoolExecutor(8) as pool:
        statuses = list(
            pool.map(lambda box: client.put("/api/labels/a.png", json={"action": "accept", "boxes": [box]}), boxes)
        )
    assert [s.status_code for s in statuses] == [200] * 24
    entries = _log_entries(reviewed)
    assert len(entries) == 24 and entries[0]["before"] == [[0, 0.5, 0.5, 0.25, 0.5]]  # the proposal
    assert [e["before"] for e in entries[1:]] == [e["after"] for e in entries[:-1]]
    cls, cx, cy, w, h = entries[-1]["after"][0]
    assert (reviewed / "labels" / "a.txt").read_text() == f"{cls} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}\n"


@pytest.mark.parametrize(
    ("host", "header", "status"),
    [
        ("0.0.0.0", "evil.example:8765", 400),  # a page that rebinds evil.example to this machine
        ("0.0.0.0", "localhost:8765", 200),
        ("0.0.0.0", "HOSTNAME:8765", 200),
        ("0.0.0.0", "192.0.2.7:8765", 200),  # an address, never a rebound name
        ("::", "[::1]:8765", 200),
        ("::", "evil.example", 400),
        ("::1", "[::1]:8765", 200),
        ("::1", "evil.example:8765", 400),
        ("127.0.0.2", "127.0.0.2:8765", 200),
        ("127.0.0.2", "evil.example:8765", 400),
        ("localhost", "localhost:8765", 200),
        ("review.lab.example", "review.lab.example:8765", 200),
        ("review.lab.example", "evil.example:8765", 400),
    ],
)
def test_every_server_checks_the_host_header_against_the_names_it_serves(split, host, header, status):
    import socket

    client, _ = _client(split, CAT_DOG, allowed_hosts=allowed_hosts(host))
    response = client.get("/api/info", headers={"Host": header.replace("HOSTNAME", socket.gethostname())})
    assert response.status_code == status
    if status == 400:
        assert "evil.example" in response.json()["detail"]


def test_every_loopback_address_is_loopback():
    assert all(is_loopback(host) for host in ("127.0.0.1", "127.0.0.2", "::1", "localhost", "LOCALHOST"))
    assert not any(is_loopback(host) for host in ("0.0.0.0", "::", "192.0.2.7", "review.lab.example"))


def test_the_warning_for_every_interface_speaks_of_dns_rebinding(split, monkeypatch):
    import socket

    import uvicorn

    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: None)
    loopback = socket.create_server(("127.0.0.1", 0))
    monkeypatch.setattr("semiyolo.review.server.bind", lambda host, port: loopback)
    out = io.StringIO()
    client, _ = _client(split, CAT_DOG)
    with loopback:
        serve(client.app, "0.0.0.0", 0, out=out)
    assert "DNS rebinding" in out.getvalue()


def test_images_may_not_be_embedded_by_other_sites(split):
    client, _ = _client(split, CAT_DOG)
    assert client.get("/api/pixels/a.png").headers["Cross-Origin-Resource-Policy"] == "same-origin"
    assert client.get("/api/labels/a.png").headers["Cross-Origin-Resource-Policy"] == "same-origin"


def test_a_body_over_the_limit_is_refused_before_it_is_read(split):
    from semiyolo.review.app import MAX_BODY_BYTES

    client, reviewed = _client(split, CAT_DOG)
    padding = "x" * MAX_BODY_BYTES
    big = json.dumps({"action": "accept", "boxes": [], "padding": padding}).encode()
    response = client.put("/api/labels/a.png", content=big, headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and "1048576 bytes" in response.json()["detail"]
    halves = iter([big[: len(big) // 2], big[len(big) // 2 :]])  # no Content-Length: counted as it arrives
    chunked = client.put("/api/labels/a.png", content=halves, headers={"Content-Type": "application/json"})
    assert chunked.status_code == 413
    assert not reviewed.exists()


def test_a_refused_body_is_not_echoed_back(split):
    client, _ = _client(split, CAT_DOG)
    huge = "k" * 100_000
    response = client.put("/api/labels/a.png", json={"action": huge, "boxes": [{**GOOD_BOX, huge: huge}]})
    assert response.status_code == 422
    assert len(response.text) < 1000 and "action: Input should be 'accept' or 'no_objects'" in response.text


def test_malformed_json_says_the_body_is_not_json_and_where(split):
    client, _ = _client(split, CAT_DOG)
    response = client.put("/api/labels/a.png", content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json()["detail"] == (
        "body: not valid JSON: Expecting property name enclosed in double quotes at character 1"
    )


def test_an_image_over_the_decompression_bomb_limit_is_answered_like_a_bad_image(split, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # a.png's 800 pixels are over twice that
    client, _ = _client(split, CAT_DOG)
    pixels = client.get("/api/pixels/a.png")
    assert pixels.status_code == 422
    assert pixels.json()["detail"].startswith("cannot decode image 'a.png': too many pixels to decode safely")
    labels = client.get("/api/labels/a.png")
    assert labels.status_code == 200
    assert labels.json()["error"].startswith("cannot decode image 'a.png': too many pixels to decode safely")


def test_a_box_reaching_outside_the_image_is_clipped_to_it(split):
    client, reviewed = _client(split, CAT_DOG)
    outside = {"cls": 0, "cx": 0.99, "cy": 0.5, "w": 1.0, "h": 0.2}
    response = client.put("/api/labels/a.png", json={"action": "accept", "boxes": [outside, GOOD_BOX]})
    assert response.status_code == 200 and response.json()["clipped"] == 1
    # x from 0.49 to 1.49, clipped to 0.49 to 1: cx 0.745, w 0.51
    assert (reviewed / "labels" / "a.txt").read_text() == (
        "0 0.745000 0.500000 0.510000 0.200000\n0 0.500000 0.500000 0.200000 0.200000\n"
    )


def test_a_proposal_reaching_outside_the_image_can_be_accepted_as_loaded(split):
    _labels(split / "labels" / "a.txt", "0 0.99 0.5 1.0 0.2\n")
    client, reviewed = _client(split, CAT_DOG)
    loaded = client.get("/api/labels/a.png").json()
    boxes = [{k: b[k] for k in ("cls", "cx", "cy", "w", "h")} for b in loaded["boxes"]]
    response = client.put("/api/labels/a.png", json={"action": "accept", "boxes": boxes, "version": loaded["version"]})
    assert response.status_code == 200 and response.json()["clipped"] == 1
    assert (reviewed / "labels" / "a.txt").read_text() == "0 0.745000 0.500000 0.510000 0.200000\n"
    (entry,) = _log_entries(reviewed)  # written otherwise than proposed: an edit, the proposal in `before`
    assert (entry["action"], entry["before"]) == ("edit", [[0, 0.99, 0.5, 1.0, 0.2]])


def test_a_box_too_small_for_the_label_file_is_refused_and_what_is_saved_can_be_saved_again(split):
    client, reviewed = _client(split, CAT_DOG)
    tiny = {**GOOD_BOX, "w": 4e-7}
    response = client.put("/api/labels/a.png", json={"action": "accept", "boxes": [GOOD_BOX, tiny]})
    assert response.status_code == 422 and not reviewed.exists()
    assert response.json()["detail"].startswith("boxes.1.w: 4e-07 is 0 at the label file's six decimals")
    edge = {"cls": 0, "cx": 0.9999996, "cy": 0.5, "w": 8e-7, "h": 0.2}  # written as 1.000000, 0.000001
    assert client.put("/api/labels/a.png", json={"action": "accept", "boxes": [edge]}).status_code == 200
    written = (reviewed / "labels" / "a.txt").read_text()
    assert written == "0 1.000000 0.500000 0.000001 0.200000\n"
    loaded = client.get("/api/labels/a.png").json()
    boxes = [{k: b[k] for k in ("cls", "cx", "cy", "w", "h")} for b in loaded["boxes"]]
    again = client.put("/api/labels/a.png", json={"action": "accept", "boxes": boxes, "version": loaded["version"]})
    assert again.status_code == 200 and (reviewed / "labels" / "a.txt").read_text() == written


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--port", "70000"], "semiyolo review: error: --port 70000: expected 0 (any free port) to 65535"),
        (["--port", "-1"], "semiyolo review: error: --port -1: expected 0 (any free port) to 65535"),
        (["--host", ""], "semiyolo review: error: --host is empty: give an address such as 127.0.0.1"),
    ],
)
def test_review_with_a_bad_address_is_one_line(split, capsys, options, message):
    from semiyolo.cli import main

    assert main(["review", str(split), *options]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(message) and len(err.splitlines()) == 1


def test_ctrl_c_stops_the_server_with_one_line(split, capsys, monkeypatch):
    import socket

    import uvicorn

    from semiyolo.cli import main

    def interrupted(self, sockets=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(uvicorn.Server, "run", interrupted)
    loopback = socket.create_server(("127.0.0.1", 0))
    monkeypatch.setattr("semiyolo.review.server.bind", lambda host, port: loopback)
    with loopback:
        assert main(["review", str(split)]) == 0
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == "semiyolo review: stopped" and "Traceback" not in err


@pytest.fixture
def data_yaml(tmp_path):
    """A dataset named by its data.yaml: t.png in images/train, v.png in images/val, classes cat and dog."""
    root = tmp_path / "ds"
    _image(root / "images" / "train" / "t.png")
    _image(root / "images" / "val" / "v.png")
    _labels(root / "labels" / "train" / "t.txt", "1 0.5 0.5 0.2 0.2\n")
    data = {"path": ".", "train": "images/train", "val": "images/val", "names": ["cat", "dog"]}
    (root / "data.yaml").write_text(yaml.safe_dump(data))
    return root / "data.yaml"


@pytest.mark.parametrize(("options", "image"), [([], "t.png"), (["--split", "val"], "v.png")])
def test_review_of_a_data_yaml_serves_its_split_with_its_class_names(data_yaml, monkeypatch, options, image):
    from semiyolo.cli import main

    served = {}
    monkeypatch.setattr("semiyolo.review.server.serve", lambda app, host, port: served.setdefault("app", app))
    assert main(["review", str(data_yaml), *options]) == 0
    client = TestClient(served["app"], base_url="http://127.0.0.1:8765")
    info = client.get("/api/info").json()
    assert (info["names"], info["reviewed"]) == (["cat", "dog"], str(data_yaml.parent / "reviewed"))
    assert [i["name"] for i in client.get("/api/images").json()["images"]] == [image]


def test_review_of_a_data_yaml_without_the_split_names_the_key(data_yaml, capsys):
    from semiyolo.cli import main

    assert main(["review", str(data_yaml), "--split", "test"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"semiyolo review: error: {data_yaml}: no 'test' split (it has train, val)"
    )


def test_stats_count_the_reviewed_images_by_their_last_logged_action(split):
    client, reviewed = _client(split, {0: "cat", 1: "dog"})
    assert client.get("/api/stats").json() == {
        "images": 4,
        "reviewed": 0,
        "accepted": 0,
        "edited": 0,
        "no_objects": 0,
        "unlogged": 0,
    }
    proposed = [
        {k: b[k] for k in ("cls", "cx", "cy", "w", "h")} for b in client.get("/api/labels/a.png").json()["boxes"]
    ]
    client.put("/api/labels/a.png", json={"action": "accept", "boxes": proposed})  # accept
    client.put("/api/labels/b.png", json={"action": "accept", "boxes": proposed})  # edit (two boxes became one)
    client.put("/api/labels/c.png", json={"action": "accept", "boxes": proposed})  # edit (a box where none was)
    client.put("/api/labels/c.png", json={"action": "no_objects"})  # c's last action: no objects
    _labels(reviewed / "labels" / "big.txt", "")  # written by another program: no log line
    with (reviewed / "review_log.jsonl").open("a") as log:
        log.write('not json\n{"image": 3}\n')  # skipped
    stats = client.get("/api/stats")
    assert stats.status_code == 200
    assert stats.json() == {"images": 4, "reviewed": 4, "accepted": 1, "edited": 1, "no_objects": 1, "unlogged": 1}
    guarded, _ = _client(split, {0: "cat", 1: "dog"}, allowed_hosts=allowed_hosts("127.0.0.1"))
    refused = guarded.get("/api/stats", headers={"Host": "attacker.example:8765"})  # guarded like every route
    assert refused.status_code == 400 and "attacker.example" in refused.json()["detail"]


def test_validation_images_for_the_calibration_come_from_every_val_entry_and_say_why_when_none(tmp_path):
    from semiyolo.integrations.ultralytics.review_source import CALIBRATION_IMAGES, validation_images

    run = tmp_path / "run"
    run.mkdir()
    assert validation_images(run)[0] == []  # no args.yaml
    (run / "args.yaml").write_text("")  # empty: no crash, and the reason names what is missing
    images, why = validation_images(run)
    assert images == [] and "names no dataset file" in why
    data = tmp_path / "data"
    for folder, count in (("a", 150), ("b", 101)):  # two val folders, 251 images; files need only exist here
        for i in range(count):
            (data / "images" / folder).mkdir(parents=True, exist_ok=True)
            (data / "images" / folder / f"{i:03d}.png").write_bytes(b"")
    val = {"path": str(data), "val": ["images/a", "images/b"], "names": ["x"]}
    (data / "data.yaml").write_text(yaml.safe_dump(val))
    (run / "args.yaml").write_text(yaml.safe_dump({"data": str(data / "data.yaml")}))
    images, why = validation_images(run)
    assert images == [] and "no val image" in why  # no label file anywhere: nothing to calibrate on
    _labels(data / "labels" / "b" / "100.txt", "")  # one labelled image (no objects) is enough
    images, why = validation_images(run)
    assert (len(images), why) == (CALIBRATION_IMAGES, "")
    # evenly spread over both folders, the first and the last image included: positions round(i * 250 / 199), of
    # which those under 150 (folder a) are i <= 119, so 120 from a and 80 from b
    assert images[0] == data / "images" / "a" / "000.png" and images[-1] == data / "images" / "b" / "100.png"
    assert sum(p.parent.name == "a" for p in images) == 120
    # val images that are also train images are left out (the model was fitted on them): here the one labelled image
    (data / "data.yaml").write_text(yaml.safe_dump({**val, "train": "images/b"}))
    images, why = validation_images(run)
    assert images == [] and why.endswith("has a label file but the 101 it shares with train")
    (data / "data.yaml").write_text(yaml.safe_dump({**val, "train": "images/a"}))
    images, _ = validation_images(run)
    assert len(images) == 101 and {p.parent.name for p in images} == {"b"}
