"""The torch-only mean-teacher unit: EMA arithmetic, the batch it builds, its state, the audit."""

import math

import pytest
import torch
from torch import nn

from semiyolo.batch import append_pseudo_labeled
from semiyolo.pseudo import Detections, FilterChain, ScoreFilter
from semiyolo.pseudo.augment import StrongAugment
from semiyolo.teacher import MeanTeacher, PseudoLabelAudit, TeacherEMA, TeacherPseudoLabeler


class _Student(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(2))
        self.register_buffer("count", torch.tensor(3))


def test_teacher_ema_constant_decay_by_hand():
    student = _Student()
    ema = TeacherEMA(student, decay=0.9)
    student.weight.data.fill_(1.0)
    student.count.fill_(7)
    ema.update(student)
    # 0.9 * 0 + 0.1 * 1 = 0.1; then 0.9 * 0.1 + 0.1 * 1 = 0.19
    assert torch.allclose(ema.model.weight, torch.full((2,), 0.1))
    ema.update(student)
    assert torch.allclose(ema.model.weight, torch.full((2,), 0.19))
    assert int(ema.model.count) == 3  # integer buffers are not averaged
    assert ema.updates == 2 and not ema.model.weight.requires_grad and not ema.model.training


def test_teacher_ema_warm_up_ramp_by_hand():
    student = _Student()
    ema = TeacherEMA(student, decay=0.99, tau=2.0)
    student.weight.data.fill_(1.0)
    d = 0.99 * (1 - math.exp(-1 / 2))  # the first update's decay: 0.99 * 0.3935 = 0.3895
    assert ema.current_decay() == pytest.approx(d)
    ema.update(student)
    assert torch.allclose(ema.model.weight, torch.full((2,), 1 - d))


def test_teacher_ema_state_round_trip_and_bad_settings():
    student = _Student()
    ema = TeacherEMA(student, decay=0.5)
    student.weight.data.fill_(2.0)
    ema.update(student)
    other = TeacherEMA(_Student(), decay=0.5)
    other.load_state_dict(ema.state_dict())
    assert other.updates == 1 and torch.equal(other.model.weight, ema.model.weight)
    with pytest.raises(ValueError, match="decay"):
        TeacherEMA(student, decay=1.0)
    with pytest.raises(ValueError, match="tau"):
        TeacherEMA(student, tau=-1)


def _labeled_batch():
    return {
        "img": torch.zeros(1, 3, 4, 8),
        "batch_idx": torch.tensor([0.0]),
        "cls": torch.tensor([[2.0]]),
        "bboxes": torch.tensor([[0.5, 0.5, 0.25, 0.5]]),
        "im_file": ("a.png",),
    }


def test_append_pseudo_labeled_coordinates_by_hand():
    images = torch.ones(2, 3, 2, 4)  # half the labeled size: resized x2, normalised boxes unchanged
    boxes = [torch.tensor([[0.0, 0.0, 2.0, 1.0]]), torch.zeros(0, 4)]
    classes = [torch.tensor([1]), torch.zeros(0, dtype=torch.long)]
    out = append_pseudo_labeled(_labeled_batch(), images, boxes, classes)
    assert out["img"].shape == (3, 3, 4, 8) and out["num_labeled"] == 1
    assert torch.equal(out["img"][1:], torch.ones(2, 3, 4, 8))
    # xyxy (0, 0, 2, 1) in a 4 x 2 frame: (0, 0, 0.5, 0.5) normalised, centre (0.25, 0.25), size (0.5, 0.5)
    assert torch.allclose(out["bboxes"], torch.tensor([[0.5, 0.5, 0.25, 0.5], [0.25, 0.25, 0.5, 0.5]]))
    assert out["batch_idx"].tolist() == [0.0, 1.0] and out["cls"].tolist() == [[2.0], [1.0]]
    assert out["im_file"] == ("a.png",)  # other keys are kept


def test_append_pseudo_labeled_needs_one_target_set_per_image():
    with pytest.raises(ValueError, match="2 images, 1 boxes"):
        append_pseudo_labeled(_labeled_batch(), torch.ones(2, 3, 4, 8), [torch.zeros(0, 4)], [torch.zeros(0)])


class _FixedDetector(nn.Module):
    """Ultralytics' inference output for 2 anchors and 2 classes: ``(decoded (B, 4 + C, A), raw)``; image 0 has a
    confident class-1 box at cxcywh (4, 4, 4, 4), every other score is 0.05."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, images):
        b = images.shape[0]
        decoded = torch.zeros(b, 6, 2)
        decoded[:, :4] = torch.tensor([4.0, 4.0, 4.0, 4.0]).view(1, 4, 1) * self.scale
        decoded[:, 4:] = 0.05
        decoded[0, 5, 0] = 0.9
        return decoded, {}


def _mean_teacher(empty_unlabeled="background", threshold=0.5):
    labeler = TeacherPseudoLabeler(FilterChain([ScoreFilter(threshold)]), min_score=0.1)
    identity = StrongAugment(flip=0.0, scale=(1.0, 1.0), translate=0.0, brightness=0, contrast=0, saturation=0)
    return MeanTeacher(_FixedDetector(), labeler, identity, decay=0.5, seed=0, empty_unlabeled=empty_unlabeled)


@pytest.mark.parametrize("empty_unlabeled, appended", [("background", 2), ("skip", 1)])
def test_mean_teacher_extends_a_batch_with_the_teachers_boxes(empty_unlabeled, appended):
    teacher = _mean_teacher(empty_unlabeled)
    weak = torch.rand(2, 3, 8, 8)
    batch, detections = teacher.extend(_labeled_batch(), weak)
    assert [len(d) for d in detections] == [1, 0]  # every weak image is reported, for the audit
    assert batch["img"].shape[0] == 1 + appended and batch["num_labeled"] == 1
    # the pseudo-box: xyxy (2, 2, 6, 6) of an 8 x 8 view, i.e. cxcywh (0.5, 0.5, 0.5, 0.5), class 1, image 1
    assert torch.allclose(batch["bboxes"][1], torch.tensor([0.5, 0.5, 0.5, 0.5]))
    assert batch["cls"][1].item() == 1.0 and batch["batch_idx"].tolist() == [0.0, 1.0]


def test_mean_teacher_blends_pseudo_labeled_images_with_each_other_when_asked():
    teacher = _mean_teacher()
    teacher.mixup = 1.0  # every pseudo-labeled image blended, partners the other pseudo-labeled image
    weak = torch.stack([torch.zeros(3, 8, 8), torch.ones(3, 8, 8)])
    batch, _ = teacher.extend(_labeled_batch(), weak)
    # rows 1 and 2: the two weak images (0 and 1) blended half and half, 0.5 everywhere (the view is the identity)
    assert torch.equal(batch["img"][1:], torch.full((2, 3, 4, 8), 0.5))  # resized to the labeled 4 x 8
    # image 0's pseudo-box (class 1) now on both rows; image 1 had none to give
    assert batch["batch_idx"].tolist() == [0.0, 1.0, 2.0] and batch["cls"].view(-1).tolist()[1:] == [1.0, 1.0]
    with pytest.raises(ValueError, match="cannot be blended"):
        MeanTeacher(_FixedDetector(), teacher.labeler, teacher.augment, pseudo_targets="dense", mixup=0.5)


def test_mean_teacher_with_nothing_to_append_returns_the_batch():
    teacher = _mean_teacher("skip", threshold=0.95)  # the filter drops the one candidate (score 0.9)
    labeled = _labeled_batch()
    batch, detections = teacher.extend(labeled, torch.rand(2, 3, 8, 8))
    assert batch is labeled and [len(d) for d in detections] == [0, 0]
    assert teacher.filters.stats() == {"0_score/kept": 0, "0_score/dropped": 1}


def test_mean_teacher_state_restores_teacher_filters_and_view_generator():
    teacher = _mean_teacher()
    teacher.augment = StrongAugment()  # a random view, drawn from the unit's generator
    student = _FixedDetector()
    student.scale.data.fill_(3.0)
    teacher.update(student)  # 0.5 * 1 + 0.5 * 3 = 2
    teacher.pseudo_label(torch.rand(2, 3, 8, 8))
    state = teacher.state_dict()
    first, _ = teacher.extend(_labeled_batch(), torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(1)))
    other = _mean_teacher()
    other.augment = StrongAugment()
    other.load_state_dict(state)
    again, _ = other.extend(_labeled_batch(), torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(1)))
    assert other.model.scale.item() == 2.0 and other.ema.updates == 1
    assert state["filters"][0]["kept"] == 1 and other.filters.state_dict() == teacher.filters.state_dict()
    assert torch.equal(first["img"], again["img"]) and torch.equal(first["bboxes"], again["bboxes"])


def test_audit_precision_recall_by_hand():
    audit = PseudoLabelAudit()
    dets = Detections(
        torch.tensor([[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]]),
        torch.tensor([0.9, 0.6]),
        torch.tensor([0, 1]),
    )
    hidden = torch.tensor([[0.0, 0.0, 0.0, 10.0, 10.0], [1.0, 50.0, 50.0, 60.0, 60.0]])
    audit.observe([dets, Detections.empty()], [hidden, torch.zeros(0, 5)])
    m = audit.metrics()
    # image 1: 1 of 2 pseudo-labels matches (precision 1/2), 1 of 2 objects found (recall 1/2); image 2 has no
    # label file and only counts towards pseudo-labels per image: 2 labels / 2 images; confidence (0.9+0.6)/2
    assert m["semi/pl_precision"] == 0.5 and m["semi/pl_recall"] == 0.5
    assert m["semi/pl_iou"] == pytest.approx(1.0)  # the one match is the object's own box
    assert m["semi/pseudo_per_image"] == 1.0 and m["semi/teacher_conf"] == pytest.approx(0.75)
    audit.reset()
    assert math.isnan(audit.metrics()["semi/pl_recall"])


def test_labeled_part_undoes_append_pseudo_labeled():
    from semiyolo.batch import append_pseudo_labeled, labeled_part

    batch = {
        "img": torch.zeros(2, 3, 8, 8),
        "batch_idx": torch.tensor([0.0, 1.0]),
        "cls": torch.tensor([[3.0], [4.0]]),
        "bboxes": torch.tensor([[0.5, 0.5, 0.2, 0.2], [0.25, 0.25, 0.5, 0.5]]),
        "im_file": ("a.jpg", "b.jpg"),
    }
    boxes = [torch.tensor([[0.0, 0.0, 4.0, 4.0]]), torch.zeros(0, 4)]
    classes = [torch.tensor([1]), torch.zeros(0, dtype=torch.long)]
    regressed, ignored = [torch.tensor([False]), torch.zeros(0, dtype=torch.bool)], [torch.zeros(0, 4)] * 2
    weights = [torch.tensor([0.3]), torch.zeros(0)]
    extended = append_pseudo_labeled(batch, torch.ones(2, 3, 8, 8), boxes, classes, regressed, ignored, weights)
    assert extended["target_weight"].tolist() == [1.0, 1.0, pytest.approx(0.3)]  # labeled targets at weight 1
    part = labeled_part(extended)
    assert part["img"].shape[0] == 2 and part["im_file"] == ("a.jpg", "b.jpg")
    for key in ("batch_idx", "cls", "bboxes"):
        assert torch.equal(part[key], batch[key])
    assert part["regress"].tolist() == [True, True]  # the labeled targets are always regressed
    assert part["target_weight"].tolist() == [1.0, 1.0]
    assert "num_labeled" not in part and "ignore_idx" not in part
    assert labeled_part(batch) is batch  # a batch nothing was appended to


def test_audit_iou_is_the_mean_over_the_true_pseudo_labels():
    audit = PseudoLabelAudit()
    dets = Detections(
        torch.tensor([[1.0, 1.0, 11.0, 11.0], [20.0, 20.0, 30.0, 30.0], [40.0, 40.0, 44.0, 44.0]]),
        torch.tensor([0.9, 0.8, 0.7]),
        torch.tensor([0, 0, 0]),
    )
    # object 0 (0, 0, 10, 10) against (1, 1, 11, 11): 81 / 119; object 1 (20, 20, 30, 35) against (20, 20, 30, 30):
    # 100 / 150; the third pseudo-label matches nothing and does not count
    hidden = torch.tensor([[0.0, 0.0, 0.0, 10.0, 10.0], [0.0, 20.0, 20.0, 30.0, 35.0]])
    audit.observe([dets], [hidden])
    assert audit.metrics()["semi/pl_iou"] == pytest.approx((81 / 119 + 100 / 150) / 2)
    assert math.isnan(PseudoLabelAudit().metrics()["semi/pl_iou"])
