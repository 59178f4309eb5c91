"""The oracle in the arm's recipe (issue 28, item 1: "the oracle, perfect pseudo-labels, the arm's recipe"): the
hidden labels take the teacher's place and go through the same strong view and batch."""

import pytest
import torch
from torch import nn

from semiyolo.pseudo import BatchedDetections, Detections, FilterChain
from semiyolo.pseudo.augment import StrongAugment
from semiyolo.teacher import MeanTeacher, TeacherPseudoLabeler
from semiyolo.teacher.view_targets import exact_boxes


class _NeverCalled(nn.Module):
    def forward(self, x):
        raise AssertionError("the oracle never runs the teacher")


def _labeled() -> dict:
    return {
        "img": torch.zeros(1, 3, 32, 32),
        "batch_idx": torch.zeros(1),
        "cls": torch.zeros(1, 1),
        "bboxes": torch.tensor([[0.5, 0.5, 0.25, 0.25]]),
    }


def test_hidden_labels_become_every_pseudo_labeled_target_reliable_and_regressed():
    still = StrongAugment(flip=0.0, scale=(1.0, 1.0), translate=0.0)  # geometry unchanged: boxes stay put
    teacher = MeanTeacher(
        _NeverCalled(), TeacherPseudoLabeler(FilterChain([])), still, pseudo_targets="tiered", oracle=True
    )
    # image 0: a class-2 box x 8..16, y 4..12 (centre (12, 8), 8 x 8 of 32 px); image 1: no label file (no objects)
    hidden = [torch.tensor([[2.0, 8.0, 4.0, 16.0, 12.0]]), torch.zeros(0, 5)]
    out, reliable = teacher.extend(_labeled(), torch.rand(2, 3, 32, 32), hidden=hidden)
    assert out["num_labeled"] == 1 and out["img"].shape[0] == 3  # both images join (an empty one as background)
    pseudo = out["batch_idx"] >= 1
    assert out["batch_idx"][pseudo].tolist() == [1.0] and out["cls"][pseudo].view(-1).tolist() == [2.0]
    # cxcywh normalised: (12 / 32, 8 / 32, 8 / 32, 8 / 32)
    assert out["bboxes"][pseudo][0].tolist() == pytest.approx([0.375, 0.25, 0.25, 0.25])
    assert out["regress"][pseudo].tolist() == [True]
    assert [len(d) for d in reliable] == [1, 0] and reliable[0].scores.tolist() == [1.0]


def test_the_oracle_needs_the_hidden_labels():
    teacher = MeanTeacher(_NeverCalled(), TeacherPseudoLabeler(FilterChain([])), oracle=True)
    with pytest.raises(ValueError, match="need the images' hidden labels"):
        teacher.extend(_labeled(), torch.rand(1, 3, 32, 32))


def test_exact_boxes_replace_only_the_boxes_matched_in_their_own_image():
    found = [
        Detections(
            torch.tensor([[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]]),
            torch.tensor([0.9, 0.8]),
            torch.tensor([0, 2]),
            None,
            torch.zeros(2),
        ),
        Detections(
            torch.tensor([[0.0, 0.0, 10.0, 10.0]]), torch.tensor([0.7]), torch.tensor([1]), None, torch.zeros(1)
        ),
    ]
    hidden = [
        # (1, 1, 11, 11) against (0, 0, 10, 10): 81 / (100 + 100 - 81) = 0.68 >= 0.5, replaced
        # (24, 24, 34, 34) against (20, 20, 30, 30): 36 / (100 + 100 - 36) = 0.22 < 0.5, kept
        torch.tensor([[1.0, 1.0, 1.0, 11.0, 11.0], [2.0, 24.0, 24.0, 34.0, 34.0]]),
        # image 1's only object is far away; image 0's (1, 1, 11, 11) must not reach image 1's detection
        torch.tensor([[0.0, 50.0, 50.0, 60.0, 60.0]]),
    ]
    out = exact_boxes(BatchedDetections.from_list(found), hidden)
    assert out.boxes.tolist() == [[1.0, 1.0, 11.0, 11.0], [20.0, 20.0, 30.0, 30.0], [0.0, 0.0, 10.0, 10.0]]
    assert out.classes.tolist() == [0, 2, 1] and out.scores.tolist() == pytest.approx([0.9, 0.8, 0.7])


def test_exact_boxes_without_hidden_objects_keep_the_teacher_boxes():
    found = [
        Detections(torch.tensor([[0.0, 0.0, 4.0, 4.0]]), torch.ones(1), torch.zeros(1).long(), None, torch.zeros(1))
    ]
    out = exact_boxes(BatchedDetections.from_list(found), [torch.zeros(0, 5)])
    assert out.boxes.tolist() == [[0.0, 0.0, 4.0, 4.0]]


def test_an_unknown_oracle_is_refused():
    with pytest.raises(ValueError, match="oracle must be one of"):
        MeanTeacher(_NeverCalled(), TeacherPseudoLabeler(FilterChain([])), oracle="labels")


class _OneObject(nn.Module):
    """A teacher that sees one class-0 object, score 0.9, centre (12, 8), 8 x 8 pixels, on every image."""

    def __init__(self) -> None:
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        decoded = torch.tensor([12.0, 8.0, 8.0, 8.0, 0.9, 0.0]).view(1, 6, 1).repeat(x.shape[0], 1, 1)
        return decoded, {"boxes": torch.zeros(x.shape[0], 64, 1)}


@pytest.mark.parametrize("oracle", [False, "boxes"])
def test_the_boxes_oracle_trains_the_teacher_s_object_with_the_hidden_box(oracle):
    still = StrongAugment(flip=0.0, scale=(1.0, 1.0), translate=0.0)
    teacher = MeanTeacher(_OneObject(), TeacherPseudoLabeler(FilterChain([])), still, oracle=oracle)
    # the teacher's x1 y1 x2 y2 (8, 4, 16, 12); the hidden box one pixel right and down: IoU 49 / 79 = 0.62
    hidden = [torch.tensor([[1.0, 9.0, 5.0, 17.0, 13.0], [0.0, 28.0, 28.0, 31.0, 31.0]])]
    out, _ = teacher.extend(_labeled(), torch.rand(1, 3, 32, 32), hidden=hidden)
    pseudo = out["batch_idx"] >= 1
    # cxcywh normalised: the teacher's centre (12, 8) / 32, or the hidden one's (13, 9) / 32; the class stays 0
    centre = [13 / 32, 9 / 32] if oracle else [12 / 32, 8 / 32]
    assert out["bboxes"][pseudo].tolist() == [pytest.approx([*centre, 0.25, 0.25])]
    assert out["cls"][pseudo].view(-1).tolist() == [0.0]  # the hidden object the teacher missed is not added
