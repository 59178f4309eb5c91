"""Agreement across the teacher's views (semi.teacher_agreement): which fused pseudo-labels every view found, on
which the views' boxes agree, and the tiers that follow."""

import csv

import pytest
import torch
import yaml
from torch import nn

from semiyolo.cli import main
from semiyolo.data import SynthSpec, write_dataset
from semiyolo.pseudo import (
    FilterChain,
    ScoreFilter,
    Tiers,
    tiers_by_agreement,
    view_agreement,
)
from semiyolo.pseudo.augment import StrongAugment
from semiyolo.teacher import MeanTeacher, TeacherPseudoLabeler
from tiny_runs import tiny_train

# four fused detections, xyxy, and what the two views (the image, the mirror mapped back) found
FUSED_BOXES = torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50], [60, 0, 80, 20]])
FUSED_CLASSES = torch.tensor([0, 0, 1, 0])
IMAGE_VIEW = (torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50], [60, 0, 76, 20]]), [0, 0, 1, 0])
MIRROR_VIEW = (torch.tensor([[1.0, 0, 10, 10], [0, 0, 20, 20], [40, 40, 50, 50], [64, 0, 80, 20]]), [0, 0, 2, 0])


def _agreement():
    boxes = [IMAGE_VIEW[0], MIRROR_VIEW[0]]
    classes = [torch.tensor(IMAGE_VIEW[1]), torch.tensor(MIRROR_VIEW[1])]
    return view_agreement(FUSED_BOXES, FUSED_CLASSES, boxes, classes)


def test_view_agreement_by_hand():
    # 0: both views find it; the mirror's best class-0 box is (1, 0, 10, 10), IoU 90 / 100 = 0.9 with the fused box
    #    (its (0, 0, 20, 20) has 100 / 400 = 0.25) and 0.9 with the image view's box: found, agreed
    # 1: the mirror has no class-0 box near it (IoU with (0, 0, 20, 20) is 0, with (1, 0, 10, 10) 0): not found
    # 2: class 1; the mirror has the same box as class 2 only: not found
    # 3: image (60, 0, 76, 20) and mirror (64, 0, 80, 20), 320 px each, IoU 320 / 400 = 0.8 with the fused box:
    #    found; with each other 240 / 400 = 0.6 < 0.75: the views disagree on the box
    agreement = _agreement()
    assert agreement.found_by_every_view.tolist() == [True, False, False, True]
    assert agreement.views_agree_on_box.tolist() == [True, False, False, False]


def test_view_agreement_without_views_or_detections():
    # a view with no detection finds nothing; with no view at all, nothing is contradicted
    empty = view_agreement(FUSED_BOXES, FUSED_CLASSES, [IMAGE_VIEW[0], torch.zeros(0, 4)], [FUSED_CLASSES, []])
    assert not empty.found_by_every_view.any() and not empty.views_agree_on_box.any()
    alone = view_agreement(FUSED_BOXES, FUSED_CLASSES, [], [])
    assert alone.found_by_every_view.all() and alone.views_agree_on_box.all()
    none = view_agreement(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long), [IMAGE_VIEW[0]], [FUSED_CLASSES])
    assert none.found_by_every_view.shape == (0,)


def test_tiers_after_agreement_by_hand():
    # before: 0, 1 and 3 reliable (2 uncertain), and regressed; agreement as in test_view_agreement_by_hand:
    # 0 stays reliable and regressed; 1 (missed by the mirror) becomes uncertain; 2 stays uncertain; 3 stays
    # reliable but is no longer regressed (the views disagree on its box)
    reliable = torch.tensor([True, True, False, True])
    tiers = tiers_by_agreement(Tiers(reliable, reliable.clone(), ~reliable), _agreement())
    assert tiers.reliable.tolist() == [True, False, False, True]
    assert tiers.regressed.tolist() == [True, False, False, False]
    assert tiers.uncertain.tolist() == [False, True, True, False]


class _TwoViews(nn.Module):
    """Ultralytics' outputs for 16 x 16 images on one 1 x 2 anchor grid (anchor 0 left, anchor 1 right; the mirror
    swaps them), 2 classes, other scores 0.05; the images first, then their mirrors:

    - image: anchor 0 a class-1 box of 0.9 at cxcywh (4, 4, 4, 4); anchor 1 a class-0 box of 0.8 at (12, 12, 4, 4);
    - mirror: anchor 1 (the image's anchor 0) class 1 at 0.9, at (12, 4, 6, 4), i.e. (4, 4, 6, 4) mapped back;
      anchor 0 (the image's anchor 1) sees nothing (0.05) at (4, 12, 4, 4), i.e. (12, 12, 4, 4) mapped back.
    """

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(()))

    def forward(self, images):
        n = images.shape[0] // 2
        decoded = torch.full((2 * n, 6, 2), 0.05)
        decoded[:n, :4, 0], decoded[:n, :4, 1] = torch.tensor([4.0, 4, 4, 4]), torch.tensor([12.0, 12, 4, 4])
        decoded[:n, 5, 0], decoded[:n, 4, 1] = 0.9, 0.8
        decoded[n:, :4, 1], decoded[n:, :4, 0] = torch.tensor([12.0, 4, 6, 4]), torch.tensor([4.0, 12, 4, 4])
        decoded[n:, 5, 1] = 0.9
        return decoded, {"feats": [torch.zeros(2 * n, 1, 1, 2)]}


def _mean_teacher(agreement: bool) -> MeanTeacher:
    labeler = TeacherPseudoLabeler(FilterChain([ScoreFilter(0.4)]), min_score=0.1, fold=False, mirror=True)
    identity = StrongAugment(flip=0.0, scale=(1.0, 1.0), translate=0.0, brightness=0, contrast=0, saturation=0)
    return MeanTeacher(_TwoViews(), labeler, identity, pseudo_targets="tiered", agreement=agreement)


def _labeled() -> dict:
    return {
        "img": torch.zeros(1, 3, 16, 16),
        "batch_idx": torch.tensor([0.0]),
        "cls": torch.tensor([[0.0]]),
        "bboxes": torch.tensor([[0.5, 0.5, 0.5, 0.5]]),
    }


def test_a_pseudo_label_a_view_misses_is_uncertain_and_one_they_box_apart_is_not_regressed():
    # fused: anchor 0 class 1 at 0.9, box (4, 4, 5, 4) -> xyxy (1.5, 2, 6.5, 6); anchor 1 class 0 at
    # (0.8 + 0.05) / 2 = 0.425 >= 0.4, box xyxy (10, 10, 14, 14): both reliable, both regressed without agreement.
    # Views: anchor 0 found by both (image (2, 2, 6, 6), mirror (1, 2, 7, 6): IoU 0.8 and 0.83 with the fused box),
    # whose boxes overlap at 16 / 24 = 0.67 < 0.75: not regressed. Anchor 1: the mirror's 0.05 is under the
    # candidates' floor, so the mirror misses it: uncertain, its box an ignore region; 1 demoted.
    plain, agreed = _mean_teacher(False), _mean_teacher(True)
    weak = torch.rand(1, 3, 16, 16)
    batch, reliable = plain.extend(_labeled(), weak)
    assert batch["cls"][:, 0].tolist() == [0.0, 1.0, 0.0] and batch["regress"].tolist() == [True, True, True]
    assert "agreement_demoted" not in plain.filters.stats()
    batch, reliable = agreed.extend(_labeled(), weak)
    assert [len(d) for d in reliable] == [1] and reliable[0].classes.tolist() == [1]
    assert batch["cls"][:, 0].tolist() == [0.0, 1.0] and batch["regress"].tolist() == [True, False]
    assert torch.allclose(batch["bboxes"][1], torch.tensor([0.25, 0.25, 5 / 16, 0.25]))
    assert torch.allclose(batch["ignore_bboxes"], torch.tensor([[0.75, 0.75, 0.25, 0.25]]))
    # the filters counted what they count without agreement, and the agreement its demotion
    assert agreed.filters.stats() == {**plain.filters.stats(), "agreement_demoted": 1}
    agreed.filters.reset_counts()
    assert agreed.filters.stats() == {"0_score/kept": 0, "0_score/dropped": 0, "agreement_demoted": 0}


def test_the_trust_estimate_sees_the_tiers_after_agreement_and_counts_nothing():
    # held-out labels: the class-1 object at (2, 2, 6, 6) and the class-0 object at (10, 10, 14, 14)
    labels = [torch.tensor([[1.0, 2, 2, 6, 6], [0.0, 10, 10, 14, 14]])]
    batches = [(torch.rand(1, 3, 16, 16), labels)]
    plain, agreed = _mean_teacher(False).measure_trust(batches, 2), _mean_teacher(True)
    counts = agreed.measure_trust(batches, 2)
    # with agreement the class-0 detection is uncertain: no class-0 pseudo-label, the object not found but covered
    assert plain.pseudo_labels.tolist() == [1, 1] and plain.found.tolist() == [1, 1]
    assert counts.pseudo_labels.tolist() == [0, 1] and counts.found.tolist() == [0, 1]
    assert counts.covered.tolist() == [1, 1]
    assert agreed.filters.stats() == {"0_score/kept": 0, "0_score/dropped": 0, "agreement_demoted": 0}


def test_agreement_needs_the_flip_ensemble_and_tiers():
    labeler = TeacherPseudoLabeler(FilterChain([]), mirror=False)
    needs = r"teacher_agreement .* needs teacher_flip true \(or teacher_scales .*\) and pseudo_targets tiered"
    with pytest.raises(ValueError, match=needs):
        MeanTeacher(_TwoViews(), labeler, pseudo_targets="tiered", agreement=True)
    with pytest.raises(ValueError, match="got teacher_flip True, pseudo_targets hard"):
        MeanTeacher(_TwoViews(), TeacherPseudoLabeler(FilterChain([]), mirror=True), agreement=True)


def _rows(dets):
    """Detections as rows (score, class, x1, y1, x2, y2), best first."""
    return torch.cat([dets.scores[:, None], dets.classes[:, None].float(), dets.boxes], 1)


def test_the_views_come_from_the_one_forward_and_are_each_teachers_own_detections(opinionated_yolo):
    # the fused detections are detect()'s; view 0 is the teacher alone on the image, view 1 the teacher alone on the
    # mirror, boxes mirrored back (x1, x2 -> 64 - x2, 64 - x1)
    image = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    flip = TeacherPseudoLabeler(FilterChain([]), min_score=0.2, fold=False, mirror=True)
    alone = TeacherPseudoLabeler(FilterChain([]), min_score=0.2, fold=False)
    fused, views = flip.detect_views(opinionated_yolo, image)
    own, mirrored = alone.detect(opinionated_yolo, image), alone.detect(opinionated_yolo, image.flip(-1))
    for i in range(2):
        assert torch.equal(_rows(fused[i]), _rows(flip.detect(opinionated_yolo, image)[i]))
        assert len(views[i]) == 2 and len(own[i]) > 0
        assert torch.allclose(_rows(views[i][0]), _rows(own[i]), atol=1e-4)
        back = _rows(mirrored[i])
        back[:, [2, 4]] = 64 - back[:, [4, 2]]
        assert torch.allclose(_rows(views[i][1]), back, atol=1e-4)
    assert all(v == [] for v in alone.detect_views(opinionated_yolo, image)[1])  # no mirror, no views


def test_without_agreement_the_pseudo_labels_are_todays(opinionated_yolo, monkeypatch):
    # teacher_agreement false takes today's path (detect, never detect_views), and with it on, the candidates and
    # the filters' counts stay the same while the reliable and regressed pseudo-labels can only shrink
    def build(agreement):
        labeler = TeacherPseudoLabeler(FilterChain([ScoreFilter(0.3)]), min_score=0.1, mirror=True)
        return MeanTeacher(opinionated_yolo, labeler, pseudo_targets="tiered", agreement=agreement)

    weak = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    agreed = build(True)
    agreed_candidates, agreed_tiers = agreed.label(weak)
    plain = build(False)
    monkeypatch.setattr(plain.labeler, "detect_views", lambda *a: pytest.fail("detect_views without agreement"))
    candidates, tiers = plain.label(weak)
    assert "agreement_demoted" not in plain.filters.stats()
    assert agreed.filters.stats() == {
        **plain.filters.stats(),
        "agreement_demoted": agreed.filters.rule_counts["agreement_demoted"],
    }
    demoted = unregressed = 0
    for d, a, t, s in zip(candidates, agreed_candidates, tiers, agreed_tiers, strict=True):
        assert torch.equal(_rows(d), _rows(a))
        assert not (s.reliable & ~t.reliable).any() and not (s.regressed & ~t.regressed).any()
        demoted += int((t.reliable & ~s.reliable).sum())
        unregressed += int((t.regressed & ~s.regressed).sum())
    # this teacher's views find the same objects but box some of them apart
    assert demoted == agreed.filters.rule_counts["agreement_demoted"] and unregressed > 0


def test_an_online_run_with_agreement_counts_the_demoted(tmp_path):
    # 2 epochs, burn-in 1 (tests/test_semi_online.py's tiny run), a near-zero score threshold so that the untrained
    # teacher has reliable pseudo-labels: the run trains and writes the new column
    labeled = write_dataset(tmp_path / "labeled", SynthSpec(images=16, imgsz=64, seed=3))
    write_dataset(tmp_path / "unlabeled", SynthSpec(images=24, imgsz=64, seed=7))
    semi = {
        "mode": "online",
        "unlabeled": str(tmp_path / "unlabeled" / "images" / "train"),
        "burn_in": 1,
        "pseudo_min_score": 1e-4,
        "filters": [
            {"name": "score", "params": {"threshold": 0.001}},
            {"name": "cap", "params": {"max_per_image": 20}},
        ],
        "validate_teacher": False,
        "pseudo_targets": "tiered",
        "teacher_flip": True,
        "teacher_agreement": True,
    }
    train = tiny_train(tmp_path / "runs", "semi", epochs=2, nbs=4, seed=0)
    config = tmp_path / "semi.yaml"
    config.write_text(yaml.safe_dump({"model": "yolov8n.yaml", "data": str(labeled), "train": train, "semi": semi}))
    assert main(["train", str(config)]) == 0
    rows = list(csv.DictReader((tmp_path / "runs" / "semi" / "results.csv").open()))
    assert [float(r["semi/lambda_unsup"]) for r in rows] == [0.0, 1.0]
    # the burn-in epoch labels nothing; then a count of the reliable pseudo-labels, reset each epoch (an untrained
    # teacher's outputs are nearly mirror-symmetric, so its views mostly agree: the values are the unit tests')
    assert float(rows[0]["semi/agreement_demoted"]) == 0 and float(rows[1]["semi/0_score/kept"]) > 0
    assert 0 <= float(rows[1]["semi/agreement_demoted"]) <= float(rows[1]["semi/0_score/kept"])
