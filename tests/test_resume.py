"""Exact resume: a run killed with SIGKILL at a random moment and resumed ends with the same weights as one
that never stopped (CPU, one process, workers=0), supervised and online; and the pieces that make it so."""

import csv
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
import yaml

from semiyolo.data import SynthSpec, write_dataset
from semiyolo.integrations.ultralytics.exact_resume import read_state, write_state
from semiyolo.integrations.ultralytics.unlabeled import UnlabeledImages, unlabeled_batches
from semiyolo.reproducibility import PassShuffler, pass_order, rng_state, set_rng_state
from tiny_runs import tiny_train

ENV = {**os.environ, "YOLO_OFFLINE": "1"}


def test_pass_shuffler_continues_a_stream_from_its_pass_count():
    straight = PassShuffler(10, seed=3)
    orders = [list(straight) for _ in range(4)]
    assert all(sorted(o) == list(range(10)) for o in orders) and orders[0] != orders[1]
    resumed = PassShuffler(10, seed=3)
    resumed.load_state_dict({"passes": 2})
    assert [list(resumed), list(resumed)] == orders[2:] and resumed.state_dict() == {"passes": 4}
    assert orders[0] == pass_order(10, 3, 0) != pass_order(10, 4, 0)


def test_rng_state_round_trip():
    state = rng_state()
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    set_rng_state(state)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first


def test_unlabeled_stream_skips_what_was_consumed(tmp_path):
    write_dataset(tmp_path / "u", SynthSpec(images=7, imgsz=32, seed=1))
    dataset = UnlabeledImages.from_folder(tmp_path / "u" / "images" / "train", imgsz=32)
    stream = unlabeled_batches(dataset, 2, seed=5)
    paths = [next(stream)[2] for _ in range(8)]  # 3 batches a pass (the odd image is dropped), 2 passes and more
    resumed = unlabeled_batches(dataset, 2, seed=5, skip=5)
    assert [next(resumed)[2] for _ in range(3)] == paths[5:]


def test_state_generations_survive_a_kill_between_the_state_and_the_checkpoint(tmp_path):
    path = tmp_path / "train_state.pt"
    write_state(path, {"epoch": 2, "x": 1})
    write_state(path, {"epoch": 3, "x": 2})  # killed here: last.pt still holds epoch 2 (0-based)
    assert read_state(path, 2)["x"] == 1 and read_state(path, 3)["x"] == 2
    assert read_state(path, 1) is None  # neither generation: Ultralytics' approximate resume, with a warning


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    labeled = write_dataset(root / "labeled", SynthSpec(images=24, imgsz=64, seed=0))
    write_dataset(root / "unlabeled", SynthSpec(images=16, imgsz=64, seed=7))
    return labeled, root / "unlabeled" / "images" / "train"


def _config(tmp_path, data, name, online, nbs, epochs=4, **semi_settings):
    labeled, unlabeled = data
    labeled_settings = {k: v for k, v in semi_settings.items() if k in ("labeled_mosaic", "mosaic_cache")}
    semi = {
        "mode": "online",
        "unlabeled": str(unlabeled),
        "burn_in": 2,
        "keep_state": True,  # the finished runs' state files are compared
        "pseudo_min_score": 1e-4,  # an untrained teacher scores low: let its candidates reach the filters
        "filters": [
            {"name": "dsat", "params": {"init_threshold": 0.2}},
            {"name": "cap", "params": {"max_per_image": 5}},
        ],
        **semi_settings,
    }
    cfg = {
        "model": "yolov8n.yaml",
        "data": str(labeled),
        "train": tiny_train(tmp_path, name, epochs=epochs, nbs=nbs, seed=0),
        "semi": semi if online else {"lambda_bg_warmup": 1, "burn_in": 1, "keep_state": True, **labeled_settings},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _train_beside(config, run):
    """Start ``semiyolo train config`` (into the folder ``run``) in a child process, its output into ``run.log``, and
    return once it saved its first epoch's state: its datasets' label caches are written by then, and a run started
    next beside it reads them instead of writing the same files at once. It trains on while the test goes on (on CPU
    its steps give the same bits whether or not another process runs)."""
    command = [sys.executable, "-m", "semiyolo", "train", str(config)]
    with open(run.with_suffix(".log"), "w") as out:
        process = subprocess.Popen(command, env=ENV, stdout=out, stderr=out)
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None and not (run / "weights" / "train_state.pt").is_file():
        time.sleep(0.05)
    return process


def _finished(process, run):
    """Wait for a run started by ``_train_beside``: it must end well."""
    assert process.wait() == 0, run.with_suffix(".log").read_text()[-2000:]


def _kill_at_random_moment(config, state_file, seed, saved_epoch=1):
    """SIGKILL the run somewhere in the epochs after epoch ``saved_epoch`` (0-based) was saved."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "semiyolo", "train", str(config)],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None:
            last = state_file.with_name("last.pt")  # a resumable run: its first checkpoint is complete
            if last.is_file() and torch.load(state_file, weights_only=False)["epoch"] >= saved_epoch:
                break
            time.sleep(0.05)
        time.sleep(random.Random(seed).uniform(0.0, 1.0))
        assert proc.poll() is None, "the run ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize("nbs", [4, 16, 64], ids=["nbs=batch", "nbs=4xbatch-mosaics", "nbs=64"])
@pytest.mark.parametrize("online", [False, True], ids=["supervised", "online"])
def test_killed_and_resumed_run_ends_bit_identical_to_an_uninterrupted_one(tmp_path, data, online, nbs):
    # batch 4: nbs 16 accumulates 4 batches a step, across epochs of 5 batches; nbs 64 accumulates up to 16 (the
    # warm-up ramps it from 1), so the run's few steps straddle the checkpoint. With nbs 16 the runs also make
    # mosaics (labeled, and pseudo-labeled online), whose caches of earlier images a resume must restore, and the
    # online teacher labels each unlabeled image every other visit, its store of detections restored too
    mosaics = {"labeled_mosaic": 0.5, "pseudo_mosaic": 0.5, "mosaic_cache": 4, "relabel_every": 2} if nbs == 16 else {}
    straight = _config(tmp_path, data, "straight", online, nbs, **mosaics)
    straight_run = _train_beside(straight, tmp_path / "straight")
    killed = _config(tmp_path, data, "killed", online, nbs, **mosaics)
    weights = tmp_path / "killed" / "weights"
    try:
        _kill_at_random_moment(killed, weights / "train_state.pt", seed=int(online))
    finally:
        _finished(straight_run, tmp_path / "straight")
    resumed = subprocess.run(
        [sys.executable, "-m", "semiyolo", "train", str(killed), f"train.resume={weights / 'last.pt'}"],
        env={**ENV, "YOLO_VERBOSE": "True"},
        capture_output=True,
        text=True,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "Resumed exactly" in resumed.stdout + resumed.stderr
    files = ["train_state.pt"] + (["semi_state.pt"] if online else [])
    for name in files:
        a = torch.load(tmp_path / "straight" / "weights" / name, weights_only=False)
        b = torch.load(weights / name, weights_only=False)
        assert a["epoch"] == b["epoch"] == 3  # the last of 4 epochs (0-based): killed in epoch 2 or 3
        if name == "semi_state.pt":  # DSAT's thresholds, the unlabeled stream's position, the augmentation's generator
            assert a["unlabeled"] == b["unlabeled"] and a["unlabeled"]["consumed"] > 0
            a, b = a["mean_teacher"], b["mean_teacher"]
            assert a["filters"] == b["filters"]
            assert torch.equal(a["augment_generator"], b["augment_generator"])
            _same_cache(a["mosaic_cache"], b["mosaic_cache"], filled=bool(mosaics))
            assert a["label_store"]["visits"] == b["label_store"]["visits"]
            assert a["label_store"]["entries"].keys() == b["label_store"]["entries"].keys()
            assert bool(a["label_store"]["entries"]) == bool(mosaics)
        for part in ("model", "ema") if name == "train_state.pt" else ("teacher",):
            for key, value in a[part].items():
                assert torch.equal(value, b[part][key]), f"{name} {part} {key} differs"
        if name == "train_state.pt":  # the global generators continue as the unbroken run's did
            assert _same_rng(a["rng"], b["rng"])
            _same_cache(a["labeled_mosaic_cache"], b["labeled_mosaic_cache"], filled=bool(mosaics))
        assert (
            a["ema_updates" if name == "train_state.pt" else "teacher_updates"]
            == b["ema_updates" if name == "train_state.pt" else "teacher_updates"]
        )
    # one row per epoch, as in the straight run (an epoch logged, then trained again after the kill, is not doubled)
    assert _box_loss_by_epoch(tmp_path / "killed") == _box_loss_by_epoch(tmp_path / "straight")


def _same_cache(a, b, filled):
    """Two saved mosaic caches hold the same images and targets (and some, where the run made mosaics)."""
    assert a["size"] == b["size"] and len(a["tiles"]) == len(b["tiles"]) and bool(a["tiles"]) == filled
    for x, y in zip(a["tiles"], b["tiles"], strict=True):
        assert torch.equal(x["image"], y["image"]) and torch.equal(x["ignored"], y["ignored"])
        assert x["targets"].keys() == y["targets"].keys()
        assert all(torch.equal(v, y["targets"][k]) for k, v in x["targets"].items())


def _same_rng(a, b):
    return (
        a["python"] == b["python"]
        and all(np.array_equal(x, y) for x, y in zip(a["numpy"], b["numpy"], strict=True))
        and torch.equal(a["torch"], b["torch"])
    )


def _box_loss_by_epoch(run):
    with open(run / "results.csv") as f:
        return [(row["epoch"], row["train/box_loss"]) for row in csv.DictReader(f)]


def test_a_run_killed_before_its_first_checkpoint_says_so(tmp_path, data, capsys):
    from semiyolo.cli import main

    config = _config(tmp_path, data, "early", online=False, nbs=4)
    weights = tmp_path / "early" / "weights"
    weights.mkdir(parents=True)
    (weights / "last.pt.part").write_bytes(b"half a checkpoint")
    assert main(["train", str(config), f"train.resume={weights / 'last.pt'}"]) == 2
    assert "killed before its first checkpoint was complete; start it again without train.resume" in (
        capsys.readouterr().err
    )


def test_results_rows_of_epochs_after_the_checkpoint_are_dropped(tmp_path):
    from semiyolo.integrations.ultralytics.exact_resume import drop_logged_epochs_after

    path = tmp_path / "results.csv"
    path.write_text("epoch,loss\n1,0.5\n2,0.4\n3,0.3\n")  # epoch 3 logged, killed before its checkpoint
    drop_logged_epochs_after(path, 2)
    assert path.read_text() == "epoch,loss\n1,0.5\n2,0.4\n"


@pytest.fixture(scope="module")
def reviewed_runs(tmp_path_factory, data):
    """An online run whose reviewed folder holds two unlabeled images: trained straight through, and killed after
    its first epoch (a copy of the killed run's folder kept as it was at the kill)."""
    root = tmp_path_factory.mktemp("reviewed")
    unlabeled = data[1]
    reviewed = root / "reviewed"
    (reviewed / "images").mkdir(parents=True)
    (reviewed / "labels").mkdir()
    for image in sorted(unlabeled.iterdir())[:2]:  # what 'semiyolo review' writes when a person accepts an image
        (reviewed / "images" / image.name).symlink_to(image)
        (reviewed / "labels" / f"{image.stem}.txt").write_text("0 0.5 0.5 0.25 0.25\n")
    # burn_in 0: the unlabeled stream starts in the first epoch, before the kill (its loader drew from the global
    # torch generator when a resume reopened it: the saved generator state differed, the weights did not)
    overrides = {"epochs": 3, "reviewed": str(reviewed), "burn_in": 0}
    straight = _config(root, data, "straight", online=True, nbs=4, **overrides)
    straight_run = _train_beside(straight, root / "straight")
    killed = _config(root, data, "killed", online=True, nbs=4, **overrides)
    try:
        _kill_at_random_moment(killed, root / "killed" / "weights" / "train_state.pt", seed=0, saved_epoch=0)
        shutil.copytree(root / "killed", root / "at_the_kill", symlinks=True)
    finally:
        _finished(straight_run, root / "straight")
    return root


def test_a_run_with_reviewed_images_resumes_bit_identical_to_an_uninterrupted_one(reviewed_runs):
    # the saved mosaic buffer indexed the loader rebuilt with the reviewed images: IndexError at the resume, before
    weights = reviewed_runs / "killed" / "weights"
    resume = f"train.resume={weights / 'last.pt'}"
    resumed = subprocess.run(
        [sys.executable, "-m", "semiyolo", "train", str(reviewed_runs / "killed.yaml"), resume],
        env={**ENV, "YOLO_VERBOSE": "True"},
        capture_output=True,
        text=True,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "Resumed exactly" in resumed.stdout + resumed.stderr
    straight = reviewed_runs / "straight" / "weights"
    a, b = (torch.load(w / "train_state.pt", weights_only=False) for w in (straight, weights))
    assert a["epoch"] == b["epoch"] == 2
    assert all(torch.equal(value, b["model"][key]) for key, value in a["model"].items())
    assert _same_rng(a["rng"], b["rng"])
    a, b = (torch.load(w / "semi_state.pt", weights_only=False) for w in (straight, weights))
    assert a["reviewed"] == b["reviewed"] and len(a["reviewed"]["training"]) == 2
    a, b = a["mean_teacher"], b["mean_teacher"]
    assert all(torch.equal(value, b["teacher"][key]) for key, value in a["teacher"].items())
    assert _box_loss_by_epoch(reviewed_runs / "killed") == _box_loss_by_epoch(reviewed_runs / "straight")


def test_a_resume_with_changed_semi_settings_is_refused_before_training(reviewed_runs, capsys):
    from semiyolo.cli import main

    run = reviewed_runs / "at_the_kill"
    config = reviewed_runs / "killed.yaml"
    before = sorted((p.name, p.stat().st_mtime_ns) for p in run.rglob("*"))
    resume = f"train.resume={run / 'weights' / 'last.pt'}"
    assert main(["train", str(config), "semi.pseudo_mixup=0.5", "semi.teacher_flip=true", resume]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "semi.pseudo_mixup: run 0.0, now 0.5; semi.teacher_flip: run False, now True" in err
    assert sorted((p.name, p.stat().st_mtime_ns) for p in run.rglob("*")) == before  # nothing trained or written


def test_resuming_a_finished_run_says_so(reviewed_runs, capsys):
    from semiyolo.cli import main

    last = reviewed_runs / "straight" / "weights" / "last.pt"
    assert main(["train", str(reviewed_runs / "straight.yaml"), f"train.resume={last}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith(
        f"train.resume: {last} is from a run that finished all 3 epochs; to train longer, start a new run with "
        f"model={last.with_name('best.pt')}"
    ), err
    assert "Traceback" not in err and len(err.splitlines()) == 1
