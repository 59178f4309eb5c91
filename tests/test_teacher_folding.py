"""The teacher's folded inference copy: BatchNorm folded into the convolution before it, refreshed from the teacher
before every forward, trusted only where it computes what the teacher does."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from semiyolo.pseudo import FilterChain
from semiyolo.teacher import TeacherPseudoLabeler
from semiyolo.teacher.folding import FoldedTeacher, foldable_modules, folds_faithfully


class ConvBN(nn.Module):
    """``act(bn(conv(x)))``, Ultralytics' ``Conv``."""

    def __init__(self, c1: int = 1, c2: int = 1, k: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, padding=k // 2, bias=False)
        self.bn = nn.BatchNorm2d(c2)
        self.act = nn.Identity()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class BNFirst(ConvBN):
    """Named like ``ConvBN`` but normalises before the convolution: folding it would be wrong."""

    def forward(self, x):
        return self.conv(self.bn(x))


class WithSideBranch(ConvBN):
    """``bn(conv(x) + cv2(x))`` (Ultralytics' ``Conv2``): the side branch has weights, so it is not folded."""

    def __init__(self) -> None:
        super().__init__()
        self.cv2 = nn.Conv2d(1, 1, 1, bias=False)

    def forward(self, x):
        return self.bn(self.conv(x) + self.cv2(x))


def hand_built(cls=ConvBN) -> nn.Module:
    """conv weight 2; bn gamma 3, beta 1, running mean 0.5, running var 3, eps 1."""
    m = cls()
    with torch.no_grad():
        m.conv.weight.fill_(2.0)
        m.bn.weight.fill_(3.0)
        m.bn.bias.fill_(1.0)
        m.bn.running_mean.fill_(0.5)
        m.bn.running_var.fill_(3.0)
    m.bn.eps = 1.0
    return m.eval()


def test_folding_by_hand():
    teacher = hand_built()
    folded = FoldedTeacher()
    x = torch.ones(1, 1, 2, 2)
    # teacher: bn(2 * 1) = (2 - 0.5) / sqrt(3 + 1) * 3 + 1 = 3.25
    # folded: s = 3 / sqrt(3 + 1) = 1.5, W' = 1.5 * 2 = 3, b' = 1 - 1.5 * 0.5 = 0.25, and 3 * 1 + 0.25 = 3.25
    out = folded(teacher, x)
    assert torch.allclose(teacher(x), torch.full_like(x, 3.25))
    assert torch.allclose(out, torch.full_like(x, 3.25))
    copy = folded.copies[teacher]
    assert copy.trusted
    assert copy.model.conv.weight.item() == pytest.approx(3.0)
    assert copy.model.conv.bias.item() == pytest.approx(0.25)
    assert isinstance(copy.model.bn, nn.Identity)
    assert isinstance(teacher.bn, nn.BatchNorm2d)  # the teacher itself is untouched


def test_the_copy_follows_the_teacher_at_every_call():
    teacher, folded, x = hand_built(), FoldedTeacher(), torch.ones(1, 1, 2, 2)
    folded(teacher, x)
    with torch.no_grad():  # what an EMA step does: the teacher's tensors change in place
        teacher.bn.running_mean.fill_(1.5)
        teacher.conv.weight.fill_(4.0)
    # (4 - 1.5) / 2 * 3 + 1 = 4.75
    assert torch.allclose(folded(teacher, x), torch.full_like(x, 4.75))


def test_a_conv_with_a_bias_folds_it_too():
    teacher = hand_built()
    teacher.conv = nn.Conv2d(1, 1, 1, bias=True)
    with torch.no_grad():
        teacher.conv.weight.fill_(2.0)
        teacher.conv.bias.fill_(1.0)
    x = torch.ones(1, 1, 2, 2)
    # teacher: (2 + 1 - 0.5) / 2 * 3 + 1 = 4.75; folded bias: 1 + 1.5 * (1 - 0.5) = 1.75, and 3 + 1.75 = 4.75
    assert torch.allclose(FoldedTeacher()(teacher, x), torch.full_like(x, 4.75))


def test_only_conv_bn_modules_without_other_weights_fold():
    plain, no_stats = ConvBN(), ConvBN()
    plain.bn, no_stats.bn = nn.BatchNorm2d(1, affine=False), nn.BatchNorm2d(1, track_running_stats=False)
    model = nn.Sequential(ConvBN(), WithSideBranch(), nn.Sequential(ConvBN()), plain, no_stats)
    assert foldable_modules(model) == ["0", "2.0"]


def test_a_side_branch_is_left_unfolded_and_the_outputs_agree():
    teacher = nn.Sequential(hand_built(), hand_built(WithSideBranch)).eval()
    folded, x = FoldedTeacher(), torch.rand(1, 1, 3, 3)
    assert torch.allclose(folded(teacher, x), teacher(x), atol=1e-6)
    assert folded.copies[teacher].trusted and isinstance(folded.copies[teacher].model[1].bn, nn.BatchNorm2d)


def test_a_copy_that_disagrees_is_not_used():
    teacher, folded, x = hand_built(BNFirst), FoldedTeacher(), torch.ones(1, 1, 2, 2)
    # teacher: conv(bn(1)) = 2 * ((1 - 0.5) / 2 * 3 + 1) = 3.5; the folded copy would give 3.25
    with pytest.warns(UserWarning, match="changes its outputs"):
        out = folded(teacher, x)
    assert folded.copies[teacher].trusted is False
    assert torch.allclose(out, torch.full_like(x, 3.5))
    assert torch.allclose(folded(teacher, x), torch.full_like(x, 3.5))  # and never again


def test_the_check_reads_the_architecture_not_the_weights():
    identity = BNFirst()  # fresh BatchNorm: mean 0, var 1, gamma 1, beta 0, so bn(x) is x / sqrt(1 + 1e-5)
    with pytest.warns(UserWarning, match="changes its outputs"):
        assert not folds_faithfully(identity.eval(), torch.Size((1, 2, 2)))  # its weights would have passed
    assert folds_faithfully(ConvBN().eval(), torch.Size((1, 2, 2)))
    assert folds_faithfully(hand_built(), torch.Size((1, 2, 2)))


def test_the_copy_is_rebuilt_when_the_teacher_changes_dtype():
    teacher, folded, x = hand_built(), FoldedTeacher(), torch.ones(1, 1, 2, 2)
    folded(teacher, x)
    teacher.double()
    out = folded(teacher, x.double())
    assert out.dtype == torch.float64 and torch.allclose(out, torch.full_like(out, 3.25))


def yolo_teacher() -> nn.Module:
    """YOLOv8n with BatchNorm statistics away from their initial 0 / 1, so that folding is not an identity."""
    from ultralytics.nn.tasks import DetectionModel

    torch.manual_seed(0)
    model = DetectionModel("yolov8n.yaml", nc=3, verbose=False).train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.rand(2, 3, 64, 64) * 2)
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return model.eval()


def test_yolov8n_folded_agrees_with_the_teacher_and_leaves_it_as_it_was():
    teacher = yolo_teacher()
    state = {k: v.clone() for k, v in teacher.state_dict().items()}
    folded, x = FoldedTeacher(), torch.rand(2, 3, 96, 96)
    with torch.no_grad():
        expected, got = teacher(x), folded(teacher, x)
    copy = folded.copies[teacher]
    assert copy.trusted
    assert not any(isinstance(m, nn.BatchNorm2d) for m in copy.model.modules())
    assert len(copy.pairs) == len(foldable_modules(teacher)) > 50
    # decoded boxes (pixels) and class probabilities, and the raw head outputs the labeler reads
    assert torch.allclose(got[0], expected[0], rtol=1e-4, atol=1e-3)
    for k in ("boxes", "scores"):
        assert torch.allclose(got[1][k], expected[1][k], rtol=1e-4, atol=1e-3)
    assert state.keys() == teacher.state_dict().keys()
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in state.items())


def test_yolov8n_copy_follows_in_place_changes_of_folded_and_unfolded_weights():
    teacher, folded, x = yolo_teacher(), FoldedTeacher(), torch.rand(1, 3, 64, 64)
    folded(teacher, x)
    head = teacher.model[-1]
    with torch.no_grad():  # as an EMA step does: a class logit's bias (not folded) and a BatchNorm mean (folded)
        head.cv3[0][2].bias.add_(2.0)
        teacher.model[0].bn.running_mean.add_(0.3)
        expected, got = teacher(x), folded(teacher, x)
    assert torch.allclose(got[0], expected[0], rtol=1e-4, atol=1e-3)
    assert torch.allclose(got[1]["scores"], expected[1]["scores"], rtol=1e-4, atol=1e-3)


def test_one_folder_keeps_one_copy_per_model():
    a, b, x = hand_built(), hand_built(), torch.ones(1, 1, 2, 2)
    with torch.no_grad():
        b.conv.weight.fill_(4.0)
    folded = FoldedTeacher()
    first = [folded(m, x) for m in (a, b)]
    copies = (folded.copies[a], folded.copies[b])
    second = [folded(m, x) for m in (a, b)]
    assert (folded.copies[a], folded.copies[b]) == copies  # not rebuilt when the models alternate
    # a: 3.25 (by hand above); b: (4 - 0.5) / 2 * 3 + 1 = 6.25
    for out, value in zip(first + second, (3.25, 6.25) * 2, strict=True):
        assert torch.allclose(out, torch.full_like(out, value))
    del a
    assert len(folded.copies) == 1  # a model gone takes its copy with it


def test_the_labeler_runs_the_folded_copy_and_gets_the_teachers_outputs():
    teacher, x = yolo_teacher().train(), torch.rand(2, 3, 96, 96)
    folding, plain = (TeacherPseudoLabeler(FilterChain([]), fold=fold) for fold in (True, False))
    (decoded, raw), (expected, expected_raw) = folding.forward(teacher, x), plain.forward(teacher, x)
    assert folding.folded.copies[teacher].trusted and plain.folded is None
    assert torch.allclose(decoded, expected, rtol=1e-4, atol=1e-3)
    assert torch.allclose(raw["boxes"], expected_raw["boxes"], rtol=1e-4, atol=1e-3)
    assert teacher.training  # the labeler ran it in eval mode and put it back as it found it
