"""The tiny CPU training runs of the tests, configured in one place (``conftest.tiny_run`` is one, trained once)."""

from pathlib import Path

TINY_TRAIN = {"imgsz": 64, "batch": 4, "workers": 0, "plots": False}
"""What every tiny run shares: 64 px, batch 4, images decoded in-process, no plots."""


def tiny_train(project: str | Path, name: str, epochs: int = 2, **more) -> dict:
    """The ``train:`` block of a tiny run of ``epochs`` into ``project/name``; ``more`` adds or replaces keys."""
    return {"epochs": epochs, **TINY_TRAIN, "project": str(project), "name": name, **more}
