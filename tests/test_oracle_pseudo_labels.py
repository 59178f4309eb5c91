"""The oracle in the arm's recipe (issue 28, item 1: "the oracle, perfect pseudo-labels, the arm's recipe"): the
hidden labels take the teacher's place and go through the same strong view and batch."""

import pytest
import torch
from torch import nn

from semiyolo.pseudo import FilterChain
from semiyolo.pseudo.augment import StrongAugment
from semiyolo.teacher import MeanTeacher, TeacherPseudoLabeler


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
