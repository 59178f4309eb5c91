"""The teacher labelling resized images (``semi.teacher_scale``): boxes mapped back to the images' pixels."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError
from torch import nn

from semiyolo.config import SemiConfig
from semiyolo.pseudo import FilterChain
from semiyolo.pseudo.augment import student_view
from semiyolo.teacher import MeanTeacher, TeacherPseudoLabeler
from semiyolo.teacher.labeler import scaled_size


def test_scaled_size_rounds_to_the_nearest_stride_multiple():
    assert scaled_size(160, 160, 1.2, 32) == (192, 192)  # 192 = 6 strides exactly
    # 100 * 1 / 32 = 3.1 -> 3 strides = 96; 60 / 32 = 1.9 -> 2 strides = 64
    assert scaled_size(100, 60, 1.0, 32) == (96, 64)
    assert scaled_size(20, 40, 0.5, 32) == (32, 32)  # never below one stride
    assert scaled_size(48, 80, 1.0, 32) == (64, 96)  # 1.5 and 2.5 strides: halves round up


class BrightSquareFinder(nn.Module):
    """A stand-in detector with one anchor: its box is the bounding box of the pixels brighter than 0.5 in its
    input's pixel frame, class probability 0.9; ``feats`` one 1 x 1 level. It records the sizes it was given."""

    stride = torch.tensor([8.0, 16.0, 32.0])

    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[tuple[int, int]] = []

    def forward(self, images: torch.Tensor):
        self.sizes.append(tuple(images.shape[-2:]))
        rows, columns = [], []
        for image in images:
            ys, xs = torch.nonzero(image[0] > 0.5, as_tuple=True)
            rows.append((ys.min(), ys.max() + 1))
            columns.append((xs.min(), xs.max() + 1))
        x1, x2 = (torch.stack([c[i] for c in columns]).float() for i in (0, 1))
        y1, y2 = (torch.stack([r[i] for r in rows]).float() for i in (0, 1))
        boxes = torch.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], 1)  # (B, 4) cxcywh
        decoded = torch.cat([boxes, torch.full((images.shape[0], 1), 0.9)], 1)[..., None]  # (B, 5, 1)
        return decoded, {"feats": [torch.zeros(images.shape[0], 1, 1, 1)]}


def _square_image() -> torch.Tensor:
    image = torch.zeros(1, 3, 160, 160)
    image[..., 40:80, 20:100] = 1.0  # rows 40-80, columns 20-100: box (20, 40, 100, 80)
    return image


def test_the_scaled_teachers_box_lands_back_on_the_object():
    # at 1.2 the square spans columns 24-120 and rows 48-96 of a 192 x 192 image (bilinear blurs each edge by
    # under a pixel, and the finder cuts at 0.5, on the edge); mapped back by 160 / 192: (20, 40, 100, 80) again
    finder = BrightSquareFinder()
    labeler = TeacherPseudoLabeler(FilterChain([]), fold=False, scale=1.2)
    detections = labeler.detect(finder, _square_image())[0]
    assert finder.sizes == [(192, 192)]
    assert torch.allclose(detections.boxes, torch.tensor([[20.0, 40.0, 100.0, 80.0]]), atol=1.0)
    assert detections.scores.tolist() == pytest.approx([0.9])


def test_scale_and_mirror_compose():
    # the mirror of the square spans columns 60-140; mapped back and averaged with the image's own: the same box
    finder = BrightSquareFinder()
    labeler = TeacherPseudoLabeler(FilterChain([]), fold=False, scale=1.4, mirror=True)
    detections = labeler.detect(finder, _square_image())[0]
    assert finder.sizes == [(224, 224)]  # 160 * 1.4 = 224, 7 strides; one forward of the image and its mirror
    assert torch.allclose(detections.boxes, torch.tensor([[20.0, 40.0, 100.0, 80.0]]), atol=1.0)


def test_a_scaled_yolo_teacher_is_the_model_on_the_resized_image():
    from ultralytics.nn.tasks import DetectionModel

    torch.manual_seed(0)
    yolo = DetectionModel("yolov8n.yaml", nc=3, verbose=False).eval()
    image = torch.rand(2, 3, 64, 96)
    decoded, raw = TeacherPseudoLabeler(FilterChain([]), fold=False, scale=1.5).forward(yolo, image)
    # height 64 * 1.5 = 96, 3 strides of 32; width 96 * 1.5 = 144, 4.5 strides, rounded up to 5: 160
    assert [tuple(f.shape[-2:]) for f in raw["feats"]][-1] == (3, 5)
    with torch.no_grad():
        expected, _ = yolo(F.interpolate(image, size=(96, 160), mode="bilinear", align_corners=False))
    ratio = torch.tensor([96 / 160, 64 / 96, 96 / 160, 64 / 96])[:, None]
    assert torch.allclose(decoded[:, :4], expected[:, :4] * ratio, atol=1e-4)
    assert torch.allclose(decoded[:, 4:], expected[:, 4:], atol=1e-5)


def test_dense_targets_refuse_a_scaled_teacher():
    with pytest.raises(ValidationError, match=r"teacher_scale: 1\.2 with pseudo_targets: dense"):
        SemiConfig(teacher_scale=1.2, pseudo_targets="dense")
    assert SemiConfig(teacher_scale=1.2, pseudo_targets="tiered").teacher_scale == 1.2
    labeler = TeacherPseudoLabeler(FilterChain([]), scale=1.2)
    with pytest.raises(ValueError, match="scale 1"):
        MeanTeacher(nn.Conv2d(3, 3, 1), labeler, student_view("letterbox", same_geometry=True), pseudo_targets="dense")
    with pytest.raises(ValueError, match="scales must be > 0"):
        TeacherPseudoLabeler(FilterChain([]), scale=0)
