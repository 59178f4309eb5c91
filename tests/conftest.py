import os

import pytest

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_VERBOSE", "False")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """12 generated images at 64 px (a data.yaml), shared by the tests that train a few steps."""
    from semiyolo.data import SynthSpec, write_dataset

    return write_dataset(tmp_path_factory.mktemp("data"), SynthSpec(images=12, imgsz=64, seed=0))
