import os

import pytest

from tiny_runs import tiny_train

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_VERBOSE", "False")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """12 generated images at 64 px (a data.yaml), shared by the tests that train a few steps."""
    from semiyolo.data import SynthSpec, write_dataset

    return write_dataset(tmp_path_factory.mktemp("data"), SynthSpec(images=12, imgsz=64, seed=0))


TINY_RUN_SEMI = {"burn_in": 1, "lambda_bg": 1.0, "lambda_bg_warmup": 1, "logit_clamp": 10.0}
"""The semi settings of ``tiny_run``: lambda_bg 0 in epoch 1 (burn-in), then 1 (a warm-up of one epoch)."""


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_data):
    """One finished supervised run (2 epochs of YOLOv8n at 64 px on ``tiny_data``, ``TINY_RUN_SEMI``), trained once
    per test session: its folder (weights/best.pt and last.pt, results.csv, summary.json). Tests share it: one that
    writes into a run folder copies it into its own ``tmp_path`` first."""
    import yaml

    from semiyolo.cli import main

    root = tmp_path_factory.mktemp("tiny_run")
    config = {"model": "yolov8n.yaml", "data": str(tiny_data), "train": tiny_train(root, "run"), "semi": TINY_RUN_SEMI}
    (root / "run.yaml").write_text(yaml.safe_dump(config))
    assert main(["train", str(root / "run.yaml")]) == 0
    return root / "run"


@pytest.fixture(scope="module")
def opinionated_yolo():
    """YOLOv8n with random BatchNorm scales and shifts and unbiased last head convolutions: outputs that vary from
    place to place (an untrained one boxes and scores every anchor about alike, which is mirror-symmetric)."""
    import torch
    from torch import nn
    from ultralytics.nn.tasks import DetectionModel

    torch.manual_seed(0)
    model = DetectionModel("yolov8n.yaml", nc=3, verbose=False).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.normal_(1, 0.5)
                module.bias.normal_(0, 0.5)
        for branch in (*model.model[-1].cv2, *model.model[-1].cv3):
            branch[-1].weight.normal_(0, 0.1)
            branch[-1].bias.zero_()
    return model
