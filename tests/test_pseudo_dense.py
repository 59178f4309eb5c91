"""Dense pseudo-targets: the selection by hand, the teacher that sends them, and the criterion that uses them
(against the identity: a student equal to its teacher has nothing to learn where the teacher gave targets)."""

import math

import pytest
import torch
from ultralytics.cfg import get_cfg
from ultralytics.nn.tasks import DetectionModel

from semiyolo.batch import DENSE_KEY, labeled_part, split_batch
from semiyolo.integrations.ultralytics.criterion import BackgroundPenaltyDetectionLoss
from semiyolo.integrations.ultralytics.semi_criterion import SemiSupervisedLoss
from semiyolo.pseudo import DenseTargets, FilterChain, ScoreFilter
from semiyolo.pseudo.augment import StrongAugment, student_view
from semiyolo.teacher import MeanTeacher, TeacherPseudoLabeler
from semiyolo.teacher.labeler import per_anchor


def test_dense_selection_by_hand():
    # one image, 4 anchors, 2 classes; best scores 0.9, 0.3, 0.02, 0.6
    probs = torch.tensor([[[0.9, 0.1], [0.05, 0.3], [0.02, 0.01], [0.2, 0.6]]])
    dense = DenseTargets(probs, torch.arange(16.0).view(1, 4, 4), floor=0.1, fraction=0.5)
    # top ceil(0.5 x 4) = 2 anchors by best score: 0 (0.9) and 3 (0.6)
    selected = dense.selected()
    assert selected.tolist() == [[True, False, False, True]]
    # of the other two, only anchor 2 (0.02 < floor 0.1) is penalised; anchor 1 (0.3) is a negative only
    assert dense.penalized(selected).tolist() == [[False, False, True, False]]
    # without a fraction, k comes from the caller (the labeled images' positives), within [1, A]
    free = DenseTargets(probs, dense.boxes, floor=0.1)
    assert free.selected(1).tolist() == [[True, False, False, False]]
    assert free.anchors_per_image(0) == 1 and free.anchors_per_image(9) == 4
    with pytest.raises(ValueError, match="need k"):
        free.selected()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"fraction": 0.0}, "fraction"), ({"fraction": 1.5}, "fraction"), ({"floor": 1.0}, "floor")],
)
def test_dense_targets_reject_bad_settings(kwargs, message):
    probs, boxes = torch.rand(1, 3, 2), torch.rand(1, 3, 4)
    with pytest.raises(ValueError, match=message):
        DenseTargets(probs, boxes, **{"fraction": 0.5, "floor": 0.1, **kwargs})
    with pytest.raises(ValueError, match="expected probs"):
        DenseTargets(probs, torch.rand(1, 2, 4), floor=0.1)


def _rows(value, start: int, stop: int):
    return value[start:stop] if torch.is_tensor(value) else [v[start:stop] for v in value]


def _model() -> DetectionModel:
    torch.manual_seed(0)
    model = DetectionModel("yolov8n.yaml", nc=2, verbose=False)
    model.args = get_cfg()
    return model


def test_a_student_equal_to_its_teacher_learns_nothing_where_dense_targets_are():
    """The teacher's targets are the student's own probabilities and boxes: d BCE / d logit = p - p = 0 on selected
    anchors and the box loss (CIoU of identical boxes) is 0; every other anchor is pushed down by BCE, and the
    penalty adds to that only where the teacher is confident there is nothing, not on the uncertain anchors."""
    model = _model().eval()
    for branch in model.model[-1].cv3:  # class biases spread out, so that the anchors' scores differ
        torch.nn.init.normal_(branch[-1].bias, std=2.0)
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        decoded, raw = model(images)
    probs, boxes = per_anchor(decoded)
    floor = float(probs.max(-1).values.median())  # half the anchors at or above: some are not penalised
    dense = DenseTargets(probs, boxes, floor=floor, fraction=0.1)
    selected = dense.selected()
    penalized, unpenalized = dense.penalized(selected), ~selected & ~dense.penalized(selected)
    assert penalized.any() and unpenalized.any()
    empty = {"batch_idx": torch.zeros(0), "cls": torch.zeros(0, 1), "bboxes": torch.zeros(0, 4), DENSE_KEY: dense}
    grads = {}
    for lambda_bg in (0.0, 1.0):
        criterion = BackgroundPenaltyDetectionLoss(model, lambda_bg=lambda_bg)
        scores = raw["scores"].detach().clone().requires_grad_()
        preds = {"boxes": raw["boxes"].detach(), "scores": scores, "feats": raw["feats"]}
        loss, items, _, assignment = criterion.forward(preds, empty)
        assert torch.equal(assignment.fg_mask, selected)
        assert assignment.normalizer == selected.sum()
        assert items["box_loss"].abs() < 1e-4
        loss.sum().backward()
        grads[lambda_bg] = scores.grad.permute(0, 2, 1).abs().amax(-1)  # (B, A)
    bce, with_penalty = grads[0.0], grads[1.0]
    assert with_penalty[selected].max() < 1e-6
    assert (bce[~selected] > 0).all()
    torch.testing.assert_close(with_penalty[unpenalized], bce[unpenalized])
    assert (with_penalty[penalized] > bce[penalized]).all()


def test_dense_targets_ride_with_the_pseudo_labeled_part_only():
    model = _model().eval()
    labeler = TeacherPseudoLabeler(FilterChain([ScoreFilter(0.0)]), min_score=0.0, max_candidates=20)
    with pytest.raises(ValueError, match="keeps the geometry"):
        MeanTeacher(model, labeler, StrongAugment(), pseudo_targets="dense")
    teacher = MeanTeacher(model, labeler, student_view("letterbox", same_geometry=True), pseudo_targets="dense")
    labeled = {
        "img": torch.rand(2, 3, 64, 64),
        "batch_idx": torch.tensor([0.0, 1.0]),
        "cls": torch.tensor([[0.0], [1.0]]),
        "bboxes": torch.tensor([[0.5, 0.5, 0.2, 0.2], [0.3, 0.3, 0.1, 0.1]]),
    }
    batch, reliable = teacher.extend(labeled, torch.rand(3, 3, 64, 64))
    anchors = 8 * 8 + 4 * 4 + 2 * 2  # strides 8, 16, 32 at 64 px
    dense = batch[DENSE_KEY]
    assert batch["num_labeled"] == 2 and batch["img"].shape[0] == 5
    assert dense.probs.shape == (3, anchors, 2) and dense.fraction is None
    assert len(reliable) == 3
    assert DENSE_KEY not in labeled_part(batch)
    labeled_targets, pseudo_targets = split_batch(batch, 2)
    assert DENSE_KEY not in labeled_targets and pseudo_targets[DENSE_KEY] is dense
    criterion = BackgroundPenaltyDetectionLoss(model)
    semi = SemiSupervisedLoss(criterion, lambda_unsup=1.0)
    model.train()
    preds = model(batch["img"])
    loss, items = semi(preds, batch)
    assert torch.isfinite(loss).all() and items["u_cls_loss"] > 0
    # each unlabeled image gets as many positives as the labeled images' foreground anchors per image (rounded up)
    parsed = criterion.parse_output(preds)
    labeled_fg = criterion.forward({k: _rows(v, 0, 2) for k, v in parsed.items()}, labeled_targets)[3].fg_mask.sum()
    seen = []
    original = criterion.assign_dense
    criterion.assign_dense = lambda outputs, dense, k=None: seen.append(k) or original(outputs, dense, k)
    semi(preds, batch)
    assert seen == [math.ceil(int(labeled_fg) / 2)] and seen[0] >= 1
    with pytest.raises(ValueError, match="labeled batch's size"):
        teacher.extend(labeled, torch.rand(3, 3, 32, 32))
