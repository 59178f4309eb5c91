"""The ways Ultralytics users already train and log work with semiyolo: ``YOLO(...).train(trainer=...)``, and the
``semi/`` statistics reach ``trainer.metrics``, so Ultralytics' own loggers (TensorBoard here) record them."""

import csv
import os
import subprocess
import sys
import textwrap

import pytest

from semiyolo.data import SynthSpec, write_dataset
from semiyolo.errors import ConfigError
from tiny_runs import tiny_train

ONLINE = {"burn_in": 1, "lambda_bg_warmup": 1, "pseudo_min_score": 1e-4, "filters": [{"name": "score"}]}
SEMI_KEYS = (
    "semi/lambda_unsup",
    "semi/pl_recall",
    "semi/pseudo_per_image",
    "semi/0_score/kept",
    "semi/optimizer_steps",
)


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    root = tmp_path_factory.mktemp("idioms")
    labeled = write_dataset(root / "labeled", SynthSpec(images=8, imgsz=64, seed=3))
    write_dataset(root / "unlabeled", SynthSpec(images=8, imgsz=64, seed=7))  # hidden labels: the audit's recall
    return labeled, root / "unlabeled" / "images" / "train"


def _train_args(tmp_path, labeled, name):
    return {"data": str(labeled), **tiny_train(tmp_path, name, nbs=4, seed=0, exist_ok=True)}


def test_yolo_train_with_semi_trainer(tmp_path, split):
    from ultralytics import YOLO

    from semiyolo.integrations.ultralytics import OnlineTrainer, semi_trainer

    labeled, unlabeled = split
    model = YOLO("yolov8n.yaml")
    logged = []  # what Ultralytics' loggers read at each epoch's end
    model.add_callback("on_fit_epoch_end", lambda trainer: logged.append(set(trainer.metrics)))
    model.train(
        **_train_args(tmp_path, labeled, "yolo"),
        trainer=semi_trainer(mode="online", unlabeled=str(unlabeled), **ONLINE),
    )
    assert isinstance(model.trainer, OnlineTrainer)
    rows = list(csv.DictReader((tmp_path / "yolo" / "results.csv").open()))
    assert [float(r["semi/lambda_unsup"]) for r in rows] == [0.0, 1.0]  # burn-in, then the pseudo-labeled part
    assert float(rows[1]["train/u_cls_loss"]) > 0 and float(rows[0]["train/u_cls_loss"]) == 0
    assert len(logged) >= 2 and all(set(SEMI_KEYS) <= keys for keys in logged[:2])  # then the final evaluation
    assert (tmp_path / "yolo" / "weights" / "last.pt").is_file()
    # our callbacks stayed with the trainer: a later model.train() with Ultralytics' own trainer would call them
    ours = {f for fns in model.trainer.callbacks.values() for f in fns if f.__module__.startswith("semiyolo.")}
    assert ours and not ours & {f for fns in model.callbacks.values() for f in fns}


def test_semi_trainer_validates_its_settings_first(tmp_path, monkeypatch):
    from semiyolo.integrations.ultralytics import SupervisedTrainer, semi_trainer

    monkeypatch.chdir(tmp_path)
    (tmp_path / "p").mkdir()  # semi_trainer checks that the pseudo-label folder is one

    with pytest.raises(ConfigError, match=r"semi\.lambda_bg: .*greater than or equal to 0"):
        semi_trainer(lambda_bg=-1)
    with pytest.raises(ConfigError, match=r"semi\.lamda_bg: unknown key; did you mean 'semi\.lambda_bg'"):
        semi_trainer({"lamda_bg": 1})
    assert semi_trainer({"lambda_bg": 2.0}, mode="offline", pseudo_labels="p").func is SupervisedTrainer


def test_tensorboard_records_the_semi_statistics(tmp_path, split):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from semiyolo.integrations.ultralytics import semi_trainer  # noqa: F401  (importable before the subprocess)

    labeled, unlabeled = split
    # Ultralytics switches its TensorBoard logger off under pytest: train in a child process, with its own settings
    script = textwrap.dedent(f"""
        from ultralytics import YOLO
        from ultralytics.utils import SETTINGS
        from semiyolo.integrations.ultralytics import semi_trainer
        SETTINGS.update(tensorboard=True)
        YOLO("yolov8n.yaml").train(**{_train_args(tmp_path, labeled, "tb")!r},
                                   trainer=semi_trainer(mode="online", unlabeled={str(unlabeled)!r}, **{ONLINE!r}))
    """)
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    env.update(YOLO_CONFIG_DIR=str(tmp_path / "config"), YOLO_OFFLINE="1")
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    assert set(SEMI_KEYS) <= set(events.Tags()["scalars"])
    rows = list(csv.DictReader((tmp_path / "tb" / "results.csv").open()))
    logged = {e.step: e.value for e in events.Scalars("semi/optimizer_steps")}
    assert logged == {i + 1: pytest.approx(float(r["semi/optimizer_steps"])) for i, r in enumerate(rows)}
