"""The review page's screenshot of the documentation (``docs/review.png``, shown by ``docs/review.md`` and the
README), taken from a real source: an online run folder opened as ``semiyolo review RUN`` opens it (its teacher,
else ``weights/last.pt``, labels its unlabeled images), served on loopback and shown in Debian's headless Chromium
(1400 x 900, driven by Selenium through ``/usr/bin/chromedriver``). The first image of the page's order is opened,
its box with a likely error (else its most doubtful box) is selected, so that its tag and handles show, and the
page is saved in 256 colours. Every image is labelled first (the order needs them all): minutes on a CPU.
The header names the run's unlabeled images and where reviews would go (``SOURCE/reviewed``, as ``semiyolo review``
has it); nothing is accepted, so nothing is written there, and nothing is downloaded.

    python benchmarks/review_screenshot.py /tmp/abl/c_shapes/controls/split0/seed0/online_default \
        [--out docs/review.png]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")

from PIL import Image

from semiyolo.integrations.ultralytics.review_source import (
    RunSource,
    is_run_folder,
    read_semi_state,
    run_semi_settings,
)
from semiyolo.review.app import boxes_json, create_app
from semiyolo.review.server import allowed_hosts, background_server
from semiyolo.review.sources import page_order
from semiyolo.review.store import ReviewStore

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WINDOW = (1400, 900)


def open_run(run: Path, reviewed: Path) -> RunSource:
    """``run``'s unlabeled images labelled by its teacher, as ``semiyolo review RUN --reviewed REVIEWED`` has them."""
    if not is_run_folder(run):
        raise SystemExit(f"{run}: not a run folder (no weights/last.pt)")
    state = read_semi_state(run)
    return RunSource(run, run_semi_settings(run, None, state), reviewed, state)


def contains(box: dict, x: float, y: float) -> bool:
    return abs(x - box["cx"]) <= box["w"] / 2 and abs(y - box["cy"]) <= box["h"] / 2


def box_to_select(boxes: list[dict]) -> dict:
    """The box a click at its centre selects (no smaller box covers that point; the page picks the smallest box
    under the pointer), those with a likely error first, the most doubtful first."""
    reachable = [
        box
        for box in boxes
        if not any(
            o is not box and o["w"] * o["h"] < box["w"] * box["h"] and contains(o, box["cx"], box["cy"]) for o in boxes
        )
    ]
    return max(reachable, key=lambda box: (box["likely_error"] is not None, box["doubt"] or 0.0))


def chromium():
    """Headless Chromium at the screenshot's window size, through Debian's chromedriver (Selenium Manager,
    which would download a driver, is not used)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_argument(f"--window-size={WINDOW[0]},{WINDOW[1]}")
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    return driver


def wait_until_drawn(driver, name: str, timeout: float = 60.0) -> dict:
    """Wait until the page has drawn image ``name``; the canvas's rectangle in the viewport."""
    deadline = time.monotonic() + timeout
    while driver.execute_script("return document.getElementById('canvas').dataset.ready") != name:
        if time.monotonic() > deadline:
            raise SystemExit(f"the page did not draw {name} within {timeout:.0f} s")
        time.sleep(0.1)
    return driver.execute_script("return document.getElementById('canvas').getBoundingClientRect().toJSON()")


def click(driver, x: int, y: int) -> None:
    """A left click at viewport pixel ``(x, y)`` (a press and release: the page selects the box under it)."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.actions.action_builder import ActionBuilder

    builder = ActionBuilder(driver)
    builder.pointer_action.move_to_location(x, y).pointer_down().pointer_up()
    builder.perform()
    ActionChains(driver).pause(0.3).perform()


def screenshot(source: RunSource, reviewed: Path, out: Path, scratch: Path) -> tuple[str, dict]:
    """Open ``source``'s first image on the page, select its box, save the page to ``out``; ``(image, box)``."""
    first = page_order(source)[0]  # every image labelled: the page lists them all in their final order
    box = box_to_select(boxes_json(source.proposal(first).boxes))
    app = create_app(source, ReviewStore(reviewed), allowed_hosts=allowed_hosts("127.0.0.1"))
    driver = chromium()
    try:
        with background_server(app) as url:
            driver.get(url)
            rect = wait_until_drawn(driver, first)
            click(
                driver, round(rect["left"] + box["cx"] * rect["width"]), round(rect["top"] + box["cy"] * rect["height"])
            )
            driver.save_screenshot(str(scratch / "page.png"))
    finally:
        driver.quit()
    Image.open(scratch / "page.png").quantize(256).save(out, optimize=True)  # a third of the bytes, for git
    return first, box


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="an online run folder (weights/last.pt, its semi settings)")
    parser.add_argument("--out", type=Path, default=Path("docs/review.png"), help="the screenshot (PNG)")
    parser.add_argument(
        "--reviewed",
        type=Path,
        help="where reviews would go, as the header shows it (default: "
        "SOURCE/reviewed, as 'semiyolo review SOURCE'; the script accepts nothing, so it stays empty)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="review_screenshot_") as scratch:
        reviewed = (args.reviewed or args.source / "reviewed").resolve()
        source = open_run(args.source.resolve(), reviewed)
        print(source.describe())
        first, box = screenshot(source, reviewed, args.out, Path(scratch))
    shown = {k: box[k] for k in ("cls", "score", "doubt", "likely_error")}
    print(f"{args.out}: {first}, worth {source.proposal(first).worth:.3f}, box selected {shown}")


if __name__ == "__main__":
    main()
