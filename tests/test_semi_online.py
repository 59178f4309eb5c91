"""Online semi-supervised training on generated images: burn-in, pseudo-labels, logging, kill and resume."""

import csv
import math
from pathlib import Path

import pytest
import torch
import yaml

from semiyolo.batch import split_batch
from semiyolo.cli import main
from semiyolo.data import SynthSpec, write_dataset
from semiyolo.integrations.ultralytics.semi_criterion import SemiSupervisedLoss
from semiyolo.integrations.ultralytics.unlabeled import UnlabeledImages, unlabeled_batches
from tiny_runs import tiny_train


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp("semi")
    labeled = write_dataset(root / "labeled", SynthSpec(images=16, imgsz=64, seed=3))
    write_dataset(root / "unlabeled", SynthSpec(images=24, imgsz=64, seed=7))  # its labels stay hidden
    return labeled, root / "unlabeled" / "images" / "train"


def _config(tmp_path, datasets, epochs=3, **semi):
    labeled, unlabeled = datasets
    cfg = {
        "model": "yolov8n.yaml",
        "data": str(labeled),
        "train": tiny_train(tmp_path / "runs", "semi", epochs=epochs, nbs=4, seed=0),
        "semi": {
            "mode": "online",
            "unlabeled": str(unlabeled),
            "burn_in": 1,
            "lambda_bg_warmup": 1,
            "pseudo_min_score": 1e-4,  # an untrained teacher scores low: let its candidates reach the filters
            "filters": [
                {"name": "dsat", "params": {"init_threshold": 0.5}},
                {"name": "dfl_entropy"},
                {"name": "cap", "params": {"max_per_image": 20}},
            ],
            **semi,
        },
    }
    path = tmp_path / "semi.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_online_run_passes_burn_in_and_logs_the_unsupervised_side(tmp_path, datasets):
    assert main(["train", str(_config(tmp_path, datasets, keep_state=True))]) == 0
    run = tmp_path / "runs" / "semi"
    rows = list(csv.DictReader((run / "results.csv").open()))
    assert [float(r["semi/lambda_unsup"]) for r in rows] == [0.0, 1.0, 1.0]
    assert float(rows[0]["train/u_cls_loss"]) == 0.0
    for row in rows[1:]:
        # an untrained teacher's pseudo-labels mostly fail DSAT: the pseudo-labeled images still give a finite,
        # non-zero classification loss (all background) and a background penalty
        assert float(row["train/u_cls_loss"]) > 0 and float(row["train/u_bg_loss"]) > 0
        kept, dropped = float(row["semi/0_dsat/kept"]), float(row["semi/0_dsat/dropped"])
        assert kept + dropped > 0
    for name in ("circle", "square", "triangle"):
        assert 0.2 <= float(rows[-1][f"semi/thr_{name}"]) <= 0.9
    assert {"semi/pl_precision", "semi/pl_recall", "semi/teacher_conf", "semi/pseudo_per_image"} <= set(rows[0])
    assert {"teacher/mAP50-95(B)", "teacher/precision(B)", "metrics/mAP50-95(B)"} <= set(rows[0])
    held = (run / "dsat_holdout.txt").read_text().split()
    trained = (run / "semi_train.txt").read_text().split()
    assert held and not set(held) & set(trained)
    state = torch.load(run / "weights" / "semi_state.pt", weights_only=False)
    filters = state["mean_teacher"]["filters"]
    assert state["epoch"] == 2 and [f["name"] for f in filters] == ["dsat", "dfl_entropy", "cap"]


def test_semi_loss_is_the_criterion_on_each_part():
    from ultralytics.cfg import get_cfg
    from ultralytics.nn.tasks import DetectionModel

    from semiyolo.integrations.ultralytics import BackgroundPenaltyDetectionLoss

    torch.manual_seed(0)
    model = DetectionModel("yolov8n.yaml", nc=3, verbose=False).train()
    model.args = get_cfg()
    crit = BackgroundPenaltyDetectionLoss(model)
    semi = SemiSupervisedLoss(crit, lambda_unsup=0.5)
    batch = {
        "img": torch.rand(3, 3, 64, 64),
        "batch_idx": torch.tensor([0.0, 1.0, 2.0]),
        "cls": torch.tensor([[0.0], [1.0], [2.0]]),
        "bboxes": torch.tensor([[0.3, 0.3, 0.2, 0.2], [0.6, 0.6, 0.3, 0.3], [0.5, 0.5, 0.4, 0.4]]),
        "num_labeled": 2,
    }
    preds = model(batch["img"])
    loss, items = semi(preds, batch)
    labeled, pseudo = split_batch(batch, 2)
    assert pseudo["batch_idx"].tolist() == [0.0] and labeled["batch_idx"].tolist() == [0.0, 1.0]
    sup, _ = crit(
        {k: (v[:2] if torch.is_tensor(v) else [t[:2] for t in v]) for k, v in preds.items()},
        {**labeled, "img": batch["img"][:2]},
    )
    unsup, u_items = crit(
        {k: (v[2:] if torch.is_tensor(v) else [t[2:] for t in v]) for k, v in preds.items()},
        {**pseudo, "img": batch["img"][2:]},
    )
    torch.testing.assert_close(loss, sup + 0.5 * unsup)
    torch.testing.assert_close(items["u_cls_loss"], u_items["cls_loss"])
    # no pseudo-labels at all in the unlabeled image: still finite
    empty = {**batch, "batch_idx": batch["batch_idx"][:2], "cls": batch["cls"][:2], "bboxes": batch["bboxes"][:2]}
    loss, items = semi(preds, empty)
    assert torch.isfinite(loss).all() and items["u_box_loss"] == 0 and items["u_cls_loss"] > 0


def test_unlabeled_stream_shards_by_rank(datasets):
    full = UnlabeledImages.from_folder(datasets[1], imgsz=64)
    dataset = UnlabeledImages(full.paths[:18], imgsz=64)  # even, so that DistributedSampler pads nothing
    seen = []
    for rank in (0, 1):
        paths = [
            p
            for _, _, batch_paths in unlabeled_batches(dataset, 3, seed=0, rank=rank, world_size=2, max_passes=1)
            for p in batch_paths
        ]
        seen.append(set(paths))
    assert seen[0] and seen[1] and not seen[0] & seen[1]
    assert seen[0] | seen[1] == {str(p) for p in dataset.paths}
    images, hidden, _ = next(unlabeled_batches(dataset, 4, seed=0, max_passes=1))
    assert images.shape == (4, 3, 64, 64) and images.dtype == torch.uint8 and len(hidden) == 4


def test_unlabeled_stream_in_workers_is_the_in_process_stream(datasets):
    """Decoding in loader processes changes where the work happens, not what comes out or in which order, and a
    resume that skips the consumed batches (prefetched ones not counted) lands on the same batch."""
    dataset = UnlabeledImages.from_folder(datasets[1], imgsz=64)
    here = list(unlabeled_batches(dataset, 4, seed=3, max_passes=2))
    there = list(unlabeled_batches(dataset, 4, seed=3, max_passes=2, workers=2))
    assert len(here) == len(there) == 2 * (len(dataset) // 4)
    for (img_a, hid_a, paths_a), (img_b, hid_b, paths_b) in zip(here, there, strict=True):
        assert paths_a == paths_b
        assert torch.equal(img_a, img_b)
        assert all(torch.equal(a, b) for a, b in zip(hid_a, hid_b, strict=True))
    resumed = next(unlabeled_batches(dataset, 4, seed=3, skip=3, workers=2))
    assert resumed[2] == here[3][2]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["semi.filters=[{name: dsat, params: {num_classes: 7}}]"], "num_classes is 7, the dataset has 3"),
        (["semi.filters=[{name: score, params: {threshold: 2}}]"], r"score.threshold must lie in [0, 1]"),
        (["model=yolo26n.yaml"], "the model's head has no DFL distributions"),
        (
            ["semi.pseudo_targets=dense", "train.multi_scale=0.5"],
            "train.multi_scale: 0.5 with semi.pseudo_targets: dense",
        ),
        (["semi.pseudo_targets=dense", "semi.pseudo_mixup=0.5"], "pseudo_mixup: 0.5 with pseudo_targets: dense"),
    ],
)
def test_bad_semi_input_is_refused_before_training(tmp_path, datasets, capsys, overrides, message):
    assert main(["train", str(_config(tmp_path, datasets)), *overrides]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


def test_empty_unlabeled_folder_is_refused(tmp_path, datasets, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["train", str(_config(tmp_path, datasets)), f"semi.unlabeled={tmp_path / 'empty'}"]) == 2
    assert "semi.unlabeled: no images found in" in capsys.readouterr().err


def test_an_epoch_without_pseudo_labels_is_reported(tmp_path, datasets):
    import logging

    from ultralytics.utils import LOGGER

    messages = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    level = LOGGER.level
    LOGGER.addHandler(handler)
    LOGGER.setLevel(logging.WARNING)  # the tests run Ultralytics quiet
    try:
        # a score threshold no untrained teacher reaches: every pseudo-label is dropped
        cfg = _config(tmp_path, datasets, epochs=2, filters=[{"name": "score", "params": {"threshold": 0.99}}])
        assert main(["train", str(cfg)]) == 0
    finally:
        LOGGER.removeHandler(handler)
        LOGGER.setLevel(level)
    report = [m for m in messages if "no pseudo-label survived" in m]
    assert report and "0_score/dropped" in report[0] and "epoch 2" in report[0]


def test_dataset_list_files_resolve_dot_slash_against_their_folder(tmp_path):
    from semiyolo.data import read_image_list

    listing = tmp_path / "lists" / "train.txt"
    listing.parent.mkdir()
    listing.write_text("./images/a.png\n/abs/b.png\n\n")
    assert read_image_list(str(listing)) == [tmp_path / "lists" / "images" / "a.png", Path("/abs/b.png")]


def test_a_rank_with_a_shard_smaller_than_the_batch_still_gets_images(datasets):
    full = UnlabeledImages.from_folder(datasets[1], imgsz=64)
    dataset = UnlabeledImages(full.paths[:6], imgsz=64)  # 4 ranks: shards of 2 images, batch 4
    batches = list(unlabeled_batches(dataset, 4, seed=0, rank=3, world_size=4, max_passes=1))
    assert len(batches) == 1 and batches[0][0].shape[0] == 2


def test_resume_advances_the_end_to_end_loss_schedule():
    from ultralytics.cfg import get_cfg
    from ultralytics.nn.tasks import DetectionModel

    from semiyolo.integrations.ultralytics.criterion import build_criterion, resume_e2e_schedule

    model = DetectionModel("yolo26n.yaml", nc=3, verbose=False)
    model.args = get_cfg(overrides={"epochs": 10})
    criterion = build_criterion(model, wrap=SemiSupervisedLoss)  # E2ELoss over one SemiSupervisedLoss per branch
    resume_e2e_schedule(criterion, start_epoch=5)
    e2e = criterion
    # as Ultralytics' own resume: updates = start_epoch - 1, then one update();
    # o2m = max(1 - 5 / (10 - 1), 0) * (0.8 - 0.1) + 0.1
    assert e2e.updates == 5 and e2e.o2m == pytest.approx((1 - 5 / 9) * 0.7 + 0.1)


def test_corrupt_unlabeled_images_are_skipped_counted_and_listed(tmp_path, datasets):
    import shutil

    folder = tmp_path / "unlabeled"
    shutil.copytree(datasets[1], folder)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (folder / "empty.jpg").write_bytes(b"")
    dataset = UnlabeledImages.from_folder(folder, imgsz=64)
    assert sorted(p.name for p in dataset.skipped) == ["broken.png", "empty.jpg"]
    assert len(dataset) == len(list(datasets[1].glob("*.png")))
    only_broken = tmp_path / "only_broken"
    only_broken.mkdir()
    (only_broken / "x.png").write_bytes(b"nope")
    from semiyolo.errors import DataError

    with pytest.raises(DataError, match="none of the 1 images"):
        UnlabeledImages.from_folder(only_broken, imgsz=64)


def test_same_seed_same_pseudo_labels_and_metrics(tmp_path, datasets):
    def run(name):
        (tmp_path / name).mkdir()
        assert main(["train", str(_config(tmp_path / name, datasets, epochs=2))]) == 0
        rows = list(csv.DictReader((tmp_path / name / "runs" / "semi" / "results.csv").open()))
        return [{k: v for k, v in r.items() if k != "time"} for r in rows]

    first, second = run("a"), run("b")
    assert float(first[1]["semi/0_dsat/kept"]) + float(first[1]["semi/0_dsat/dropped"]) > 0
    assert first == second


def test_images_without_pseudo_labels_can_be_left_out(tmp_path, datasets):
    # every pseudo-label is dropped: with "skip" the unlabeled images never reach the loss
    cfg = _config(
        tmp_path, datasets, epochs=2, filters=[{"name": "score", "params": {"threshold": 0.99}}], empty_unlabeled="skip"
    )
    assert main(["train", str(cfg)]) == 0
    rows = list(csv.DictReader((tmp_path / "runs" / "semi" / "results.csv").open()))
    assert float(rows[1]["semi/lambda_unsup"]) == 1.0
    assert float(rows[1]["train/u_cls_loss"]) == 0.0 and float(rows[1]["train/u_bg_loss"]) == 0.0


def test_pseudo_labeled_part_is_normalised_at_least_like_the_labeled_density():
    from ultralytics.cfg import get_cfg
    from ultralytics.nn.tasks import DetectionModel

    from semiyolo.integrations.ultralytics import BackgroundPenaltyDetectionLoss

    torch.manual_seed(0)
    model = DetectionModel("yolov8n.yaml", nc=3, verbose=False).train()
    model.args = get_cfg()
    crit = BackgroundPenaltyDetectionLoss(model, lambda_bg=0.0)
    grid = torch.tensor([[0.15 + 0.23 * i, 0.15 + 0.23 * j, 0.2, 0.2] for i in range(4) for j in range(4)])
    batch = {  # one labeled image with 16 boxes; four unlabeled ones without any pseudo-label
        "img": torch.rand(5, 3, 64, 64),
        "batch_idx": torch.zeros(16),
        "cls": (torch.arange(16) % 3).float().view(-1, 1),
        "bboxes": grid,
        "num_labeled": 1,
    }
    preds = model(batch["img"])
    labeled, pseudo = split_batch(batch, 1)
    _, _, _, assignment = crit.forward(
        {k: v[:1] if torch.is_tensor(v) else [t[:1] for t in v] for k, v in preds.items()}, labeled
    )
    floor = float(assignment.normalizer) * 4  # the labeled normaliser per image, times four images
    assert floor >= 4  # Ultralytics' normaliser for the empty part is max(0, 1) = 1
    background_bce = torch.nn.functional.binary_cross_entropy_with_logits(
        preds["scores"][1:], torch.zeros_like(preds["scores"][1:]), reduction="sum"
    )
    gain = model.args.cls
    _, items = SemiSupervisedLoss(crit)(preds, batch)
    torch.testing.assert_close(items["u_cls_loss"], (background_bce / floor * gain).detach())
    _, items = SemiSupervisedLoss(crit, density_floor=False)(preds, batch)
    torch.testing.assert_close(items["u_cls_loss"], (background_bce * gain).detach())
    # the floor is an argument of the unlabeled part's call only: the criterion alone is not floored afterwards
    _, alone = crit({k: v[1:] if torch.is_tensor(v) else [t[1:] for t in v] for k, v in preds.items()}, pseudo)
    torch.testing.assert_close(alone["cls_loss"], (background_bce * gain).detach())


def test_nan_recovery_rewinds_the_teacher_with_the_student(tmp_path, datasets):
    from ultralytics.utils.torch_utils import unwrap_model

    from semiyolo.config_loading import load_config
    from semiyolo.integrations.ultralytics import OnlineTrainer

    cfg = load_config(_config(tmp_path, datasets, epochs=4))
    trainer = OnlineTrainer(overrides={**cfg.train, "model": cfg.model, "data": cfg.data}, semi=cfg.semi)
    last_batch = {"now": False, "injected": False}

    class NaNOnLastBatchOfEpoch3:  # the last training loss of epoch 3 is NaN: Ultralytics rewinds to last.pt
        def __init__(self, criterion):
            self.criterion = criterion

        def __call__(self, preds, batch):
            loss, items = self.criterion(preds, batch)
            if last_batch["now"] and not last_batch["injected"]:
                last_batch["injected"] = True
                return loss * float("nan"), items
            return loss, items

    def on_batch(t):
        last_batch["now"] = t.epoch == 2 and t.exact_resume.batch_ni == len(t.train_loader) * 3 - 1

    starts, teachers = [], []

    def on_epoch_start(t):
        starts.append(t.epoch)
        teachers.append({k: v.clone() for k, v in t.mean_teacher.model.state_dict().items()})

    def inject(t):
        model = unwrap_model(t.model)
        model.criterion = NaNOnLastBatchOfEpoch3(model.criterion)

    trainer.add_callback("on_train_start", inject)
    trainer.add_callback("on_train_batch_start", on_batch)
    trainer.add_callback("on_train_epoch_start", on_epoch_start)
    trainer.train()
    assert last_batch["injected"] and starts == [0, 1, 2, 2, 3]  # epoch 3 ran twice
    first, again, after = teachers[2], teachers[3], teachers[4]
    assert all(torch.equal(first[k], again[k]) for k in first)  # rewound to the state saved after epoch 2
    assert not all(torch.equal(first[k], after[k]) for k in first)  # (and the teacher does move in an epoch)


def test_autobatch_leaves_room_for_the_unlabeled_images(tmp_path, datasets, monkeypatch):
    """Ultralytics' own ``DetectionTrainer.auto_batch`` runs (it counts the objects per image), down to the memory
    probe of ``BaseTrainer`` (which needs a GPU): ``batch: -1`` crashed once on a GPU, the signatures disagreeing."""
    from ultralytics.engine.trainer import BaseTrainer
    from ultralytics.nn.tasks import DetectionModel

    from semiyolo.config_loading import load_config
    from semiyolo.integrations.ultralytics import OnlineTrainer

    cfg = load_config(_config(tmp_path, datasets, unlabeled_ratio=2.0))
    trainer = OnlineTrainer(overrides={**cfg.train, "model": cfg.model, "data": cfg.data}, semi=cfg.semi)
    trainer.model = DetectionModel(cfg.model, nc=3, verbose=False)
    probed = {}
    monkeypatch.setattr(
        BaseTrainer,
        "auto_batch",
        lambda self, max_num_obj=0, dataset_size=0: (
            probed.update(max_num_obj=max_num_obj, dataset_size=dataset_size) or 48
        ),
    )
    assert trainer.auto_batch() == 16  # 48 images fit: 16 labeled + 32 unlabeled
    assert probed["dataset_size"] > 0 and probed["max_num_obj"] > 0


def test_teacher_half_life_sets_the_decay_from_the_run_length():
    from types import SimpleNamespace

    from semiyolo.config import SemiConfig
    from semiyolo.integrations.ultralytics import OnlineTrainer

    semi = SemiConfig(mode="online", unlabeled="u", teacher_half_life=0.5, max_optimizer_steps=10)
    # half the teacher's weight on a student state is gone after 0.5 x 10 = 5 steps: d ** 5 = 0.5
    assert OnlineTrainer.teacher_decay(SimpleNamespace(semi=semi)) == pytest.approx(0.5 ** (1 / 5))
    # without a step budget: 4 epochs x 6 batches / accumulate 2 = 12 steps, half-life 6
    by_epochs = SimpleNamespace(
        semi=semi.model_copy(update={"max_optimizer_steps": None}), epochs=4, train_loader=[0] * 6, accumulate=2
    )
    assert OnlineTrainer.teacher_decay(by_epochs) == pytest.approx(0.5 ** (1 / 6))
    assert OnlineTrainer.teacher_decay(SimpleNamespace(semi=SemiConfig(teacher_decay=0.99))) == 0.99


@pytest.mark.parametrize(
    ("targets", "mixup"),
    [
        ("tiered", {}),
        ("dense", {}),
        ("tiered", {"pseudo_mixup": 1.0, "mixup_partners": "labeled"}),
        ("tiered", {"uncertain_targets": "soft", "pseudo_mixup": 1.0}),
        ("dense", {"teacher_flip": True}),
    ],
    ids=["tiered", "dense", "tiered-mixup", "tiered-soft-mixup", "dense-teacher-flip"],
)
def test_online_training_with_tiered_or_dense_pseudo_targets(tmp_path, datasets, targets, mixup):
    # one optimizer step (a batch: nbs = batch) without burn-in: the step's logged unsupervised losses are finite
    # (the passage from burn-in to the online epochs: test_online_run_passes_burn_in_and_logs_the_unsupervised_side)
    filters = [{"name": "score", "params": {"threshold": 0.3}}, {"name": "nms_unc", "params": {"threshold": 0.1}}]
    one_step = {"burn_in": 0, "lambda_bg_warmup": 0, "max_optimizer_steps": 1, "validate_teacher": False}
    config = _config(tmp_path, datasets, epochs=1, pseudo_targets=targets, filters=filters, **one_step, **mixup)
    assert main(["train", str(config)]) == 0
    rows = list(csv.DictReader((tmp_path / "runs" / "semi" / "results.csv").open()))
    last = rows[-1]
    assert float(last["semi/lambda_unsup"]) == 1.0
    for key in ("train/u_cls_loss", "train/u_bg_loss", "train/u_box_loss", "train/u_dfl_loss"):
        assert math.isfinite(float(last[key])), key
    assert float(last["train/u_cls_loss"]) > 0


def test_online_training_with_cut_objects_ignored_and_a_half_life_floor(tmp_path, datasets):
    # three optimizer steps without burn-in, objects the strong view cuts as ignore regions: the losses are finite;
    # the half-life is 0.1 x 3 = 0.3 steps, raised to the floor of 50: decay 0.5 ** (1 / 50) = 0.98623
    filters = [{"name": "score", "params": {"threshold": 0.3}}]
    steps = {"burn_in": 0, "lambda_bg_warmup": 0, "max_optimizer_steps": 3, "validate_teacher": False}
    floor = {"cut_objects": "ignore", "teacher_min_half_life": 50}
    config = _config(tmp_path, datasets, epochs=1, filters=filters, **steps, **floor)
    assert main(["train", str(config)]) == 0
    run = tmp_path / "runs" / "semi"
    last = list(csv.DictReader((run / "results.csv").open()))[-1]
    for key in ("train/u_cls_loss", "train/u_bg_loss", "train/u_box_loss", "train/u_dfl_loss", "train/cls_loss"):
        assert math.isfinite(float(last[key])), key
    written = yaml.safe_load((run / "semi.yaml").read_text())
    assert written["cut_objects"] == "ignore" and written["teacher_min_half_life"] == 50
    assert written["teacher_decay"] == pytest.approx(0.98623, abs=1e-5)


def test_the_mean_teacher_takes_the_runs_mixup_mirroring_and_scale(monkeypatch):
    from types import SimpleNamespace

    from ultralytics.nn.tasks import DetectionModel
    from ultralytics.utils import LOGGER

    from semiyolo.config import SemiConfig
    from semiyolo.integrations.ultralytics.online_teacher import build_mean_teacher

    said = []
    monkeypatch.setattr(LOGGER, "warning", lambda message, *args, **kwargs: said.append(message))
    student = DetectionModel("yolov8n.yaml", nc=3, verbose=False)
    student.criterion = None
    trainer = SimpleNamespace(
        semi=SemiConfig(pseudo_mixup=0.5, mixup_partners="labeled", teacher_flip=True, teacher_scale=1.2),
        model=student,
        data={"nc": 3},
        args=SimpleNamespace(seed=0, fliplr=0.0),  # Ultralytics' fliplr 0: the labeled images are never mirrored
        amp_dtype=lambda: None,
        teacher_decay=lambda: 0.99,
    )
    teacher = build_mean_teacher(trainer)
    assert (teacher.mixup, teacher.mixup_partners) == (0.5, "labeled")
    assert teacher.augment.flip == 0.0 and teacher.augment.moves_boxes  # scale and shift still; no mirror
    # the flip ensemble is what was asked for, with a warning: this teacher never saw a mirrored image
    assert teacher.labeler.mirror and any("teacher_flip with fliplr 0" in m for m in said)
    assert teacher.labeler.scale == 1.2
    trainer.semi, trainer.args.fliplr, said[:] = SemiConfig(), 0.5, []
    default = build_mean_teacher(trainer).labeler
    assert not default.mirror and default.scale == 1.0 and not said


def test_dsat_calibrates_on_the_training_images_without_a_hold_out(tmp_path, datasets):
    config = _config(tmp_path, datasets, epochs=2, dsat_holdout=0, validate_teacher=False)
    assert main(["train", str(config)]) == 0
    run = tmp_path / "runs" / "semi"
    assert not (run / "dsat_holdout.txt").exists() and not (run / "semi_train.txt").exists()
    rows = list(csv.DictReader((run / "results.csv").open()))
    # the thresholds moved from init_threshold 0.5 after each epoch's calibration on the 16 training images
    assert any(float(rows[-1][f"semi/thr_{name}"]) != 0.5 for name in ("circle", "square", "triangle"))


def test_an_image_reviewed_between_epochs_is_trained_as_labeled_from_then_on(tmp_path, datasets):
    from semiyolo.config_loading import load_config
    from semiyolo.data import read_image_list
    from semiyolo.integrations.ultralytics import OnlineTrainer

    reviewed = tmp_path / "reviewed"
    cfg = load_config(_config(tmp_path, datasets, epochs=3, reviewed=str(reviewed), validate_teacher=False))
    trainer = OnlineTrainer(overrides={**cfg.train, "model": cfg.model, "data": cfg.data}, semi=cfg.semi)
    source = sorted(datasets[1].iterdir())[0]
    val_image = sorted((datasets[0].parent / "images" / "val").iterdir())[0]
    seen = []  # (epoch, labeled files, unlabeled files) of every batch

    def review_after_epoch_1(t):
        if t.epoch == 0:  # what 'semiyolo review' writes when a person accepts an image
            (reviewed / "images").mkdir(parents=True)
            (reviewed / "labels").mkdir()
            for image, label in ((source, "0 0.5 0.5 0.25 0.25"), (val_image, "2 0.25 0.75 0.5 0.5")):
                (reviewed / "images" / f"r{image.name}").symlink_to(image)
                (reviewed / "labels" / f"r{image.stem}.txt").write_text(label + "\n")

    trainer.add_callback("on_train_batch_end", lambda t: seen.append((t.epoch, set(t.batch_files), t.unlabeled.files)))
    trainer.add_callback("on_train_epoch_end", review_after_epoch_1)
    trainer.train()
    as_labeled = str(reviewed / "images" / f"r{source.name}")
    labeled_by_epoch = {e: set().union(*(f for ep, f, _ in seen if ep == e)) for e in range(3)}
    assert as_labeled not in labeled_by_epoch[0] and all(as_labeled in labeled_by_epoch[e] for e in (1, 2))
    listing = read_image_list(trainer.save_dir / "labeled_with_reviewed.txt")  # the training list from epoch 2 on
    assert listing == [*trainer.reviewed.labeled_train, reviewed / "images" / f"r{source.name}"]
    drawn = {f for ep, _, files in seen if ep >= 1 for f in files}
    assert drawn and str(source) not in drawn
    remaining = trainer.unlabeled.images()
    assert len(remaining) == len(list(datasets[1].iterdir())) - 1 and source not in remaining
    # the reviewed validation image is validated with the person's label, and never trained on
    validated = trainer.validator.dataloader.dataset
    at = validated.im_files.index(str(reviewed / "images" / f"r{val_image.name}"))
    assert str(val_image) not in validated.im_files and validated.labels[at]["cls"].tolist() == [[2.0]]
    assert all(str(val_image) not in files and f"r{val_image.name}" not in str(files) for _, files, _ in seen)


def test_a_resumed_ddp_rank_draws_its_own_strong_views(monkeypatch):

    from semiyolo.integrations.ultralytics import online_teacher
    from semiyolo.pseudo import FilterChain
    from semiyolo.teacher import MeanTeacher, TeacherPseudoLabeler

    def rank(r):  # a trainer of rank r of 2 that resumes from rank 0's semi_state.pt of epoch 3
        monkeypatch.setattr(online_teacher, "RANK", r)
        monkeypatch.setenv("WORLD_SIZE", "2")
        teacher = MeanTeacher(torch.nn.Linear(1, 1), TeacherPseudoLabeler(FilterChain([])), seed=r)
        online_teacher.restore_mean_teacher(teacher, saved, seed=0, epoch=3)
        return torch.rand(4, generator=teacher.generator)

    saved = MeanTeacher(torch.nn.Linear(1, 1), TeacherPseudoLabeler(FilterChain([])), seed=0).state_dict()
    expected = torch.rand(4, generator=torch.Generator().manual_seed(0))  # rank 0's saved stream, from seed 0
    assert torch.equal(rank(0), expected)  # rank 0 resumes exactly
    # rank 1 from seed 0 + 1 + 2 * (3 + 1) = 9: not rank 0's stream, and not its own first one (seed 1)
    assert torch.equal(rank(1), torch.rand(4, generator=torch.Generator().manual_seed(9)))


def test_a_semi_state_saved_before_the_parts_had_names_is_refused_by_name(tmp_path):
    from functools import partial
    from types import SimpleNamespace

    from semiyolo.errors import ConfigError
    from semiyolo.integrations.ultralytics import OnlineTrainer

    # the flat layout of earlier versions: the teacher's entries and the stream's position side by side
    torch.save({"epoch": 0, "teacher": {}, "filters": [], "unlabeled_consumed": 3}, tmp_path / "semi_state.pt")
    trainer = SimpleNamespace(wdir=tmp_path, device="cpu", mean_teacher=None, unlabeled=None, reviewed=None)
    trainer.stateful_parts = partial(OnlineTrainer.stateful_parts, trainer)
    expected = r"semi_state.pt: saved by a semiyolo older than this one \(no mean_teacher / unlabeled / reviewed"
    with pytest.raises(ConfigError, match=expected):
        OnlineTrainer.read_semi_state(trainer, 0)


@pytest.mark.parametrize("where", ["holdout", "val"])
def test_a_teacher_without_pseudo_labels_worth_trusting_teaches_nothing(tmp_path, datasets, where):
    import logging

    from ultralytics.utils import LOGGER

    messages = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    level = LOGGER.level
    LOGGER.addHandler(handler)
    LOGGER.setLevel(logging.INFO)
    try:
        # no candidate reaches the filters (pseudo_min_score 0.99): no pseudo-label is right and no held-out object
        # is covered, so every weight of the pseudo-labeled part is 0; without the estimate those images would
        # teach background (test_an_epoch_without_pseudo_labels_is_reported)
        cfg = _config(tmp_path, datasets, epochs=2, pseudo_trust=where, pseudo_min_score=0.99)
        assert main(["train", str(cfg)]) == 0
    finally:
        LOGGER.removeHandler(handler)
        LOGGER.setLevel(level)
    rows = list(csv.DictReader((tmp_path / "runs" / "semi" / "results.csv").open()))
    figures = ("precision", "recall", "coverage", "localisation", "weight_positive", "weight_negative", "weight_box")
    assert all(float(row[f"semi/trust_{k}"]) == 0.0 for row in rows for k in figures)
    assert float(rows[1]["semi/lambda_unsup"]) == 1.0
    assert float(rows[1]["train/u_cls_loss"]) == 0.0 and float(rows[1]["train/u_bg_loss"]) == 0.0
    said = [m for m in messages if f"{where} labeled images" in m]
    assert len(said) == 1 and said[0].startswith("epoch 2: pseudo-labels on ") and "negatives 0.00" in said[0]


def test_the_better_of_teacher_and_student_is_shipped_by_rule(tmp_path):
    from semiyolo.integrations.ultralytics.shipping import ship_better, teacher_is_better

    # the teacher's last validation 0.6 against the student's 0.5 (last epoch) and 0.65 (its best epoch): it
    # replaces last.pt, not best.pt
    history = {"metrics/mAP50-95(B)": [0.3, 0.65, 0.5], "teacher/mAP50-95(B)": [0.0, 0.55, 0.6]}
    assert teacher_is_better(history) == (True, False)
    teacher, last, best = (tmp_path / name for name in ("teacher.pt", "last.pt", "best.pt"))
    for path in (teacher, last, best):
        path.write_bytes(path.name.encode())
    assert ship_better(teacher, last, best, history) == ["last.pt"]
    assert last.read_bytes() == b"teacher.pt" and best.read_bytes() == b"best.pt"
    history["teacher/mAP50-95(B)"][-1] = 0.7  # now above every epoch: best.pt too
    assert ship_better(teacher, last, best, history) == ["last.pt", "best.pt"] and best.read_bytes() == b"teacher.pt"
    history["teacher/mAP50-95(B)"][-1] = 0.5  # a tie is not better: the student stays
    last.write_bytes(b"student")
    assert ship_better(teacher, last, best, history) == [] and last.read_bytes() == b"student"
    assert teacher_is_better({"metrics/mAP50-95(B)": [0.5]}) == (False, False)  # the teacher never validated


def test_an_online_run_saves_its_teacher_and_ships_the_better_model(tmp_path, datasets):
    import json

    from ultralytics import YOLO

    cfg = _config(tmp_path, datasets, epochs=2, keep_state=True, ship="better", report_weights="last")
    assert main(["train", str(cfg)]) == 0
    run = tmp_path / "runs" / "semi"
    teacher = YOLO(run / "weights" / "teacher.pt").model  # an Ultralytics checkpoint
    state = torch.load(run / "weights" / "semi_state.pt", weights_only=False)["mean_teacher"]["teacher"]
    for name, value in teacher.state_dict().items():
        torch.testing.assert_close(value.float(), state[name].float().half().float(), msg=name)
    rows = list(csv.DictReader((run / "results.csv").open()))
    student_map, teacher_map = float(rows[-1]["metrics/mAP50-95(B)"]), float(rows[-1]["teacher/mAP50-95(B)"])
    summary = json.loads((run / "summary.json").read_text())
    assert summary["weights"] == "last.pt"
    # the rule either way: the teacher's weights in last.pt exactly when it validated better, and its figures
    shipped = "teacher" if teacher_map > student_map else "student"
    assert summary["shipped"] == shipped
    assert summary["metrics/mAP50-95(B)"] == pytest.approx(
        teacher_map if shipped == "teacher" else student_map, abs=1e-5
    )
    same = (run / "weights" / "last.pt").read_bytes() == (run / "weights" / "teacher.pt").read_bytes()
    assert same == (shipped == "teacher")


def test_online_training_with_object_aware_pseudo_mixup(tmp_path, datasets):
    # two optimizer steps without burn-in, every pseudo-labeled image blended unless its partner's boxes overlap
    # its own at IoU > 0.3: the losses are finite and the refused partners are logged
    filters = [{"name": "score", "params": {"threshold": 0.3}}]
    steps = {"burn_in": 0, "lambda_bg_warmup": 0, "max_optimizer_steps": 2, "validate_teacher": False}
    mixup = {"pseudo_mixup": 1.0, "mixup_max_overlap": 0.3}
    config = _config(tmp_path, datasets, epochs=1, filters=filters, **steps, **mixup)
    assert main(["train", str(config)]) == 0
    run = tmp_path / "runs" / "semi"
    last = list(csv.DictReader((run / "results.csv").open()))[-1]
    for key in ("train/u_cls_loss", "train/u_bg_loss", "train/u_box_loss", "train/cls_loss"):
        assert math.isfinite(float(last[key])), key
    assert float(last["semi/mixup_refused"]) >= 0
    assert yaml.safe_load((run / "semi.yaml").read_text())["mixup_max_overlap"] == 0.3


def test_teacher_sure_negatives_set_the_uncertain_floor_from_the_trust_images(tmp_path, datasets):
    cfg = _config(tmp_path, datasets, epochs=2, pseudo_trust="val", negative_coverage=0.9, pseudo_min_score=0.5)
    assert main(["train", str(cfg)]) == 0
    rows = list(csv.DictReader((tmp_path / "runs" / "semi" / "results.csv").open()))
    # before the first estimate the configured floor; after it, one between 0.01 and the configured 0.5
    assert float(rows[0]["semi/uncertain_floor"]) == 0.5
    assert 0.01 <= float(rows[1]["semi/uncertain_floor"]) <= 0.5


def test_online_training_with_pseudo_mosaic_then_mixup(tmp_path, datasets):
    # three optimizer steps without burn-in, every pseudo-labeled image made a mosaic once the cache holds three
    # images, then blended: the losses are finite and the mosaics are counted
    filters = [{"name": "score", "params": {"threshold": 0.3}}]
    steps = {"burn_in": 0, "lambda_bg_warmup": 0, "max_optimizer_steps": 3, "validate_teacher": False}
    mixing = {"pseudo_mosaic": 1.0, "mosaic_cache": 3, "pseudo_mixup": 0.5}
    config = _config(tmp_path, datasets, epochs=1, filters=filters, **steps, **mixing)
    assert main(["train", str(config)]) == 0
    run = tmp_path / "runs" / "semi"
    last = list(csv.DictReader((run / "results.csv").open()))[-1]
    for key in ("train/u_cls_loss", "train/u_bg_loss", "train/u_box_loss", "train/cls_loss"):
        assert math.isfinite(float(last[key])), key
    # 4 pseudo-labeled images a step (8 images seen a step, half of them labeled): the first step fills the cache
    # with 4, the second and third make every one a mosaic: 2 x 4 = 8
    assert float(last["semi/images_seen"]) == 24 and float(last["semi/mosaics"]) == 8
    assert yaml.safe_load((run / "semi.yaml").read_text())["pseudo_mosaic"] == 1.0


def test_online_training_with_fused_views_more_scales_agreement_and_relabelling(tmp_path, datasets):
    filters = [{"name": "score", "params": {"threshold": 0.3}}]
    steps = {"burn_in": 0, "lambda_bg_warmup": 0, "max_optimizer_steps": 3, "validate_teacher": False}
    steps["keep_state"] = True  # the store in semi_state.pt is read below
    views = {"teacher_flip": True, "teacher_fusion": "boxes", "teacher_scales": [1.25], "teacher_agreement": True}
    config = _config(
        tmp_path, datasets, epochs=1, filters=filters, pseudo_targets="tiered", relabel_every=2, **steps, **views
    )
    assert main(["train", str(config)]) == 0
    last = list(csv.DictReader((tmp_path / "runs" / "semi" / "results.csv").open()))[-1]
    for key in ("train/u_cls_loss", "train/u_bg_loss", "train/cls_loss"):
        assert math.isfinite(float(last[key])), key
    state = torch.load(tmp_path / "runs" / "semi" / "weights" / "semi_state.pt", weights_only=False)
    store = state["mean_teacher"]["label_store"]
    assert store["every"] == 2 and store["visits"] and set(store["entries"]) <= set(store["visits"])


def test_online_training_with_the_oracle_pseudo_labels(tmp_path, datasets):
    # two steps with the unlabeled images' hidden labels as pseudo-labels: the audit, which holds the pseudo-labels
    # against the same hidden labels, finds them perfect
    steps = {"burn_in": 0, "lambda_bg_warmup": 0, "max_optimizer_steps": 2, "validate_teacher": False}
    config = _config(tmp_path, datasets, epochs=1, oracle_pseudo_labels=True, **steps)
    assert main(["train", str(config)]) == 0
    last = list(csv.DictReader((tmp_path / "runs" / "semi" / "results.csv").open()))[-1]
    assert float(last["semi/pl_precision"]) == 1.0 and float(last["semi/pl_recall"]) == 1.0
    assert math.isfinite(float(last["train/u_box_loss"])) and float(last["train/u_box_loss"]) > 0
