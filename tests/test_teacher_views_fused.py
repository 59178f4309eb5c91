"""The teacher's views fused at the detection level and its detections kept between visits (issue 31, item 3), on
an untrained YOLOv8n (a tiny training run with every option: tests/test_semi_online.py)."""

import pytest
import torch
from ultralytics.nn.tasks import DetectionModel

from semiyolo.pseudo import build_filters
from semiyolo.pseudo.fusion import fuse_views
from semiyolo.teacher import MeanTeacher, TeacherPseudoLabeler


@pytest.fixture(scope="module")
def yolo():
    torch.manual_seed(0)
    return DetectionModel("yolov8n.yaml", nc=3, verbose=False).eval()


def _images(n=3, size=64):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(1))


def _labeler(**options):
    chain = build_filters([{"name": "score", "params": {"threshold": 0.5}}], num_classes=3, has_dfl=True)
    # an untrained teacher scores about 0.5 everywhere: its 50 best anchors per image are the candidates; NMS at the
    # fusion's IoU, so that no two boxes one view kept are one cluster
    return TeacherPseudoLabeler(chain, min_score=0.0, nms_iou=0.55, max_candidates=50, **options)


def test_a_scale_seen_twice_fuses_to_the_detections_of_one_view(yolo):
    # two identical views (scale 1 and "more" scale 1): each box is fused with its twin, at the same score and place
    plain = _labeler().detect(yolo, _images())
    fused, views = _labeler(fusion="boxes", more_scales=(1.0,)).detect_fused(yolo, _images())
    assert sum(len(d) for d in plain) > 0 and all(len(v) == 2 for v in views)
    for one, both in zip(plain, fused, strict=True):
        order = one.scores.argsort(descending=True, stable=True)
        assert torch.allclose(both.scores, one.scores[order], atol=1e-6)
        assert torch.allclose(both.boxes, one.boxes[order].float(), atol=1e-4)
        assert torch.equal(both.classes, one.classes[order])


def test_the_views_are_the_scales_each_with_its_mirror_and_their_fusion_is_fuse_views(yolo):
    labeler = _labeler(fusion="boxes", mirror=True, more_scales=(1.5,))
    per_view = labeler.view_detections(yolo, _images())
    assert len(per_view) == 4  # scales 1 and 1.5, each the image and its mirror
    fused, views = labeler.detect_fused(yolo, _images())
    for i, dets in enumerate(fused):
        expected, found_by = fuse_views([view[i] for view in per_view])
        assert torch.equal(dets.boxes, expected.boxes) and torch.equal(dets.scores, expected.scores)
        assert len(views[i]) == 4 and bool(((found_by >= 1) & (found_by <= 4)).all())
    assert sum(len(d) for d in fused) > 0
    with pytest.raises(ValueError, match="more scales need fusion 'boxes'"):
        _labeler(more_scales=(1.5,))


def test_an_image_is_labeled_on_its_due_visits_and_served_from_the_store_between(yolo, monkeypatch):
    student = DetectionModel("yolov8n.yaml", nc=3, verbose=False)
    teacher = MeanTeacher(student, _labeler(), relabel_every=2)
    teacher.ema.model.load_state_dict(yolo.state_dict())
    forwards = []
    labeler_forward = teacher.labeler.forward
    monkeypatch.setattr(teacher.labeler, "forward", lambda *a, **k: forwards.append(1) or labeler_forward(*a, **k))
    images, keys = _images(2), ["a.png", "b.png"]
    first, _ = teacher.detections(images, keys)
    assert len(forwards) == 1
    with torch.no_grad():  # the teacher moves: a served visit still gives the first visit's detections
        for p in teacher.ema.model.parameters():
            p.add_(0.05)
    second, _ = teacher.detections(images, keys)
    assert len(forwards) == 1  # visit 2 of every 2: served, no forward
    assert all(
        torch.equal(a.boxes, b.boxes) and torch.equal(a.scores, b.scores) for a, b in zip(first, second, strict=True)
    )
    third, _ = teacher.detections(images[:1], keys[:1])  # visit 3: labeled again, by the moved teacher
    assert len(forwards) == 2 and not torch.equal(third[0].scores, first[0].scores)
    # without keys (the trust estimate's labeled images) the store is not used
    teacher.detections(images, None)
    assert len(forwards) == 3 and teacher.store.visits == {"a.png": 3, "b.png": 2}
