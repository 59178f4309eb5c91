"""The review page in a real browser: Debian's Chromium, headless, driven by Selenium through Debian's chromedriver
(an explicit Service path: Selenium Manager downloads nothing), against the app served on a free loopback port.

Skipped only when Chromium or chromedriver is missing and ``SEMIYOLO_REQUIRE_BROWSER`` is unset (``.ci/run``
sets it, so CI fails instead of skipping). The documentation's screenshot is made from a real run by
``benchmarks/review_screenshot.py``."""

import json
import os
import time
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from semiyolo.review.app import create_app
from semiyolo.review.server import background_server
from semiyolo.review.sources import open_folder_source
from semiyolo.review.store import ReviewStore

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
HAVE_BROWSER = CHROMIUM.is_file() and CHROMEDRIVER.is_file()
NAMES = {0: "circle", 1: "square", 2: "triangle"}

pytestmark = pytest.mark.skipif(
    not HAVE_BROWSER and not os.environ.get("SEMIYOLO_REQUIRE_BROWSER"),
    reason=f"{CHROMIUM} or {CHROMEDRIVER} missing (apt-get install chromium chromium-driver)",
)


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_argument("--window-size=1400,900")
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _scene(path: Path, size=(400, 300)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", size, (200, 190, 170))
    ImageDraw.Draw(image).ellipse((60, 40, 160, 140), fill=(40, 90, 160))
    image.save(path)
    return path


def _wait(condition, timeout: float = 15.0, what: str = "the page"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _open(driver, url: str, name: str) -> dict:
    """Load the page and wait until ``name`` is drawn; returns the canvas's rectangle in the viewport."""
    driver.get(url)
    _wait(lambda: driver.execute_script("return document.getElementById('canvas').dataset.ready") == name, what=name)
    return driver.execute_script(
        "const r = document.getElementById('canvas').getBoundingClientRect(); return r.toJSON()"
    )


def _drag(driver, start: tuple[int, int], end: tuple[int, int]) -> None:
    """Press at ``start``, move to ``end`` in steps, release (viewport pixels)."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.actions.action_builder import ActionBuilder

    builder = ActionBuilder(driver)
    builder.pointer_action.move_to_location(*start).pointer_down()
    for k in range(1, 5):
        x = start[0] + (end[0] - start[0]) * k // 4
        y = start[1] + (end[1] - start[1]) * k // 4
        builder.pointer_action.move_to_location(x, y)
    builder.pointer_action.pointer_up()
    builder.perform()
    ActionChains(driver).pause(0.1).perform()


def _keys(driver, keys: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(driver).send_keys(keys).perform()


def _serve(folder: Path):
    reviewed = folder / "reviewed"
    source = open_folder_source(folder, reviewed, NAMES)
    return background_server(create_app(source, ReviewStore(reviewed, user="browser"))), reviewed


def test_draw_a_box_relabel_it_accept_and_find_the_label_file(browser, tmp_path):
    folder = tmp_path / "split"
    _scene(folder / "images" / "a_scene.png")  # no label file: nothing proposed
    _scene(folder / "images" / "b_other.png")
    server, reviewed = _serve(folder)
    with server as url:
        rect = _open(browser, url, "a_scene.png")
        assert rect["width"] / rect["height"] == pytest.approx(400 / 300, abs=0.01)  # the image's aspect
        left, top = int(rect["left"]) + 1, int(rect["top"]) + 1
        start, end = (left + 40, top + 30), (left + 200, top + 150)
        _drag(browser, start, end)
        _keys(browser, "2")  # the new box is selected: class 2
        _keys(browser, "a")
        label = reviewed / "labels" / "a_scene.txt"
        _wait(label.is_file, what=str(label))
        _wait(lambda: browser.execute_script("return document.getElementById('canvas').dataset.ready") == "b_other.png")
    (row,) = [line.split() for line in label.read_text().splitlines()]
    cls, cx, cy, w, h = int(row[0]), *map(float, row[1:])
    # the drag in canvas pixels: from (start - rect corner) to (end - rect corner), normalised by the canvas size
    x1, y1 = start[0] - rect["left"], start[1] - rect["top"]
    x2, y2 = end[0] - rect["left"], end[1] - rect["top"]
    width, height = rect["width"], rect["height"]
    assert cls == 2
    assert cx * width == pytest.approx((x1 + x2) / 2, abs=1)
    assert cy * height == pytest.approx((y1 + y2) / 2, abs=1)
    assert w * width == pytest.approx(160, abs=1)  # 200 - 40 px
    assert h * height == pytest.approx(120, abs=1)  # 150 - 30 px
    (entry,) = [json.loads(line) for line in (reviewed / "review_log.jsonl").read_text().splitlines()]
    assert (entry["image"], entry["action"], entry["before"], len(entry["after"])) == ("a_scene.png", "edit", [], 1)


def test_move_and_resize_a_box_then_delete_another(browser, tmp_path):
    folder = tmp_path / "split"
    _scene(folder / "images" / "scene.png")
    (folder / "labels").mkdir()
    (folder / "labels" / "scene.txt").write_text("0 0.25 0.25 0.2 0.2\n1 0.75 0.75 0.1 0.1\n")
    server, reviewed = _serve(folder)
    with server as url:
        rect = _open(browser, url, "scene.png")
        W, H = rect["width"], rect["height"]
        at = lambda x, y: (round(rect["left"] + x * W), round(rect["top"] + y * H))  # noqa: E731
        _drag(browser, at(0.25, 0.25), at(0.45, 0.35))  # move box 0 by (+0.2, +0.1): it is selected
        _drag(browser, at(0.55, 0.45), at(0.65, 0.55))  # its bottom-right corner, from (0.55, 0.45), by (+0.1, +0.1)
        _drag(browser, at(0.75, 0.75), at(0.75, 0.75))  # a click on box 1 selects it
        _keys(browser, "\ue017")  # Delete
        _keys(browser, "a")
        label = reviewed / "labels" / "scene.txt"
        _wait(label.is_file, what=str(label))
    (row,) = [line.split() for line in label.read_text().splitlines()]
    # box 0 moved to centre (0.45, 0.35), corners (0.35, 0.25)-(0.55, 0.45); the corner dragged to (0.65, 0.55)
    assert int(row[0]) == 0
    assert [float(v) for v in row[1:]] == pytest.approx([0.5, 0.4, 0.3, 0.3], abs=1.5 / min(W, H))


def _chord(driver, *modifiers_and_key: str) -> None:
    """Press a chord (``Keys.CONTROL, "z"``): the modifiers held down around the key."""
    from selenium.webdriver.common.action_chains import ActionChains

    *modifiers, key = modifiers_and_key
    chain = ActionChains(driver)
    for modifier in modifiers:
        chain.key_down(modifier)
    chain.send_keys(key)
    for modifier in reversed(modifiers):
        chain.key_up(modifier)
    chain.perform()


def _ready(driver) -> str:
    return driver.execute_script("return document.getElementById('canvas').dataset.ready")


def _saved_rows(label: Path) -> list[list[float]]:
    return [[float(v) for v in line.split()] for line in label.read_text().splitlines()]


def test_undo_and_redo_step_through_the_edits_and_the_page_saves_where_they_stand(browser, tmp_path):
    from selenium.webdriver.common.keys import Keys

    folder = _two_scenes(tmp_path / "split", "0 0.25 0.25 0.2 0.2\n1 0.75 0.75 0.1 0.1\n")
    server, reviewed = _serve(folder)
    with server as url:
        rect = _open(browser, url, "scene.png")
        W, H = rect["width"], rect["height"]
        at = lambda x, y: (round(rect["left"] + x * W), round(rect["top"] + y * H))  # noqa: E731
        _drag(browser, at(0.75, 0.75), at(0.75, 0.75))  # select box 1
        _keys(browser, "x")  # edit 1: box 1 deleted
        _drag(browser, at(0.5, 0.1), at(0.7, 0.3))  # edit 2: a box of class 0 at (0.6, 0.2), 0.2 x 0.2
        _keys(browser, "2")  # edit 3: the new box (selected) becomes class 2
        boxes = lambda: browser.execute_script("return document.getElementById('stats-boxes').textContent")  # noqa: E731
        assert boxes() == "2"
        for _ in range(3):
            _chord(browser, Keys.CONTROL, "z")  # back to the two boxes proposed
        assert boxes() == "2"
        _chord(browser, Keys.CONTROL, "z")  # nothing left to undo: no change
        _chord(browser, Keys.CONTROL, Keys.SHIFT, "z")  # redo edit 1: box 1 deleted
        assert boxes() == "1"
        _chord(browser, Keys.CONTROL, "y")  # redo edit 2: the new box, class 0 (edit 3 stays undone)
        _keys(browser, "a")
        label = reviewed / "labels" / "scene.txt"
        _wait(label.is_file, what=str(label))
        _wait(lambda: _ready(browser) == "zz_next.png", what="the next image")
    tolerance = 1.5 / min(W, H)
    first, second = _saved_rows(label)
    assert first == [0, 0.25, 0.25, 0.2, 0.2]  # box 0 as proposed
    assert second == pytest.approx([0, 0.6, 0.2, 0.2, 0.2], abs=tolerance)  # class 0: the relabel is undone
    (entry,) = [json.loads(line) for line in (reviewed / "review_log.jsonl").read_text().splitlines()]
    assert entry["action"] == "edit" and len(entry["before"]) == 2 and len(entry["after"]) == 2


def test_a_box_drawn_zoomed_and_panned_is_saved_at_its_image_coordinates(browser, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.actions.action_builder import ActionBuilder
    from selenium.webdriver.common.actions.mouse_button import MouseButton
    from selenium.webdriver.common.actions.wheel_input import ScrollOrigin

    folder = tmp_path / "split"
    _scene(folder / "images" / "scene.png")
    server, reviewed = _serve(folder)
    with server as url:
        rect = _open(browser, url, "scene.png")
        W, H = rect["width"], rect["height"]
        at = lambda x, y: (round(rect["left"] + x * W), round(rect["top"] + y * H))  # noqa: E731
        zoom = lambda: browser.execute_script("return document.getElementById('canvas').dataset.zoom")  # noqa: E731
        # 300 px of wheel up doubles the zoom around the pointer, at (0.25, 0.25) of the canvas: that point of the
        # image stays under it, so the image's corner moves to 0.25 - 2 * 0.25 = -0.25 of the canvas on each axis
        ActionChains(browser).scroll_from_origin(ScrollOrigin.from_viewport(*at(0.25, 0.25)), 0, -300).perform()
        _wait(lambda: zoom() == "2.0000", what="zoom 2")
        # a middle-button drag by a tenth of the canvas pans: the corner goes to -0.25 + 0.1 = -0.15
        builder = ActionBuilder(browser)
        builder.pointer_action.move_to_location(*at(0.5, 0.5)).pointer_down(button=MouseButton.MIDDLE)
        builder.pointer_action.move_to_location(*at(0.55, 0.55)).move_to_location(*at(0.6, 0.6))
        builder.pointer_action.pointer_up(button=MouseButton.MIDDLE)
        builder.perform()
        # a canvas point u is image point (u + 0.15) / 2: the drag from (0.3, 0.3) to (0.7, 0.5) draws the image
        # box from (0.225, 0.225) to (0.425, 0.325): centre (0.325, 0.275), size 0.2 x 0.1
        _drag(browser, at(0.3, 0.3), at(0.7, 0.5))
        _keys(browser, "f")  # fit: the zoom is reset, the box stays
        assert zoom() == "1.0000"
        _keys(browser, "a")
        label = reviewed / "labels" / "scene.txt"
        _wait(label.is_file, what=str(label))
    ((cls, cx, cy, w, h),) = _saved_rows(label)
    # pixel rounding: half a screen pixel per point, halved by the zoom, plus the pan's
    assert (cls, cx, cy, w, h) == pytest.approx((0, 0.325, 0.275, 0.2, 0.1), abs=1.5 / min(W, H))


def test_an_unsaved_draft_survives_a_reload_until_it_is_saved(browser, tmp_path):
    from selenium.webdriver.common.keys import Keys

    folder = _two_scenes(tmp_path / "split", "0 0.25 0.25 0.2 0.2\n")
    server, reviewed = _serve(folder)
    text = lambda id_: browser.execute_script(f"return document.getElementById('{id_}').textContent")  # noqa: E731
    drafts = lambda: browser.execute_script(  # noqa: E731
        "return Object.keys(localStorage).filter((k) => k.startsWith('semiyolo-review-draft ')).length"
    )
    with server as url:
        rect = _open(browser, url, "scene.png")
        W, H = rect["width"], rect["height"]
        at = lambda x, y: (round(rect["left"] + x * W), round(rect["top"] + y * H))  # noqa: E731
        _drag(browser, at(0.5, 0.5), at(0.7, 0.9))  # a second box, class 0: centre (0.6, 0.7), 0.2 x 0.4
        assert drafts() == 1 and text("draft-note") == ""
        _open(browser, url, "scene.png")  # reload
        assert "draft" in text("draft-note") and text("stats-boxes") == "2"
        assert "edited" in browser.execute_script("return document.querySelector('#images li').className")
        _keys(browser, "r")  # reset: the draft is dropped, here and in the browser
        assert (text("draft-note"), text("stats-boxes"), drafts()) == ("", "1", 0)
        _chord(browser, Keys.CONTROL, "z")  # the reset undone: the draft again
        assert (text("stats-boxes"), drafts()) == ("2", 1)
        _keys(browser, "a")
        label = reviewed / "labels" / "scene.txt"
        _wait(label.is_file, what=str(label))
        _wait(lambda: _ready(browser) == "zz_next.png", what="the next image")
        _wait(lambda: text("stats-reviewed") == "1 / 2", what="the statistics")
        assert (drafts(), text("stats-edited"), text("stats-accepted")) == (0, "1", "0")
    rows = _saved_rows(label)
    assert rows[0] == [0, 0.25, 0.25, 0.2, 0.2]
    assert rows[1] == pytest.approx([0, 0.6, 0.7, 0.2, 0.4], abs=1.5 / min(W, H))


def _two_scenes(folder: Path, rows: str) -> Path:
    """A split folder of two images, ``scene.png`` with the label ``rows`` and ``zz_next.png`` (listed after it)."""
    _scene(folder / "images" / "scene.png")
    _scene(folder / "images" / "zz_next.png")
    (folder / "labels").mkdir()
    (folder / "labels" / "scene.txt").write_text(rows)
    return folder


def _pseudo_folder(root: Path, rows: str, scores: list[float]) -> Path:
    """A pseudo-label output of one image, ``scene.png``, its label rows and their scores in the manifest."""
    folder = _two_scenes(root / "pseudo", rows)
    entry = {"image": str(folder / "images" / "scene.png"), "name": "scene.png", "scores": scores}
    (folder / "manifest.jsonl").write_text(json.dumps(entry) + "\n")
    (folder / "summary.json").write_text(json.dumps({"names": NAMES}))
    return folder


def _dimmed(driver) -> str:
    return driver.execute_script("return document.getElementById('canvas').dataset.dimmed")


def test_a_class_filter_dims_boxes_and_a_save_still_writes_them_all(browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    rows = "0 0.2 0.2 0.2 0.2\n1 0.5 0.5 0.2 0.2\n0 0.8 0.8 0.1 0.1\n"
    folder = _pseudo_folder(tmp_path, rows, [0.9, 0.8, 0.3])
    server, reviewed = _serve(folder)
    with server as url:
        _open(browser, url, "scene.png")
        assert _dimmed(browser) == "0"
        Select(browser.find_element(By.ID, "filter-class")).select_by_value("1")  # only squares
        assert _dimmed(browser) == "2"
        assert browser.find_element(By.ID, "filter-count").text == "1 of 3 match"
        Select(browser.find_element(By.ID, "filter-class")).select_by_value("")
        Select(browser.find_element(By.ID, "filter-error")).select_by_value("spurious")  # the box at 0.3 < 0.5
        assert _dimmed(browser) == "2"
        _keys(browser, "a")  # accept: the dimmed boxes are saved too
        label = reviewed / "labels" / "scene.txt"
        _wait(label.is_file, what=str(label))
    assert _saved_rows(label) == [[float(v) for v in line.split()] for line in rows.splitlines()]
    (entry,) = [json.loads(line) for line in (reviewed / "review_log.jsonl").read_text().splitlines()]
    assert entry["action"] == "accept"


def test_accept_above_a_score_keeps_the_boxes_scoring_at_least_the_filters_lowest(browser, tmp_path):
    from selenium.webdriver.common.by import By

    rows = "0 0.2 0.2 0.2 0.2\n1 0.5 0.5 0.2 0.2\n2 0.8 0.8 0.1 0.1\n"
    folder = _pseudo_folder(tmp_path, rows, [0.9, 0.3, 0.6])
    server, reviewed = _serve(folder)
    with server as url:
        _open(browser, url, "scene.png")
        low = browser.find_element(By.ID, "filter-min")
        low.clear()
        low.send_keys("0.5")  # keys typed in the field are not the page's shortcuts
        assert _dimmed(browser) == "1"  # the square at 0.3
        browser.execute_script("document.getElementById('canvas').focus()")
        _keys(browser, "s")
        label = reviewed / "labels" / "scene.txt"
        _wait(label.is_file, what=str(label))
        _wait(lambda: _ready(browser) == "zz_next.png", what="the next image")
    assert _saved_rows(label) == [[0, 0.2, 0.2, 0.2, 0.2], [2, 0.8, 0.8, 0.1, 0.1]]  # 0.9 and 0.6 kept, 0.3 deleted
    (entry,) = [json.loads(line) for line in (reviewed / "review_log.jsonl").read_text().splitlines()]
    assert (entry["action"], len(entry["before"]), len(entry["after"])) == ("edit", 3, 2)


def test_m_adds_a_possibly_missed_candidate_as_a_box(browser, tmp_path):
    from semiyolo.review.doubt import ScoredBox
    from semiyolo.review.sources import LabelFolderSource, Proposal

    class Proposed(LabelFolderSource):  # a run's proposal without a model: one kept box, two dropped candidates
        def load(self, name: str) -> Proposal:
            kept = [ScoredBox(0, 0.25, 0.25, 0.2, 0.2, score=0.9)]
            dropped = [
                ScoredBox(1, 0.26, 0.25, 0.2, 0.2, score=0.4, dropped_by="score"),  # on the kept box: not missed
                ScoredBox(2, 0.75, 0.7, 0.2, 0.3, score=0.35, dropped_by="score"),  # apart: missed
            ]
            return Proposal(boxes=kept, dropped=dropped if name == "scene.png" else [])

    images = {name: _scene(tmp_path / "images" / name) for name in ("scene.png", "zz_next.png")}
    reviewed = tmp_path / "reviewed"
    source = Proposed(tmp_path / "images", images, NAMES, kind="run")
    with background_server(create_app(source, ReviewStore(reviewed, user="browser"))) as url:
        _open(browser, url, "scene.png")
        _keys(browser, "m")  # the missed candidate becomes a box
        _keys(browser, "m")  # nothing left to add: no change
        _keys(browser, "a")
        label = reviewed / "labels" / "scene.txt"
        _wait(label.is_file, what=str(label))
    assert _saved_rows(label) == [[0, 0.25, 0.25, 0.2, 0.2], [2, 0.75, 0.7, 0.2, 0.3]]


def test_the_source_lines_tooltip_follows_the_order_a_source_settles_on(browser, tmp_path):
    # a source whose order is still being settled (as a run calibrating its scores): its listing says pending until
    # released, and the page's tooltip says the rule of the latest listing
    folder = tmp_path / "split"
    _scene(folder / "images" / "scene.png")
    source = open_folder_source(folder, tmp_path / "reviewed", NAMES)
    settled = []
    source.pending = lambda: 0 if settled else 1
    source.order_note = lambda: "the settled rule" if settled else "still settling"
    reviewed = tmp_path / "reviewed"
    with background_server(create_app(source, ReviewStore(reviewed, user="browser"))) as url:
        _open(browser, url, "scene.png")

        def tooltip():
            return browser.execute_script("return document.getElementById('source').title")

        assert _wait(lambda: tooltip() == "order: still settling", what="the first rule")
        settled.append(True)
        assert _wait(lambda: tooltip() == "order: the settled rule", what="the listing's new rule")
