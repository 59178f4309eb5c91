"""Continuing a run: optimizer moments carried over by hand-worked values, the protocol's step arithmetic."""

import pytest
import torch

from semiyolo.continuation import load_optimizer_moments
from semiyolo.experiments.protocol import Protocol, continuation_arms, continuation_facts
from semiyolo.experiments.schedule import continuation_train_args, epochs_for


def _sgd_after_one_step() -> torch.optim.SGD:
    w = torch.nn.Parameter(torch.tensor([1.0]))
    opt = torch.optim.SGD([w], lr=0.1, momentum=0.9)
    w.grad = torch.tensor([2.0])
    opt.step()  # buffer = 2, w = 1 - 0.1 * 2 = 0.8
    return opt


def test_moments_carry_over_and_the_new_learning_rate_stays():
    saved = _sgd_after_one_step().state_dict()
    w = torch.nn.Parameter(torch.tensor([0.8]))
    opt = torch.optim.SGD([w], lr=0.5, momentum=0.9)
    load_optimizer_moments(opt, saved)
    assert opt.param_groups[0]["lr"] == 0.5
    w.grad = torch.tensor([1.0])
    opt.step()  # buffer = 0.9 * 2 + 1 = 2.8; w = 0.8 - 0.5 * 2.8 = -0.6
    assert torch.allclose(w.detach(), torch.tensor([-0.6]))
    assert torch.allclose(opt.state[w]["momentum_buffer"], torch.tensor([2.8]))


def test_adam_step_count_carries_over():
    w = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    first = torch.optim.AdamW([w], lr=0.01)
    for _ in range(3):
        w.grad = torch.tensor([1.0, -1.0])
        first.step()
    second = torch.optim.AdamW([torch.nn.Parameter(w.detach().clone())], lr=0.001)
    load_optimizer_moments(second, first.state_dict())
    (p,) = second.param_groups[0]["params"]
    assert float(second.state[p]["step"]) == 3 and second.param_groups[0]["lr"] == 0.001
    assert torch.equal(second.state[p]["exp_avg"], first.state[w]["exp_avg"])


def test_mismatches_are_refused_with_the_reason():
    saved = _sgd_after_one_step().state_dict()
    with pytest.raises(ValueError, match="parameter groups differ"):
        load_optimizer_moments(
            torch.optim.SGD(
                [torch.nn.Parameter(torch.ones(1))] * 1 + [torch.nn.Parameter(torch.ones(1))], lr=0.1, momentum=0.9
            ),
            saved,
        )
    with pytest.raises(ValueError, match="optimizer settings differ"):
        load_optimizer_moments(torch.optim.AdamW([torch.nn.Parameter(torch.ones(1))]), saved)
    with pytest.raises(ValueError, match="has shape"):
        load_optimizer_moments(torch.optim.SGD([torch.nn.Parameter(torch.ones(3))], lr=0.1, momentum=0.9), saved)


def test_epochs_hold_the_step_budget():
    # accumulate = round(64 / 16) = 4, an epoch of 800 images has 50 batches: 100 steps need 400 batches = 8 epochs
    assert epochs_for(100, 800, 16, 64) == 8
    # accumulate 16, ceil(15 / 4) = 4 batches an epoch: 3 steps need 48 batches = 12 epochs
    assert epochs_for(3, 15, 4, 64) == 12
    assert epochs_for(1, 1000, 16, 16) == 1


def test_continuation_starts_below_the_peak_without_warm_up():
    adam = {"optimizer": "AdamW", "lr0": 0.002, "lrf": 0.01, "momentum": 0.9}
    args = continuation_train_args(adam, 0.1, epochs=24, start_train={"close_mosaic": 10})
    # first lr 0.1 * 0.002 = 0.0002; final 0.01 * 0.002 = 2e-5 = 0.1 of the first
    assert args["lr0"] == pytest.approx(0.0002) and args["lrf"] == pytest.approx(0.1)
    assert args["warmup_epochs"] == 0 and args["optimizer"] == "AdamW" and args["momentum"] == 0.9
    sgd = {"optimizer": "SGD", "lr0": 0.01, "lrf": 0.5, "momentum": 0.9}
    assert continuation_train_args(sgd, 0.1, epochs=3, start_train={})["lrf"] == 1.0


def test_a_continuation_keeps_the_augmentation_the_converged_run_ended_with():
    adam = {"optimizer": "AdamW", "lr0": 0.002, "lrf": 0.01, "momentum": 0.9}
    # the converged run closed mosaic for its last 10 epochs: Ultralytics closes it at epoch 24 - 24 = 0
    closed = continuation_train_args(adam, 0.1, epochs=24, start_train={"close_mosaic": 10})
    assert closed["epochs"] == 24 and closed["close_mosaic"] == 24
    # Ultralytics' default close_mosaic is 10, so a config without the key closed it too
    assert continuation_train_args(adam, 0.1, epochs=5, start_train={})["close_mosaic"] == 5
    # a run that trained with mosaic to its end continues with it
    assert continuation_train_args(adam, 0.1, epochs=5, start_train={"close_mosaic": 0})["close_mosaic"] == 0


def test_every_seed_gets_every_arm():
    arms = continuation_arms(Protocol(seeds=2, lambdas=(0.5, 1.0), focal=True), [0, 1])
    names = [a.name for a in arms]
    assert names[:11] == [
        "seed0/supervised_continued",
        "seed0/supervised_continued_lr2",
        "seed0/supervised_continued_lr4",
        "seed0/supervised_continued_bg0.5",
        "seed0/supervised_continued_bg1",
        "seed0/online_bg0",
        "seed0/online_bg0.5",
        "seed0/online_bg1",
        "seed0/online_focal1",
        "seed0/offline",
        "seed0/oracle_continued",
    ]
    assert len(names) == 22 and names[11] == "seed1/supervised_continued"
    kinds = {"supervised_continued", "supervised_continued_lr", "supervised_continued_bg", "online", "offline"}
    assert {a.kind for a in arms} == {*kinds, "oracle_continued"}
    assert next(a for a in arms if a.name == "seed1/online_focal1").semi["bg_mode"] == "focal"


def test_every_control_differs_from_the_baseline_in_one_setting():
    mix = ("mix", {"pseudo_mixup": 0.5})
    arms = continuation_arms(Protocol(seeds=1, lambdas=(1.0,), variants=(mix,), offline=False, oracle=False), [3])
    by_name = {a.name.split("/")[1]: a for a in arms}
    baseline = by_name["supervised_continued"]
    assert baseline.semi == {"mode": "supervised", "lambda_bg": 0.0} and baseline.lr_scale == 1
    assert by_name["supervised_continued_bg1"].semi == {"mode": "supervised", "lambda_bg": 1.0}
    faster = by_name["supervised_continued_lr4"]
    assert faster.semi == baseline.semi and faster.lr_scale == 4
    aug = by_name["supervised_continued_aug_mix"]
    assert aug.semi == {"mode": "supervised", "lambda_bg": 0.0, "labeled_mixup": 0.5}
    # a mosaic arm's control mosaics the labeled images with the same cache; one arm adding two augmentations gets both
    both = ("both", {"pseudo_mosaic": 0.5, "mosaic_cache": 8, "pseudo_mixup": 0.25, "teacher_flip": True})
    arms = continuation_arms(Protocol(seeds=1, variants=(both,), offline=False, oracle=False), [0])
    control = next(a for a in arms if a.name == "seed0/supervised_continued_aug_both")
    assert control.semi == {
        **{"mode": "supervised", "lambda_bg": 0.0},
        **{"labeled_mosaic": 0.5, "mosaic_cache": 8, "labeled_mixup": 0.25},
    }
    # a variant without an augmentation of the student's images has no augmentation control
    plain = continuation_arms(Protocol(variants=(("flip", {"teacher_flip": True}),), controls=False), [0])
    assert not [a for a in plain if a.kind == "supervised_continued_aug"]


def test_learning_rates_beyond_the_peak_are_refused():
    from semiyolo.errors import ConfigError

    with pytest.raises(ConfigError, match="--lr-scales"):
        Protocol(continue_lr=0.5, lr_scales=(4.0,))
    assert Protocol(lr_scales=(1.0, 2.0, 2.0)).lr_scales == (2.0,)  # 1 is the baseline itself


def test_variants_are_online_arms_of_every_seed():
    protocol = Protocol(lambdas=(), offline=False, variants=(("tiered", {"pseudo_targets": "tiered"}),))
    arms = continuation_arms(protocol, [0, 1])
    tiered = [a for a in arms if a.variant == "tiered"]
    assert [a.name for a in tiered] == ["seed0/online_tiered", "seed1/online_tiered"]
    assert tiered[0].semi == {"mode": "online", "lambda_bg": 1.0, "pseudo_targets": "tiered"}


def test_a_variant_may_set_a_list_such_as_the_filters():
    from semiyolo.cli_parser import _variant

    name, settings, lr_scale = _variant(
        "low:pseudo_targets=tiered,filters=[{name: score, params: {threshold: 0.3}}],lambda_bg=0"
    )
    assert name == "low" and settings["pseudo_targets"] == "tiered" and settings["lambda_bg"] == 0
    assert settings["filters"] == [{"name": "score", "params": {"threshold": 0.3}}] and lr_scale == 1


def test_a_variant_at_the_baselines_learning_rate_brings_its_labeled_only_control():
    from semiyolo.cli_parser import _variant

    fast = _variant("default_lr10:lr_scale=10")  # a protocol setting, not a semi one: out of the semi settings
    assert fast == ("default_lr10", {}, 10.0)
    mix = _variant("mix_lr4:pseudo_mixup=0.5,lr_scale=4")
    protocol = Protocol(seeds=1, lr_scales=(2.0,), variants=(fast, mix), offline=False, oracle=False)
    assert protocol.lr_scales == (2.0, 10.0, 4.0)  # the sweep's own, then each variant's rate as a control
    by_name = {a.name.split("/")[1]: a for a in continuation_arms(protocol, [0])}
    assert by_name["online_default_lr10"].lr_scale == 10 and by_name["supervised_continued_lr10"].lr_scale == 10
    # the blend's control takes the arm's rate too, so the blend is all it differs from the arm in (beside labels)
    assert by_name["online_mix_lr4"].lr_scale == 4 and by_name["supervised_continued_aug_mix_lr4"].lr_scale == 4
    assert continuation_facts(by_name["online_default_lr10"]) == {"lr_scale": 10.0}
    assert continuation_facts(by_name["supervised_continued_aug_mix_lr4"]) == {"lr_scale": 4.0}
    assert continuation_facts(by_name["supervised_continued"]) == {}  # rows at --continue-lr stay as they were
    assert continuation_facts(by_name["supervised_continued_lr10"]) == {}  # the sweep's rows: named by their rate
    assert _variant("fast:lr_scale=1e1").lr_scale == 10.0  # YAML's text for 1e1, a number as --lr-scales takes it


@pytest.mark.parametrize(
    ("flag", "message"),
    [("fast:lr_scale=0", "lr_scale: expected a positive number, got 0"), ("fast:lr_scale=x", "got 'x'")],
)
def test_a_variants_learning_rate_must_be_a_positive_number(flag, message):
    import argparse

    from semiyolo.cli_parser import _variant

    with pytest.raises(argparse.ArgumentTypeError, match=message):
        _variant(flag)


def test_a_variant_past_the_peak_learning_rate_or_without_a_number_is_refused_by_name():
    from semiyolo.errors import ConfigError

    with pytest.raises(ConfigError, match=r"--variant fast: lr_scale 11 times --continue-lr 0\.1"):
        Protocol(variants=(("fast", {}, 11.0),))
    with pytest.raises(ConfigError, match="--variant fast: lr_scale: expected a number, got 'x'"):
        Protocol(variants=(("fast", {}, "x"),))
    assert Protocol(variants=(("fast", {}, 2),)).variants[0].lr_scale == 2.0 and Protocol().variants == ()


@pytest.mark.parametrize(
    ("variants", "extra"),
    [
        ((("default", {}), ("default", {}, 10.0)), {}),  # the same name at two rates: one folder
        ((("bg1", {}, 2.0),), {"lambdas": (1.0,)}),  # online_bg1 is the penalty arm's folder
        ((("bg0", {}),), {}),  # online_bg0: the unpenalised arm's
        ((("focal1", {}),), {"focal": True}),
    ],
)
def test_two_online_arms_with_one_run_folder_are_refused_before_any_training(variants, extra):
    from semiyolo.errors import ConfigError

    with pytest.raises(ConfigError, match="another arm already has the run folder online_"):
        Protocol(variants=variants, **extra)
    assert Protocol(variants=(("bg0", {}),), unpenalized=False).variants[0].name == "bg0"  # no online_bg0 arm then
