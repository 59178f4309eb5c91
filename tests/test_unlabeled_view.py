"""``semi.unlabeled_view: ultralytics``: unlabeled images through Ultralytics' own mosaic / affine / flip."""

import csv
import random

import numpy as np
import pytest
import torch
from PIL import Image
from ultralytics.cfg import get_cfg

from semiyolo.cli import main
from semiyolo.integrations.ultralytics.unlabeled import UnlabeledYOLODataset, ultralytics_view_batches


@pytest.fixture(scope="module")
def squares(tmp_path_factory):
    """8 black 64 x 64 images, each with one white square whose box is its hidden label; one with no label file."""
    root = tmp_path_factory.mktemp("squares")
    (root / "images").mkdir()
    (root / "labels").mkdir()
    for i in range(8):
        image = np.zeros((64, 64, 3), np.uint8)
        x0, y0, side = 16 + i, 20 - i, 20 + i  # inside 16..43 and 13..47: far from the mosaic's tile edges
        image[y0 : y0 + side, x0 : x0 + side] = 255
        Image.fromarray(image).save(root / "images" / f"{i}.png")
        if i != 7:
            cx, cy = (x0 + side / 2) / 64, (y0 + side / 2) / 64
            (root / "labels" / f"{i}.txt").write_text(f"{i % 3} {cx} {cy} {side / 64} {side / 64}\n")
    return root / "images"


def _dataset(folder):
    hyp = get_cfg(overrides={"mosaic": 1.0, "scale": 0.3, "translate": 0.1, "fliplr": 0.5})
    hyp.hsv_h = hyp.hsv_s = hyp.hsv_v = 0.0
    data = {"names": {0: "a", 1: "b", 2: "c"}, "nc": 3, "channels": 3}
    return UnlabeledYOLODataset(img_path=str(folder), imgsz=64, batch_size=4, augment=True, hyp=hyp, data=data)


def test_hidden_boxes_stay_on_their_squares_through_mosaic_and_affine(squares):
    random.seed(0), np.random.seed(0), torch.manual_seed(0)  # Ultralytics' transforms draw from all three
    dataset = _dataset(squares)
    assert len(dataset) == 8 and sum(len(label["cls"]) for label in dataset.labels) == 7
    checked = 0
    for images, hidden, paths in ultralytics_view_batches(dataset, 4, seed=0, max_passes=4):
        assert images.dtype == torch.uint8 and images.shape == (4, 3, 64, 64) and len(paths) == 4
        for image, rows in zip(images, hidden, strict=True):
            for cls, x1, y1, x2, y2 in rows.tolist():
                if min(x1, y1) < 2 or max(x2, y2) > 62:  # cut by the view's border: the label is clipped too
                    continue
                white = image[0].float() > 127
                ys, xs = white[int(y1) - 2 : int(y2) + 3, int(x1) - 2 : int(x2) + 3].nonzero(as_tuple=True)
                found = [xs.min() + int(x1) - 2, ys.min() + int(y1) - 2, xs.max() + int(x1) - 1, ys.max() + int(y1) - 1]
                # the square's pixels span its hidden box to within a pixel (bilinear edges)
                assert np.allclose(found, [x1, y1, x2, y2], atol=1.0), (found, [x1, y1, x2, y2])
                assert cls in (0, 1, 2)
                checked += 1
    assert checked >= 8


def test_online_training_on_ultralytics_views(tmp_path, squares):
    from semiyolo.data import SynthSpec, write_dataset

    labeled = write_dataset(tmp_path / "labeled", SynthSpec(images=8, imgsz=64, seed=3))
    config = tmp_path / "run.yaml"
    config.write_text(
        "model: yolov8n.yaml\n"
        f"data: {labeled}\n"
        f"train: {{epochs: 2, imgsz: 64, batch: 4, nbs: 4, workers: 1, plots: false, project: {tmp_path}, name: r}}\n"
        f"semi: {{mode: online, unlabeled: {squares}, unlabeled_view: ultralytics, burn_in: 1, keep_state: true, "
        "pseudo_min_score: 0.0001, validate_teacher: false, filters: [{name: score, params: {threshold: 0.01}}]}\n"
    )
    assert main(["train", str(config)]) == 0
    rows = list(csv.DictReader((tmp_path / "r" / "results.csv").open()))
    assert float(rows[-1]["semi/lambda_unsup"]) == 1.0 and float(rows[-1]["train/u_cls_loss"]) > 0
    state = torch.load(tmp_path / "r" / "weights" / "semi_state.pt", weights_only=False)
    assert state["unlabeled"]["consumed"] == 2  # 8 labeled images / batch 4: two unlabeled batches in epoch 2


def test_the_unlabeled_view_closes_mosaic_with_the_labeled_images(tmp_path, squares):
    from semiyolo.config_loading import load_config
    from semiyolo.data import SynthSpec, write_dataset
    from semiyolo.integrations.ultralytics import OnlineTrainer

    labeled = write_dataset(tmp_path / "labeled", SynthSpec(images=8, imgsz=64, seed=3))
    config = tmp_path / "run.yaml"
    config.write_text(
        f"model: yolov8n.yaml\ndata: {labeled}\n"
        f"train: {{epochs: 2, close_mosaic: 1, imgsz: 64, batch: 4, workers: 0, plots: false, project: {tmp_path}}}\n"
        f"semi: {{mode: online, unlabeled: {squares}, unlabeled_view: ultralytics, validate_teacher: false}}\n"
    )
    cfg = load_config(config)
    trainer = OnlineTrainer(overrides={**cfg.train, "model": cfg.model, "data": cfg.data}, semi=cfg.semi)
    trainer.train()
    # epoch 2 is in the last close_mosaic epochs: each view is one image, so at most its one square is labeled
    # (a mosaic tiles four images: four squares, test_hidden_boxes_stay_on_their_squares_through_mosaic_and_affine)
    assert not trainer.unlabeled.mosaic
    random.seed(0)
    assert max(len(trainer.unlabeled.dataset[i]["cls"]) for i in range(8)) == 1
    mosaic = _dataset(squares)
    assert max(len(mosaic[i]["cls"]) for i in range(8)) > 1  # what the first epoch's views looked like
