"""The review page's API on a folder of large images: start-up scan, the first and a second image list, and a
scaled image first and from the cache (FastAPI's TestClient, in process; the browser's timings are not scripted).

    python benchmarks/review_api.py [--images 500] [--large 25] [--out /tmp/review_bench]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

from semiyolo.review.app import create_app
from semiyolo.review.sources import open_folder_source
from semiyolo.review.store import ReviewStore


def write_folder(out: Path, images: int, large: int) -> None:
    """``images`` JPEGs, the first ``large`` at 3840 x 2160 and the rest 1920 x 1080, 0 to 8 random boxes each."""
    rng = np.random.default_rng(0)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "labels").mkdir(exist_ok=True)
    for i in range(images):
        size = (3840, 2160) if i < large else (1920, 1080)
        noise = rng.integers(0, 255, (size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
        Image.fromarray(noise).resize(size).save(out / "images" / f"{i:05d}.jpg", quality=90)
        rows = [
            f"{rng.integers(0, 3)} {cx:.4f} {cy:.4f} 0.1 0.1"
            for cx, cy in rng.uniform(0.1, 0.9, (rng.integers(0, 9), 2))
        ]
        (out / "labels" / f"{i:05d}.txt").write_text("".join(r + "\n" for r in rows))


def timed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--large", type=int, default=25)
    parser.add_argument("--out", type=Path, default=Path("/tmp/review_bench"))
    args = parser.parse_args()
    if not (args.out / "images").is_dir():
        write_folder(args.out, args.images, args.large)
    names = {0: "a", 1: "b", 2: "c"}
    start = time.perf_counter()
    client = TestClient(
        create_app(open_folder_source(args.out, args.out / "reviewed", names), ReviewStore(args.out / "reviewed"))
    )
    scan = time.perf_counter() - start
    first_list, second_list = timed(lambda: client.get("/api/images")), timed(lambda: client.get("/api/images"))
    rows = []
    for name in ("00000.jpg", f"{args.large:05d}.jpg"):  # a 4K image, a 1080p one
        first = timed(lambda n=name: client.get(f"/api/pixels/{n}"))
        cached = statistics.median(timed(lambda n=name: client.get(f"/api/pixels/{n}")) for _ in range(5))
        rows.append((name, first, cached))
    print(f"{args.images} images ({args.large} at 3840 x 2160, the rest 1920 x 1080)")
    print(f"start-up scan {scan:.2f} s; first image list {first_list:.2f} s; again {second_list:.3f} s")
    for name, first, cached in rows:
        print(f"GET /api/pixels/{name}: first {first * 1e3:.0f} ms, cached {cached * 1e3:.1f} ms (median of 5)")


if __name__ == "__main__":
    main()
