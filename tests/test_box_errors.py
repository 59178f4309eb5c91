"""benchmarks/box_errors.py's matching and label reading, on hand-built boxes (the script backs a BENCHMARKS table)."""

import importlib.util
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "box_errors.py"
spec = importlib.util.spec_from_file_location("box_errors", SCRIPT)
box_errors = importlib.util.module_from_spec(spec)
spec.loader.exec_module(box_errors)


def test_labels_are_read_where_ultralytics_looks_for_them(tmp_path):
    image = tmp_path / "images" / "data" / "images" / "test" / "a.png"  # the last images folder is the one
    label = tmp_path / "images" / "data" / "labels" / "test" / "a.txt"
    label.parent.mkdir(parents=True)
    label.write_text("0 0.5 0.25 0.5 0.1\n")  # a 100 x 40 image: centre (50, 10), size 50 x 4
    boxes = box_errors.labelled_boxes(image, width=100, height=40)
    assert torch.allclose(boxes, torch.tensor([[25.0, 8.0, 75.0, 12.0]]))
    assert box_errors.labelled_boxes(tmp_path / "images" / "none.png", 100, 40).shape == (0, 4)  # no label file
    with pytest.raises(SystemExit, match="under an 'images' folder"):
        box_errors.labelled_boxes(tmp_path / "pictures" / "a.png", 100, 40)


def test_each_prediction_is_matched_to_its_best_box_at_iou_one_half():
    labelled = torch.tensor([[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
    predicted = torch.tensor(
        [
            [1.0, 0.0, 10.0, 10.0],  # inside the first box: IoU 90 / 100 = 0.9, offset (+1, 0, 0, 0)
            [20.0, 20.0, 30.0, 32.0],  # around the second: IoU 100 / 120 = 0.833, offset (0, 0, 0, +2)
            [0.0, 0.0, 10.0, 4.0],  # inside the first box: IoU 40 / 100 = 0.4, under 0.5: not matched
            [0.0, 0.0, 9.0, 10.0],  # the first box again: IoU 0.9, a label may match twice (as exact_boxes does)
        ]
    )
    ious, offsets = box_errors.matched_offsets(predicted, labelled)
    assert ious.tolist() == pytest.approx([0.9, 100 / 120, 0.9])
    assert offsets.tolist() == [[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 2.0], [0.0, 0.0, -1.0, 0.0]]
    assert box_errors.matched_offsets(predicted, torch.zeros((0, 4)))[1].shape == (0, 4)
