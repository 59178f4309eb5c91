"""End-to-end: the CLI on generated data (a 2-epoch CPU training) and its answers to bad input."""

import csv

import pytest
import torch
import yaml

from semiyolo.cli import main
from semiyolo.metrics import count_background_false_positives
from tiny_runs import tiny_train


@pytest.fixture
def run_config(tmp_path):
    """Writes ``tmp_path/run.yaml``: a 2-epoch tiny run on ``data`` into ``tmp_path/runs/r``, ``semi`` added."""

    def write(data, **semi):
        cfg = {
            "model": "yolov8n.yaml",
            "data": str(data),
            "train": tiny_train(tmp_path / "runs", "r"),
            "semi": {"burn_in": 0, "lambda_bg": 1.0, "lambda_bg_warmup": 1, **semi},
        }
        path = tmp_path / "run.yaml"
        path.write_text(yaml.safe_dump(cfg))
        return path

    return write


def test_two_epoch_training_logs_bg_loss_and_the_checkpoint_works_in_plain_ultralytics(tiny_run, tiny_data):
    from ultralytics import YOLO

    # tiny_run (trained by 'semiyolo train'): burn-in of one epoch, lambda_bg 0 on epoch 1, then 1 (warm-up of one
    # epoch), semi.logit_clamp 10
    run = tiny_run
    rows = list(csv.DictReader((run / "results.csv").open()))
    assert [float(r["semi/lambda_bg"]) for r in rows] == [0.0, 1.0]
    assert float(rows[0]["train/bg_loss"]) == 0 and float(rows[1]["train/bg_loss"]) > 0
    assert "val/bg_loss" in rows[0]
    summary = yaml.safe_load((run / "summary.json").read_text())
    assert summary["bg_fp/images"] == 2 and "metrics/mAP50-95(B)" in summary
    model = YOLO(str(run / "weights" / "best.pt"))  # a plain Ultralytics detection checkpoint
    assert type(model.model).__name__ == "DetectionModel" and model.model.criterion is None
    results = model.predict(str(tiny_data.parent / "images" / "val"), imgsz=64, conf=0.01, verbose=False)
    assert len(results) == 2  # round(12 * 0.2) validation images


def test_count_background_false_positives_by_hand():
    gt = torch.tensor([[0.0, 0, 10, 10]])
    # IoU 1 (a match), IoU 0.81 (a match), IoU 0 (background) -> 1
    pred = torch.tensor([[0.0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]])
    assert count_background_false_positives(pred, gt) == 1
    assert count_background_false_positives(pred, torch.zeros(0, 4)) == 3
    assert count_background_false_positives(torch.zeros(0, 4), gt) == 0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["semi.lamda_bg=1"], "semi.lamda_bg: unknown key; did you mean 'semi.lambda_bg'?"),
        (["semi.lambda_bg=-1"], "semi.lambda_bg: Input should be greater than or equal to 0"),
        (["semi.lambda_bg_schedule=exp"], "semi.lambda_bg_schedule: Input should be"),
        (["semi.bg_mode=hinge"], "semi.bg_mode: Input should be"),
        (["train.epoch=3"], "train.epoch: not an Ultralytics training argument; did you mean train.epochs?"),
        (["train.epochs=abc"], "train:"),
        (["train.data=x.yaml"], "train.data: set 'data' at the top level"),
        (["data=/nonexistent/data.yaml"], "/nonexistent/data.yaml: dataset file not found"),
        (["model=yolov8n.pt"], "model: yolov8n.pt not found (semiyolo never downloads weights"),
        (["model=yolov99n.yaml"], "model: yolov99n.yaml is neither a file nor an Ultralytics model"),
        (["semi.mode=online"], "semi.unlabeled: online mode needs a folder of unlabeled images"),
        (["semi.mode=online", "semi.unlabeled=/nonexistent"], "semi.unlabeled: /nonexistent is not a folder"),
        (["semi.mode=offline"], "semi.pseudo_labels: offline mode needs the folder"),
        (["model=yolov8n-seg.yaml"], "model: yolov8n-seg.yaml is a segment model; semiyolo trains detection"),
        (["model=yolov8n-cls.yaml"], "model: yolov8n-cls.yaml is a classify model"),
        (["model=yolov8n-pose.yaml"], "model: yolov8n-pose.yaml is a pose model"),
        (["train.imgsz=big"], "train.imgsz: 'imgsz=big' is not a valid image size"),
        (["semi.init_state=/nonexistent/train_state.pt"], "semi.init_state: /nonexistent/train_state.pt not found"),
        (["semi.max_optimizer_steps=0"], "semi.max_optimizer_steps: Input should be greater than or equal to 1"),
    ],
)
def test_bad_input_is_one_clear_line_and_nothing_starts(tmp_path, run_config, tiny_data, capsys, overrides, message):
    assert main(["train", str(run_config(tiny_data)), *overrides]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


def test_init_state_that_is_not_a_train_state_is_refused(tmp_path, run_config, tiny_data, capsys):
    bogus = tmp_path / "train_state.pt"
    torch.save({"epoch": 0}, bogus)
    assert main(["train", str(run_config(tiny_data)), f"semi.init_state={bogus}"]) == 2
    assert "is not a semiyolo train_state.pt (missing model, ema, ema_updates, optimizer)" in capsys.readouterr().err


def test_dataset_without_images_is_refused_before_training(tmp_path, run_config, capsys):
    (tmp_path / "images" / "train").mkdir(parents=True)
    (tmp_path / "images" / "val").mkdir(parents=True)
    data = tmp_path / "data.yaml"
    data.write_text(f"path: {tmp_path}\ntrain: images/train\nval: images/val\nnames: [a]\n")
    assert main(["train", str(run_config(data))]) == 2
    assert "train: no images found" in capsys.readouterr().err


def test_class_count_that_disagrees_with_the_names_is_refused(tmp_path, run_config, tiny_data, capsys):
    import yaml

    data = yaml.safe_load(tiny_data.read_text())
    data.update(nc=len(data["names"]) + 2, path=str(tiny_data.parent))
    bad = tmp_path / "data.yaml"
    bad.write_text(yaml.safe_dump(data))
    assert main(["train", str(run_config(bad))]) == 2
    assert f"{bad}: nc is {data['nc']} but names lists {len(data['names'])} classes" in capsys.readouterr().err


def test_yaml_syntax_error_names_the_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: x\nsemi:\n  lambda_bg: [1\n")
    assert main(["train", str(bad)]) == 2
    assert "bad.yaml: YAML syntax error at line" in capsys.readouterr().err


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["demo"],
        ["train"],
        ["split"],
        ["pseudo-label"],
        ["data"],
        ["data", "synth"],
        ["data", "digits"],
        ["plot"],
        ["plot", "losses"],
    ],
)
def test_every_command_answers_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: semiyolo" in capsys.readouterr().out


def test_data_synth_command(tmp_path, capsys):
    assert main(["data", "synth", "--out", str(tmp_path / "d"), "--images", "5", "--imgsz", "64", "--seed", "2"]) == 0
    assert (tmp_path / "d" / "data.yaml").is_file()
    assert main(["data", "synth", "--out", str(tmp_path / "e"), "--images", "1"]) == 2
    assert "images must be >= 2" in capsys.readouterr().err


def test_gradient_clipping_uses_semi_max_grad_norm(tiny_data):
    from semiyolo.config import SemiConfig
    from semiyolo.integrations.ultralytics import SupervisedTrainer

    trainer = SupervisedTrainer(
        overrides={"model": "yolov8n.yaml", "data": str(tiny_data), "plots": False}, semi=SemiConfig(max_grad_norm=0.5)
    )
    weight = torch.nn.Parameter(torch.zeros(3))
    trainer.model, trainer.ema = torch.nn.ParameterList([weight]), None
    trainer.optimizer = torch.optim.SGD([weight], lr=1.0)
    trainer.scaler = torch.amp.GradScaler("cpu", enabled=False)
    weight.grad = torch.tensor([3.0, 4.0, 0.0])  # norm 5, clipped to 0.5: the SGD step moves 0.5
    trainer.optimizer_step()
    assert weight.detach().norm().item() == pytest.approx(0.5, rel=1e-4)


def test_demo_runs_the_fair_comparison_and_shows_pseudo_labels(tmp_path, capsys):
    from semiyolo.experiments.demo import run_demo

    out = tmp_path / "demo"
    rows = run_demo(out, images=20, imgsz=64, epochs=1, steps=2, batch=4, fraction=0.5, test_images=4)
    runs = {r["run"]: r for r in rows}
    assert sorted(runs) == ["seed0/online_bg1", "seed0/supervised_continued", "supervised_converged"]
    assert runs["seed0/online_bg1"]["optimizer_steps"] == runs["seed0/supervised_continued"]["optimizer_steps"] == 2
    assert runs["seed0/online_bg1"]["lambda_bg"] == 1.0
    assert "| online bg1 | 1 | 2 |" in (out / "ablation" / "ablation.md").read_text()
    pictures = list((out / "ablation" / "seed0" / "online_bg1").glob("pseudo_labels_epoch*.jpg"))
    printed = capsys.readouterr().out
    assert pictures and str(pictures[0]) in printed
    # it ends with the arms on the test images, which chose nothing, the gain's interval and the convergence check
    tail = printed[printed.rindex("## Arms on the test split") :]
    assert "| online bg1 | 1 | 2 |" in tail and "95 % interval over images" in tail
    assert "supervised_converged: too few epochs to judge convergence" in tail


def test_checkpoints_are_written_atomically(tmp_path, run_config, tiny_data, monkeypatch):
    from pathlib import Path

    from ultralytics import YOLO

    from semiyolo.config_loading import load_config
    from semiyolo.integrations.ultralytics import SupervisedTrainer

    cfg = load_config(run_config(tiny_data), ["train.epochs=1"])
    trainer = SupervisedTrainer(overrides={**cfg.train, "model": cfg.model, "data": cfg.data}, semi=cfg.semi)
    trainer.train()
    last = trainer.last
    before = last.read_bytes()

    real_write = Path.write_bytes

    def torn_write(path, data):  # the process dies half way through writing a checkpoint
        real_write(path, data[: len(data) // 2])
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(Path, "write_bytes", torn_write)
    with pytest.raises(KeyboardInterrupt):
        trainer.save_model()
    monkeypatch.undo()
    assert last.read_bytes() == before  # the previous checkpoint is intact
    assert YOLO(str(last)).model is not None
    trainer.save_model()  # the next save replaces the torn part file
    assert not last.with_name("last.pt.part").exists()


class _NaNAfter:
    """Wraps a criterion: its loss turns NaN from call ``start`` on (an injected divergence)."""

    def __init__(self, criterion, start):
        self.criterion, self.start, self.calls = criterion, start, 0

    def __call__(self, preds, batch):
        loss, items = self.criterion(preds, batch)
        self.calls += 1
        return (loss * float("nan"), items) if self.calls > self.start else (loss, items)


def test_non_finite_steps_are_skipped_then_training_stops_with_the_files(tmp_path, run_config, tiny_data, capsys):
    from ultralytics.utils.torch_utils import unwrap_model

    from semiyolo.config_loading import load_config
    from semiyolo.errors import TrainingDiverged
    from semiyolo.integrations.ultralytics import SupervisedTrainer

    cfg = load_config(run_config(tiny_data), ["train.epochs=3", "train.nbs=4", "semi.nonfinite_patience=3"])
    trainer = SupervisedTrainer(overrides={**cfg.train, "model": cfg.model, "data": cfg.data}, semi=cfg.semi)

    def inject(t):
        model = unwrap_model(t.model)
        model.criterion = _NaNAfter(model.criterion, start=2)

    trainer.add_callback("on_train_start", inject)
    weights_before = {}
    trainer.add_callback(
        "on_train_batch_start",
        lambda t: (
            weights_before.update({k: v.detach().clone() for k, v in unwrap_model(t.model).named_parameters()})
            if t.steps.consecutive_skips == 1
            else None
        ),
    )
    with pytest.raises(TrainingDiverged, match=r"3 consecutive steps had a non-finite loss.*\.png"):
        trainer.train()
    assert trainer.steps.skipped_steps == 3
    # the skipped steps did not touch the weights (BatchNorm's running statistics still follow the forwards)
    after = dict(unwrap_model(trainer.model).named_parameters())
    assert weights_before and all(torch.equal(after[k].detach(), v) for k, v in weights_before.items())


def test_a_pt_that_is_not_a_checkpoint_is_refused(tmp_path, run_config, tiny_data, capsys):
    bad = tmp_path / "weights.pt"
    bad.write_text("not a checkpoint")
    assert main(["train", str(run_config(tiny_data)), f"model={bad}"]) == 2
    assert f"model: {bad} is not an Ultralytics checkpoint" in capsys.readouterr().err


def test_exact_resume_can_be_turned_off(tmp_path, run_config, tiny_data):
    from semiyolo.config_loading import load_config
    from semiyolo.integrations.ultralytics import SupervisedTrainer

    cfg = load_config(run_config(tiny_data), ["semi.exact_resume=false", "train.epochs=1"])
    trainer = SupervisedTrainer(overrides={**cfg.train, "model": cfg.model, "data": cfg.data}, semi=cfg.semi)
    trainer.train()
    assert trainer.resume_states() == {} and not (trainer.wdir / "train_state.pt").exists()
    assert trainer.last.is_file()


def test_labeled_repeat_oversamples_the_labeled_images_only(tmp_path, run_config, tiny_data):
    from ultralytics.data import YOLODataset

    from semiyolo.config_loading import load_config
    from semiyolo.data import list_images
    from semiyolo.integrations.ultralytics import SupervisedTrainer

    cfg = load_config(run_config(tiny_data), ["semi.labeled_repeat=3"])
    trainer = SupervisedTrainer(overrides={**cfg.train, "model": cfg.model, "data": cfg.data}, semi=cfg.semi)
    labeled = list_images(tiny_data.parent / "images" / "train")
    dataset = YOLODataset(img_path=trainer.data["train"], imgsz=64, data=trainer.data, task="detect")
    assert len(dataset) == 3 * len(labeled)  # Ultralytics keeps the repeated entries
    assert sorted(set(dataset.im_files)) == sorted(map(str, labeled))


def test_results_csv_keeps_one_column_order_when_epochs_go_unvalidated(tmp_path, run_config, tiny_data):
    # val=False: epochs 1 and 2 are not validated, epoch 3 (the last) is; Ultralytics writes the header from row 1
    config = run_config(tiny_data, burn_in=1)
    assert main(["train", str(config), "train.epochs=3", "train.val=false"]) == 0
    header = (tmp_path / "runs" / "r" / "results.csv").read_text().splitlines()[0].split(",")
    semi = [k for k in header if k.startswith("semi/")]
    assert header[-len(semi) :] == semi and semi[0] == "semi/lambda_bg"  # ours last, in one block
    rows = list(csv.DictReader((tmp_path / "runs" / "r" / "results.csv").open()))
    assert [float(r["semi/lambda_bg"]) for r in rows] == [0.0, 1.0, 1.0]  # burn-in 1, warm-up 1
    assert all(0 < float(r["lr/pg0"]) < 0.1 for r in rows)
