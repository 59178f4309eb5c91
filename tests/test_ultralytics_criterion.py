"""The penalised criterion against Ultralytics' own on real YOLOv8n / YOLO11n / YOLO26n forwards, and its
pieces (assignment, terms, weights, normaliser floor) on a hand-built head output."""

import copy
import math
from functools import partial

import pytest
import torch
from ultralytics.cfg import get_cfg
from ultralytics.nn.tasks import DetectionModel
from ultralytics.utils.loss import E2ELoss, v8DetectionLoss

from semiyolo.batch import split_batch
from semiyolo.integrations.ultralytics.criterion import (
    Assignment,
    BackgroundPenaltyDetectionLoss,
    HeadOutputs,
    build_criterion,
    set_loss_weights,
)
from semiyolo.integrations.ultralytics.semi_criterion import SemiSupervisedLoss

IMGSZ = 96


def _model(cfg: str, nc: int = 4) -> DetectionModel:
    torch.manual_seed(0)
    model = DetectionModel(cfg, nc=nc, verbose=False)
    model.args = get_cfg()
    return model.train()


def _batch(n_images: int = 2) -> dict:
    gen = torch.Generator().manual_seed(1)
    img = torch.rand(n_images, 3, IMGSZ, IMGSZ, generator=gen)
    # image 0: two objects, image 1: one (normalised xywh)
    return {
        "img": img,
        "batch_idx": torch.tensor([0.0, 0.0, 1.0]),
        "cls": torch.tensor([[0.0], [2.0], [1.0]]),
        "bboxes": torch.tensor([[0.3, 0.3, 0.3, 0.4], [0.7, 0.6, 0.25, 0.2], [0.5, 0.5, 0.5, 0.6]]),
    }


def _grads(model, criterion, batch):
    model.zero_grad()
    loss, items = criterion(model(batch["img"]), batch)
    loss.sum().backward()
    return loss, items, [p.grad.clone() for p in model.parameters() if p.grad is not None]


@pytest.mark.parametrize("cfg", ["yolov8n.yaml", "yolo11n.yaml"])
def test_lambda_zero_equals_v8_detection_loss_in_loss_and_gradients(cfg):
    # float64, so that the comparison of weight gradients is not swamped by float32 rounding amplified
    # through the network (the two criteria hand conv backward differently strided gradients)
    model, batch = _model(cfg).double(), _batch()
    batch["img"] = batch["img"].double()  # Ultralytics keeps targets in float32
    ref_loss, ref_items, ref_grads = _grads(model, v8DetectionLoss(model), batch)
    loss, items, grads = _grads(model, BackgroundPenaltyDetectionLoss(model, lambda_bg=0.0), batch)
    # Ultralytics collects its loss items in a float32 tensor whatever the model's dtype
    torch.testing.assert_close(loss[:3], ref_loss, rtol=1e-6, atol=1e-6, check_dtype=False)
    assert loss[3].item() == 0.0
    assert list(items) == ["box_loss", "cls_loss", "dfl_loss", "bg_loss"]
    for name in ref_items:
        torch.testing.assert_close(items[name], ref_items[name], rtol=1e-6, atol=1e-6, check_dtype=False)
    assert len(grads) == len(ref_grads) > 0
    for g, ref in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g, ref, rtol=1e-6, atol=1e-6)


def test_lambda_zero_gradients_at_the_head_outputs_match_in_float32():
    model, batch = _model("yolov8n.yaml"), _batch()
    with torch.no_grad():
        preds = model(batch["img"])

    def head_grads(criterion):
        leaves = {k: preds[k].detach().clone().requires_grad_() for k in ("boxes", "scores")}
        loss, _ = criterion({**preds, **leaves}, batch)
        loss.sum().backward()
        return [leaves[k].grad for k in ("boxes", "scores")]

    ours = head_grads(BackgroundPenaltyDetectionLoss(model, lambda_bg=0.0))
    for g, ref in zip(ours, head_grads(v8DetectionLoss(model)), strict=True):
        torch.testing.assert_close(g, ref, rtol=1e-6, atol=1e-9)


def test_penalty_adds_exactly_lambda_times_the_mean_background_score():
    model, batch = _model("yolov8n.yaml"), _batch()
    preds = model(batch["img"])
    base = BackgroundPenaltyDetectionLoss(model, lambda_bg=0.0)
    crit = BackgroundPenaltyDetectionLoss(model, lambda_bg=1.5, normalize="bg_mean")
    (fg_mask, *_), loss0, _ = base.get_assigned_targets_and_loss(preds, batch)
    _, loss1, items = crit.get_assigned_targets_and_loss(preds, batch)
    scores = preds["scores"].detach().permute(0, 2, 1)
    bg_mean = scores.sigmoid().amax(-1)[~fg_mask].mean()
    # bg_mean normalisation: cls gain 0.5 * 1.5 * mean over background anchors of max_c sigmoid
    torch.testing.assert_close(loss1[3], 0.5 * 1.5 * bg_mean)
    torch.testing.assert_close(loss1[:3], loss0[:3])
    assert 0 < items["bg_loss"] <= 0.5 * 1.5


def test_joint_normalisation_matches_document_formula():
    model, batch = _model("yolov8n.yaml"), _batch()
    preds = model(batch["img"])
    crit = BackgroundPenaltyDetectionLoss(model, lambda_bg=2.0, normalize="joint")
    (fg_mask, *_), loss, _ = crit.get_assigned_targets_and_loss(preds, batch)
    x = preds["scores"].detach().permute(0, 2, 1)
    # target scores are not exposed, so check the penalty half of the formula and the normaliser:
    # lambda * sum_bg max_c sigma / (N_pos + N_bg), times the cls gain 0.5
    expected_bg = 0.5 * 2.0 * x.sigmoid().amax(-1)[~fg_mask].sum() / fg_mask.numel()
    torch.testing.assert_close(loss[3], expected_bg)


def _hand_outputs(logits: torch.Tensor) -> HeadOutputs:
    """Head outputs for the classification terms only: the box fields are not read there."""
    unused = torch.empty(0)
    return HeadOutputs(logits, logits.detach().float().sigmoid(), unused, unused, unused, unused, unused)


def _hand_assignment(fg: torch.Tensor, target_scores: torch.Tensor) -> Assignment:
    b, a = fg.shape
    normalizer = target_scores.sum().clamp(min=1)
    return Assignment(fg, target_scores, torch.zeros(b, a, 4), torch.zeros(b, a, dtype=torch.long), normalizer)


@pytest.mark.parametrize(
    ("normalize", "cls_divisor", "bg_expected"),
    [
        # 4 anchors, C = 2; background anchors 0, 1, 3 have max sigmoid 0.75, 0.75, 0.5: sum 2.0;
        # lambda 2; target-score sum 5; N_bg 3; N_pos + N_bg = 4
        ("bg_mean", 5.0, 2 * 2.0 / 3),
        ("bce", 5.0, 2 * 2.0 / 5),
        ("joint", 2 * 4.0, 2 * 2.0 / 4),  # BCE_i is the mean over the 2 classes
    ],
)
def test_normalisations_by_hand(normalize, cls_divisor, bg_expected):
    import torch.nn.functional as F

    crit = BackgroundPenaltyDetectionLoss(_model("yolov8n.yaml"), lambda_bg=2.0, normalize=normalize)
    ln3 = math.log(3)
    logits = torch.tensor([[[0.0, ln3], [ln3, 0.0], [2.0, 2.0], [0.0, 0.0]]])
    fg = torch.tensor([[False, False, True, False]])
    targets = torch.zeros(1, 4, 2)
    targets[0, 2, 0] = 0.5
    assignment = _hand_assignment(fg, targets)
    bce_sum, penalty_sum = crit.classification_sums(_hand_outputs(logits), assignment)
    cls = crit.loss_classification(bce_sum, assignment, torch.tensor(5.0))["cls_loss"]
    bg = crit.loss_background(penalty_sum, assignment, torch.tensor(5.0))["bg_loss"]
    ref_bce_sum = F.binary_cross_entropy_with_logits(logits, targets, reduction="sum")
    torch.testing.assert_close(cls, ref_bce_sum / cls_divisor)
    # the terms are unweighted: lambda_bg (and the cls gain) come from weights()
    torch.testing.assert_close(crit.lambda_bg * bg, torch.tensor(bg_expected))
    assert crit.weights()["bg_loss"] == crit.hyp.cls * 2.0


@pytest.mark.parametrize("mode", ["focal", "none"])
def test_other_modes_run_and_none_adds_nothing(mode):
    model, batch = _model("yolov8n.yaml"), _batch()
    loss, items = BackgroundPenaltyDetectionLoss(model, lambda_bg=1.0, mode=mode)(model(batch["img"]), batch)
    assert torch.isfinite(loss).all()
    assert (items["bg_loss"] == 0) == (mode == "none")


def test_yolo26_end_to_end_head_through_e2e_loss():
    model, batch = _model("yolo26n.yaml"), _batch()
    crit = build_criterion(model, lambda_bg=1.0)
    assert isinstance(crit, E2ELoss)
    loss, items = crit(model(batch["img"]), batch)
    assert "bg_loss" in items and items["bg_loss"] > 0 and torch.isfinite(loss).all()
    set_loss_weights(crit, lambda_bg=0.0)
    ref = E2ELoss(copy.deepcopy(model))
    loss0, _ = crit(model(batch["img"]), batch)
    ref_loss, _ = ref(model(batch["img"]), batch)
    torch.testing.assert_close(loss0[:3], ref_loss, rtol=1e-6, atol=1e-6)


def test_logit_clamp_and_bad_arguments():
    model, batch = _model("yolov8n.yaml"), _batch()
    loss, _ = BackgroundPenaltyDetectionLoss(model, logit_clamp=10.0)(model(batch["img"]), batch)
    assert torch.isfinite(loss).all()
    for kwargs, match in [
        ({"mode": "hinge"}, "mode must be one of"),
        ({"normalize": "sum"}, "normalize"),
        ({"lambda_bg": -1.0}, "lambda_bg must be >= 0"),
        ({"logit_clamp": 0.0}, "logit_clamp"),
    ]:
        with pytest.raises(ValueError, match=match):
            BackgroundPenaltyDetectionLoss(model, **kwargs)


def test_degenerate_and_out_of_image_boxes_give_a_finite_loss_and_gradients():
    model = _model("yolov8n.yaml")
    batch = {
        "img": torch.rand(2, 3, IMGSZ, IMGSZ),
        "batch_idx": torch.tensor([0.0, 0.0, 1.0, 1.0]),
        "cls": torch.tensor([[0.0], [1.0], [2.0], [3.0]]),
        # zero width, zero area, a box sticking out of the image, a one-pixel box
        "bboxes": torch.tensor(
            [[0.5, 0.5, 0.0, 0.3], [0.2, 0.2, 0.0, 0.0], [0.95, 0.95, 0.5, 0.5], [0.5, 0.5, 0.01, 0.01]]
        ),
    }
    preds = model(batch["img"])
    loss, items = BackgroundPenaltyDetectionLoss(model, lambda_bg=1.0)(preds, batch)
    loss.sum().backward()
    assert torch.isfinite(loss).all() and all(torch.isfinite(v) for v in items.values())
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


# --- the criterion's pieces on a hand-built head output ---------------------------------------------------------
# A 32 x 32 image on YOLOv8n's strides 8, 16, 32: anchors 0-15 (4 x 4, centres 4, 12, 20, 28 px), 16-19 (2 x 2,
# centres 8, 24 px) and 20 (centre 16 px). One object of class 1 at xyxy (0, 0, 16, 16) px. TAL's candidates are the
# anchors whose centre lies strictly inside it: 0, 1, 4, 5 (centres 4 and 12) and 16 (centre 8); anchor 20's centre
# lies on its corner. Every candidate predicts the object exactly (CIoU 1) and all scores are sigmoid(0) = 0.5, so
# every candidate has the same alignment and TAL gives each of them the target score max CIoU = 1.
FOREGROUND = [0, 1, 4, 5, 16]


def _exact_distribution(distances: list[float], reg_max: int = 16) -> torch.Tensor:
    """DFL logits ``(4 * reg_max,)`` whose expectation is each half-integer distance: two equal peaks."""
    logits = torch.zeros(4, reg_max)
    for side, d in enumerate(distances):
        logits[side, math.floor(d)] = logits[side, math.ceil(d)] = 100.0
    return logits.view(-1)


def _hand_case(nc: int = 2):
    crit_model = _model("yolov8n.yaml", nc=nc)
    boxes = torch.zeros(1, 64, 21)  # uniform distributions on the anchors that are not candidates
    for anchor, (cx, cy, stride) in {
        0: (4, 4, 8),
        1: (12, 4, 8),
        4: (4, 12, 8),
        5: (12, 12, 8),
        16: (8, 8, 16),
    }.items():
        ltrb_px = (cx - 0, cy - 0, 16 - cx, 16 - cy)
        boxes[0, :, anchor] = _exact_distribution([d / stride for d in ltrb_px])
    preds = {
        "boxes": boxes,
        "scores": torch.zeros(1, nc, 21),
        "feats": [torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 1, 1)],
    }
    batch = {
        "batch_idx": torch.zeros(1),
        "cls": torch.tensor([[1.0]]),
        "bboxes": torch.tensor([[0.25, 0.25, 0.5, 0.5]]),
    }
    return crit_model, preds, batch


def test_assignment_on_a_hand_built_case():
    model, preds, batch = _hand_case()
    crit = BackgroundPenaltyDetectionLoss(model)
    outputs = crit.decode(preds)
    assert outputs.logits.shape == outputs.probs.shape == (1, 21, 2) and outputs.imgsz.tolist() == [32.0, 32.0]
    assignment = crit.assign(outputs, batch)
    assert assignment.fg_mask.nonzero()[:, 1].tolist() == FOREGROUND
    assert torch.equal(assignment.background, ~assignment.fg_mask)
    expected_scores = torch.zeros(1, 21, 2)
    expected_scores[0, FOREGROUND, 1] = 1.0
    torch.testing.assert_close(assignment.target_scores, expected_scores)
    torch.testing.assert_close(assignment.target_bboxes[0, FOREGROUND], torch.tensor([[0.0, 0.0, 16.0, 16.0]] * 5))
    assert assignment.target_gt_idx.eq(0).all()
    torch.testing.assert_close(assignment.normalizer, torch.tensor(5.0))  # max(sum target_scores, 1)
    assert not assignment.target_scores.requires_grad


def test_terms_by_hand_and_weights_in_one_place():
    model, preds, batch = _hand_case()
    crit = BackgroundPenaltyDetectionLoss(model, lambda_bg=2.0)
    outputs = crit.decode(preds)
    assignment = crit.assign(outputs, batch)
    terms = crit.terms(outputs, assignment, assignment.normalizer)
    assert sorted(terms) == sorted(crit.loss_names)
    ln2 = math.log(2)
    # BCE: 21 anchors x 2 classes of softplus(0) = ln 2, the targets' x y term is 0 at x = 0; over N = 5
    torch.testing.assert_close(terms["cls_loss"], torch.tensor(42 * ln2 / 5))
    # penalty: 16 background anchors of max sigmoid 0.5, over N = 5 (``bce`` normalisation), before lambda_bg
    torch.testing.assert_close(terms["bg_loss"], torch.tensor(16 * 0.5 / 5))
    torch.testing.assert_close(terms["box_loss"], torch.tensor(0.0), atol=1e-6, rtol=0)  # exact boxes: CIoU 1
    # DFL: each side's target d + 0.5 sits halfway between the two peaks of probability 1/2: ln 2 per side
    torch.testing.assert_close(terms["dfl_loss"], torch.tensor(ln2))
    loss, items = crit.weigh(terms)
    gains = [crit.hyp.box, crit.hyp.cls, crit.hyp.dfl, crit.hyp.cls * 2.0]
    expected = torch.stack([terms[n] * g for n, g in zip(crit.loss_names, gains, strict=True)])
    torch.testing.assert_close(loss, expected)
    assert list(items) == ["box_loss", "cls_loss", "dfl_loss", "bg_loss"]
    full, _ = crit(preds, batch)  # the Ultralytics call: the same, times the batch size 1
    torch.testing.assert_close(full, expected)


def test_normaliser_floor_is_an_argument():
    model, preds, batch = _hand_case()
    crit = BackgroundPenaltyDetectionLoss(model, lambda_bg=1.0)
    ln2 = math.log(2)
    # a floor of 20 above TAL's normaliser 5: cls 0.5 * 42 ln2 / 20, bg 0.5 * 8 / 20, dfl 1.5 * 5 ln2 / 20 ... over
    # 20 instead of 5, i.e. a quarter of the unfloored items
    _, floored = crit.loss(preds, batch, normalizer_floor=20.0)
    torch.testing.assert_close(floored["cls_loss"], torch.tensor(0.5 * 42 * ln2 / 20))
    torch.testing.assert_close(floored["bg_loss"], torch.tensor(0.5 * 8 / 20))
    torch.testing.assert_close(floored["dfl_loss"], torch.tensor(1.5 * ln2 * 5 / 20))
    # a floor below the normaliser changes nothing, and no call leaves state behind
    _, plain = crit.loss(preds, batch)
    _, low = crit.loss(preds, batch, normalizer_floor=torch.tensor(2.0))
    for name in plain:
        torch.testing.assert_close(low[name], plain[name], rtol=0, atol=0)
    torch.testing.assert_close(plain["cls_loss"], torch.tensor(0.5 * 42 * ln2 / 5))
    _, _, _, assignment = crit.forward(preds, batch, normalizer_floor=20.0)
    torch.testing.assert_close(assignment.normalizer, torch.tensor(5.0))  # the assignment keeps TAL's


def test_set_loss_weights_on_every_wrapper():
    model = _model("yolov8n.yaml")
    crit = BackgroundPenaltyDetectionLoss(model, lambda_bg=1.0)
    set_loss_weights(crit, lambda_bg=0.25)
    assert crit.lambda_bg == 0.25 and crit.weights()["bg_loss"] == crit.hyp.cls * 0.25
    semi = SemiSupervisedLoss(BackgroundPenaltyDetectionLoss(model), lambda_unsup=0.0)
    set_loss_weights(semi, lambda_bg=0.5, lambda_unsup=0.75)
    assert (semi.criterion.lambda_bg, semi.lambda_unsup) == (0.5, 0.75)
    e2e = build_criterion(_model("yolo26n.yaml"), lambda_bg=1.0)
    set_loss_weights(e2e, lambda_bg=0.0)
    assert (e2e.one2many.lambda_bg, e2e.one2one.lambda_bg) == (0.0, 0.0)
    e2e_semi = build_criterion(_model("yolo26n.yaml"), wrap=partial(SemiSupervisedLoss, lambda_unsup=0.0))
    set_loss_weights(e2e_semi, lambda_bg=3.0, lambda_unsup=1.0)
    branches = (e2e_semi.one2many, e2e_semi.one2one)
    assert [(b.lambda_unsup, b.criterion.lambda_bg) for b in branches] == [(1.0, 3.0), (1.0, 3.0)]
    with pytest.raises(ValueError, match=r"unknown loss weights \['lambda_box'\]"):
        set_loss_weights(semi, lambda_box=1.0)
    with pytest.raises(ValueError, match=r"unknown loss weights \['lambda_unsup'\]"):
        set_loss_weights(crit, lambda_unsup=1.0)  # a supervised criterion has no unlabeled part
    with pytest.raises(ValueError, match="lambda_unsup must be >= 0"):
        set_loss_weights(semi, lambda_unsup=-1.0)
    with pytest.raises(TypeError, match="end-to-end head"):
        SemiSupervisedLoss(e2e)


def test_semi_loss_on_an_end_to_end_head_is_e2e_of_each_part():
    model, batch = _model("yolo26n.yaml"), _batch(n_images=3)
    batch["batch_idx"] = torch.tensor([0.0, 0.0, 2.0])  # image 1 labeled without objects, image 2 pseudo-labeled
    crit = build_criterion(model, wrap=partial(SemiSupervisedLoss, lambda_unsup=0.5, density_floor=False))
    plain = E2ELoss(copy.deepcopy(model), loss_fn=BackgroundPenaltyDetectionLoss)
    preds = model(batch["img"])
    # without num_labeled (burn-in, validation) the whole batch is labeled and the u_ items are zero
    loss, items = crit(preds, batch)
    ref, ref_items = plain(preds, batch)
    torch.testing.assert_close(loss, ref)
    assert list(items) == [*ref_items, *(f"u_{k}" for k in ref_items)] and all(items[f"u_{k}"] == 0 for k in ref_items)
    # with it: o2m (L_l + 0.5 L_u) + o2o (L_l + 0.5 L_u) = E2E(labeled) + 0.5 E2E(pseudo-labeled)
    loss, items = crit(preds, {**batch, "num_labeled": 2})
    head = {k: {f: v[:2] if torch.is_tensor(v) else [t[:2] for t in v] for f, v in p.items()} for k, p in preds.items()}
    tail = {k: {f: v[2:] if torch.is_tensor(v) else [t[2:] for t in v] for f, v in p.items()} for k, p in preds.items()}
    sup, _ = plain(head, {k: batch[k][:2] for k in ("batch_idx", "cls", "bboxes")})
    unsup, u_items = plain(tail, {"batch_idx": torch.zeros(1), "cls": batch["cls"][2:], "bboxes": batch["bboxes"][2:]})
    torch.testing.assert_close(loss, sup + 0.5 * unsup)
    torch.testing.assert_close(items["u_cls_loss"], u_items["cls_loss"])


def test_uncertain_pseudo_labels_are_neither_positive_nor_negative_and_the_regression_gate():
    model, preds, batch = _hand_case()
    crit = BackgroundPenaltyDetectionLoss(model, lambda_bg=2.0)
    # an uncertain pseudo-label over the top right quarter, xyxy (16, 0, 32, 16): the anchor centres inside it
    # (borders included) are stride 8's (20|28, 4|12) = anchors 2, 3, 6, 7, stride 16's (24, 8) = 17 and stride 32's
    # (16, 16) = 20; none is foreground. The one object's box is not regressed.
    tiered = {
        **batch,
        "ignore_idx": torch.zeros(1),
        "ignore_bboxes": torch.tensor([[0.75, 0.25, 0.5, 0.5]]),
        "regress": torch.tensor([False]),
    }
    outputs = crit.decode(preds)
    assignment = crit.assign(outputs, tiered)
    assert assignment.ignore_mask.nonzero()[:, 1].tolist() == [2, 3, 6, 7, 17, 20]
    assert assignment.fg_mask.nonzero()[:, 1].tolist() == FOREGROUND  # TAL's assignment is unchanged
    assert not assignment.box_mask.any() and assignment.background.sum() == 21 - 5 - 6
    terms = crit.terms(outputs, assignment, assignment.normalizer)
    ln2 = math.log(2)
    # BCE on the 21 - 6 anchors left, 2 classes of ln 2 each, over N = 5; the penalty on 10 background anchors
    torch.testing.assert_close(terms["cls_loss"], torch.tensor(30 * ln2 / 5))
    torch.testing.assert_close(terms["bg_loss"], torch.tensor(10 * 0.5 / 5))
    # the gate: no box or DFL loss (ungated, DFL is ln 2: test_terms_by_hand_and_weights_in_one_place)
    assert terms["box_loss"].item() == 0 and terms["dfl_loss"].item() == 0
    regressed = crit.terms(outputs, crit.assign(outputs, {**tiered, "regress": torch.tensor([True])}), 5.0)
    torch.testing.assert_close(regressed["dfl_loss"], torch.tensor(ln2))


def test_an_object_the_strong_view_cuts_is_an_ignore_region_with_cut_objects_ignore():
    from semiyolo.pseudo import FilterChain, ScoreFilter
    from semiyolo.pseudo.augment import StrongAugment
    from semiyolo.teacher import MeanTeacher, TeacherPseudoLabeler

    class _TopRightQuarter(torch.nn.Module):  # one candidate: class 0, score 0.9, the image's top right quarter
        def __init__(self) -> None:
            super().__init__()
            self.weight = torch.nn.Parameter(torch.ones(()))

        def forward(self, images):
            decoded = torch.full((images.shape[0], 6, 1), 0.05)
            decoded[:, :, 0] = torch.tensor([24.0, 8.0, 16.0, 16.0, 0.9, 0.05])  # cxcywh pixels, then the scores
            return decoded, {}

    # the strong view zooms the 32 px image 2x about its centre (v -> 2 v - 16): the quarter, xyxy (16, 0, 32, 16),
    # goes to (16, -16, 48, 16), clipped (16, 0, 32, 16): 256 of 1024 px, 25 % < 30 %, cut; its visible part is the
    # region of test_uncertain_pseudo_labels_are_neither_positive_nor_negative_and_the_regression_gate, cxcywh
    # (0.75, 0.25, 0.5, 0.5), whose anchors 2, 3, 6, 7, 17 and 20 are neither positive nor negative
    zoom = StrongAugment(flip=0.0, scale=(2.0, 2.0), translate=0.0, brightness=0, contrast=0, saturation=0)
    model, preds, batch = _hand_case()
    crit = BackgroundPenaltyDetectionLoss(model, lambda_bg=2.0)
    outputs = crit.decode(preds)
    none_labeled = {"img": torch.zeros(0, 3, 32, 32), "batch_idx": torch.zeros(0), "cls": torch.zeros(0, 1)}
    masks = {}
    for cut_objects in ("drop", "ignore"):
        labeler = TeacherPseudoLabeler(FilterChain([ScoreFilter(0.5)]), min_score=0.1, fold=False)
        teacher = MeanTeacher(_TopRightQuarter(), labeler, zoom, pseudo_targets="hard", cut_objects=cut_objects)
        extended, _ = teacher.extend({**none_labeled, "bboxes": torch.zeros(0, 4)}, torch.rand(1, 3, 32, 32))
        assert extended["bboxes"].shape == (0, 4)  # no target: the quarter is cut
        regions = {key: extended[key] for key in ("ignore_idx", "ignore_bboxes") if key in extended}
        masks[cut_objects] = crit.assign(outputs, {**batch, **regions}).ignore_mask
    assert masks["drop"] is None  # dropped: its anchors are background
    assert masks["ignore"].nonzero()[:, 1].tolist() == [2, 3, 6, 7, 17, 20]


def test_a_soft_target_scales_its_objects_class_targets_by_its_weight():
    model, preds, batch = _hand_case()
    crit = BackgroundPenaltyDetectionLoss(model)
    outputs = crit.decode(preds)
    plain = crit.assign(outputs, batch)
    soft = crit.assign(outputs, {**batch, "target_weight": torch.tensor([0.4])})
    assert torch.equal(soft.fg_mask, plain.fg_mask)  # the same anchors are positive
    torch.testing.assert_close(soft.target_scores, 0.4 * plain.target_scores)
    # the 5 foreground anchors fit the object exactly (target score 1 each): N = 5, and with the weight 0.4 * 5 = 2
    torch.testing.assert_close(plain.normalizer, torch.tensor(5.0))
    torch.testing.assert_close(soft.normalizer, torch.tensor(2.0))


def test_each_anchor_takes_the_weight_of_the_object_it_is_assigned_across_images():
    model, batch = _model("yolov8n.yaml"), _batch(n_images=3)  # image 0: two objects, image 1: one, image 2: none
    crit = BackgroundPenaltyDetectionLoss(model)
    outputs = crit.decode(model(batch["img"]))
    weights = torch.tensor([0.2, 0.5, 0.9])
    plain, soft = crit.assign(outputs, batch), crit.assign(outputs, {**batch, "target_weight": weights})
    assert torch.equal(soft.fg_mask, plain.fg_mask) and plain.fg_mask[:2].any(dim=1).all()
    assert not plain.fg_mask[2].any()
    # each foreground anchor's object, read back from the box it was assigned, gives the scale of its class target
    scale = IMGSZ * torch.tensor([1.0, 1.0, 1.0, 1.0])
    objects = torch.cat(
        (batch["bboxes"][:, :2] - batch["bboxes"][:, 2:] / 2, batch["bboxes"][:, :2] + batch["bboxes"][:, 2:] / 2), 1
    )
    objects = objects * scale
    for b, a in plain.fg_mask.nonzero().tolist():
        own = (batch["batch_idx"] == b).nonzero().squeeze(1)
        j = own[(objects[own] - plain.target_bboxes[b, a]).abs().sum(1).argmin()]
        torch.testing.assert_close(soft.target_scores[b, a], weights[j] * plain.target_scores[b, a])
    assert {0.2, 0.5, 0.9} <= {
        round(float(w), 1)
        for w in (soft.target_scores.sum(-1) / plain.target_scores.sum(-1).clamp(min=1e-9))[plain.fg_mask]
    }


def test_split_batch_keeps_the_tiered_targets_of_the_pseudo_labeled_part():
    batch = {
        "batch_idx": torch.tensor([0.0, 1.0, 2.0]),
        "cls": torch.tensor([[0.0], [1.0], [2.0]]),
        "bboxes": torch.rand(3, 4),
        "regress": torch.tensor([True, False, True]),
        "target_weight": torch.tensor([1.0, 0.3, 1.0]),
        "ignore_idx": torch.tensor([1.0, 2.0]),
        "ignore_bboxes": torch.rand(2, 4),
    }
    labeled, pseudo = split_batch(batch, num_labeled=1)
    assert "regress" not in labeled and "ignore_bboxes" not in labeled and "target_weight" not in labeled
    assert pseudo["batch_idx"].tolist() == [0.0, 1.0] and pseudo["regress"].tolist() == [False, True]
    assert pseudo["target_weight"].tolist() == [pytest.approx(0.3), 1.0]
    assert pseudo["ignore_idx"].tolist() == [0.0, 1.0] and torch.equal(pseudo["ignore_bboxes"], batch["ignore_bboxes"])


def test_trust_weights_on_the_anchors_by_hand():
    from semiyolo.pseudo import TrustWeights

    model, preds, batch = _hand_case()
    crit = BackgroundPenaltyDetectionLoss(model, lambda_bg=1.0)
    trust = TrustWeights(
        positive=torch.tensor([0.2, 0.6]), negative=torch.tensor([0.5, 0.25]), box=torch.tensor([0.1, 0.4])
    )
    _, items, _, assignment = crit.forward(preds, batch, trust=trust)
    ln2 = math.log(2)
    # every logit 0, so every BCE element is ln 2. The 5 foreground anchors (an object of class 1) weigh both
    # classes by positive[1] 0.6: 10 ln2 * 0.6; the 16 others weigh class 0 by 0.5 and class 1 by 0.25:
    # 16 ln2 * 0.75. Over N = 5, times the cls gain 0.5.
    torch.testing.assert_close(items["cls_loss"], torch.tensor(0.5 * (6 + 12) * ln2 / 5))
    # the penalty: 16 background anchors of max sigmoid 0.5, each weighed by negative[argmax] = negative[0] 0.5
    torch.testing.assert_close(items["bg_loss"], torch.tensor(0.5 * 16 * 0.5 * 0.5 / 5))
    # DFL ln 2 on each foreground anchor, weighed by box[1] 0.4 (exact boxes: no CIoU loss), times the dfl gain 1.5
    torch.testing.assert_close(items["dfl_loss"], torch.tensor(1.5 * 0.4 * ln2))
    assert assignment.class_weight.shape == (1, 21, 2) and assignment.fg_mask.sum() == 5
    full, _, _, _ = crit.forward(preds, batch, trust=TrustWeights.full(2))
    plain, _, _, _ = crit.forward(preds, batch)
    torch.testing.assert_close(full, plain)  # weights of 1: the criterion without a trust estimate


def test_an_untrusted_teacher_leaves_the_labeled_loss_alone():
    from semiyolo.integrations.ultralytics.semi_criterion import set_trust
    from semiyolo.pseudo import TrustWeights

    model = _model("yolov8n.yaml")
    batch = {**_batch(3), "num_labeled": 2}  # the third image is the pseudo-labeled part, with no pseudo-labels
    preds = model(batch["img"])
    semi = SemiSupervisedLoss(BackgroundPenaltyDetectionLoss(model, lambda_bg=1.0), lambda_unsup=1.0)
    labeled_only, _ = BackgroundPenaltyDetectionLoss(model, lambda_bg=1.0)(_slice_preds(preds, 2), _batch(2))
    untrusted = TrustWeights(torch.zeros(4), torch.zeros(4), torch.zeros(4))
    set_trust(semi, untrusted)
    loss, items = semi(preds, batch)
    torch.testing.assert_close(loss, labeled_only)
    assert all(items[f"u_{name}"] == 0 for name in ("box_loss", "cls_loss", "dfl_loss", "bg_loss"))
    set_trust(semi, None)  # unweighted again: the pseudo-labeled image teaches background
    assert semi(preds, batch)[1]["u_cls_loss"] > 0


def _slice_preds(preds, n):
    from semiyolo.integrations.ultralytics.semi_criterion import _slice

    return _slice(preds, slice(0, n))


def test_a_foreground_anchor_with_a_zero_target_score_takes_its_objects_class_weight():
    from semiyolo.integrations.ultralytics.criterion import weigh_by_trust
    from semiyolo.pseudo import TrustWeights

    # anchor 0 is assigned to an object of class 1 with an alignment (target score) of 0; anchor 1 is background,
    # which TAL labels with the padding class nc = 2
    fg = torch.tensor([[True, False]])
    assignment = Assignment(
        fg,
        torch.zeros(1, 2, 2),
        torch.zeros(1, 2, 4),
        torch.zeros(1, 2, dtype=torch.long),
        torch.tensor(1.0),
        target_labels=torch.tensor([[1, 2]]),
    )
    trust = TrustWeights(torch.tensor([0.2, 0.6]), torch.tensor([0.5, 0.25]), torch.tensor([0.1, 0.4]))
    weighed = weigh_by_trust(assignment, trust, torch.full((1, 2, 2), 0.5))
    torch.testing.assert_close(weighed.class_weight[0, 0], torch.tensor([0.6, 0.6]))  # positive[1], not [0]
    torch.testing.assert_close(weighed.class_weight[0, 1], torch.tensor([0.5, 0.25]))  # negative, per class
    torch.testing.assert_close(weighed.box_weight, torch.tensor([[0.4, 0.0]]))
