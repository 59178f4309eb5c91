"""Images for the page: decoded once, turned upright (EXIF, as Ultralytics reads them), scaled down to at most
``max_side`` pixels on the longer side and re-encoded as JPEG, kept in a small LRU cache. A folder of 4K images
then costs the browser a few hundred kB an image, and the server one decode per image seen."""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps

DEFAULT_MAX_SIDE = 1280
DEFAULT_CACHE_IMAGES = 64
JPEG_QUALITY = 85
EXIF_ORIENTATION = 0x0112
TURNED = (5, 6, 7, 8)  # orientations that swap width and height


@dataclass(frozen=True)
class ScaledImage:
    """``jpeg``: the encoded bytes; ``size``: the upright original's ``(width, height)``; ``scaled``: the JPEG's."""

    jpeg: bytes
    size: tuple[int, int]
    scaled: tuple[int, int]


class TooManyPixels(OSError):
    """An image over PIL's decompression-bomb limit (twice ``Image.MAX_IMAGE_PIXELS``): answered as undecodable."""


def open_image(path: str | Path) -> Image.Image:
    """``Image.open``, an image over PIL's decompression-bomb limit raising :class:`TooManyPixels`.

    Raises:
        OSError: the file cannot be read as an image, or has too many pixels.
    """
    try:
        return Image.open(path)
    except Image.DecompressionBombError as err:
        raise TooManyPixels(f"too many pixels to decode safely: {err}") from None


def upright_size(image: Image.Image) -> tuple[int, int]:
    """``(width, height)`` of an opened image once turned upright by its EXIF orientation (read from the header)."""
    width, height = image.size
    return (height, width) if image.getexif().get(EXIF_ORIENTATION, 1) in TURNED else (width, height)


def image_size(path: str | Path) -> tuple[int, int]:
    """The upright size of the image at ``path``, from its header alone.

    Raises:
        OSError: the file cannot be read as an image.
    """
    with open_image(path) as image:
        return upright_size(image)


def scale_image(path: str | Path, max_side: int = DEFAULT_MAX_SIDE) -> ScaledImage:
    """``path`` upright and scaled to fit ``max_side x max_side`` (never enlarged), as JPEG.

    Raises:
        OSError: the file cannot be read or decoded as an image.
    """
    with open_image(path) as image:
        size = upright_size(image)
        image.draft("RGB", (max_side, max_side))  # a JPEG decodes at a fraction of its size: 4K in a few ms
        upright = ImageOps.exif_transpose(image).convert("RGB")
        upright.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        upright.save(out, "JPEG", quality=JPEG_QUALITY)
    return ScaledImage(out.getvalue(), size, upright.size)


class ScaledImages:
    """:func:`scale_image` with an LRU cache of ``capacity`` images, keyed by path, size and modification time."""

    def __init__(self, max_side: int = DEFAULT_MAX_SIDE, capacity: int = DEFAULT_CACHE_IMAGES) -> None:
        self.max_side, self.capacity = max_side, capacity
        self._cache: OrderedDict[tuple[str, int, int], ScaledImage] = OrderedDict()
        self._lock = threading.Lock()
        self._decoding: dict[tuple[str, int, int], threading.Lock] = {}

    def get(self, path: Path) -> ScaledImage:
        """The scaled image, from the cache or decoded once: a second request for an image being decoded (the page
        preloads the next image) waits for the first instead of decoding it again."""
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
            key_lock = self._decoding.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                scaled = self._cache.get(key)
            if scaled is None:
                try:
                    scaled = scale_image(path, self.max_side)
                    with self._lock:
                        self._cache[key] = scaled
                        while len(self._cache) > self.capacity:
                            self._cache.popitem(last=False)
                finally:
                    with self._lock:
                        self._decoding.pop(key, None)
        return scaled
