"""Image scaling: the loaders' uint8 pixels as the detector's float input."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # no torch import here: the numpy image writers read PIXEL_MAX too
    from torch import Tensor

PIXEL_MAX = 255  # the largest uint8 pixel value


def to_unit_range(images: Tensor) -> Tensor:
    """``images`` (``Tensor[..., 3, H, W]`` uint8, 0 to 255, e.g. a loader's ``Tensor[B, 3, H, W]``) as float32 in
    [0, 1], on their device."""
    return images.float() / PIXEL_MAX
