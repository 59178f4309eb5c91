"""The penalised criterion against Ultralytics' own on real YOLOv8n / YOLO11n / YOLO26n forwards."""

import copy

import pytest
import torch
from ultralytics.cfg import get_cfg
from ultralytics.nn.tasks import DetectionModel
from ultralytics.utils.loss import E2ELoss, v8DetectionLoss

from semiyolo.integrations.ultralytics import BackgroundPenaltyDetectionLoss, build_criterion, set_lambda_bg

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
    import math

    import torch.nn.functional as F

    crit = BackgroundPenaltyDetectionLoss(_model("yolov8n.yaml"), lambda_bg=2.0, normalize=normalize)
    ln3 = math.log(3)
    logits = torch.tensor([[[0.0, ln3], [ln3, 0.0], [2.0, 2.0], [0.0, 0.0]]])
    fg = torch.tensor([[False, False, True, False]])
    targets = torch.zeros(1, 4, 2)
    targets[0, 2, 0] = 0.5
    cls, bg = crit.loss_classification(logits, logits.sigmoid(), targets, fg, torch.tensor(5.0))
    bce_sum = F.binary_cross_entropy_with_logits(logits, targets, reduction="sum")
    torch.testing.assert_close(cls, bce_sum / cls_divisor)
    torch.testing.assert_close(bg, torch.tensor(bg_expected))


def test_penalty_positive_on_all_background_batch_and_zero_on_all_foreground():
    model = _model("yolov8n.yaml")
    empty = {
        "img": torch.rand(2, 3, IMGSZ, IMGSZ),
        "batch_idx": torch.zeros(0),
        "cls": torch.zeros(0, 1),
        "bboxes": torch.zeros(0, 4),
    }
    loss, items = BackgroundPenaltyDetectionLoss(model, lambda_bg=1.0)(model(empty["img"]), empty)
    assert items["bg_loss"] > 0 and torch.isfinite(loss).all()
    crit = BackgroundPenaltyDetectionLoss(model, lambda_bg=1.0)
    logits = torch.randn(1, 10, 4, requires_grad=True)
    _, bg = crit.loss_classification(
        logits, logits.detach().sigmoid(), torch.zeros(1, 10, 4), torch.ones(1, 10, dtype=torch.bool), torch.tensor(1.0)
    )
    assert bg.item() == 0.0


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
    set_lambda_bg(crit, 0.0)
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
