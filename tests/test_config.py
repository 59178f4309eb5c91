import pytest

from semiyolo.config_loading import load_config, parse_overrides
from semiyolo.errors import ConfigError

DOCUMENT_000_BLOCK = """
data: data.yaml
semi:
  burn_in: 5
  lambda_unsup: 1.0
  lambda_bg: 1.0
  lambda_bg_warmup: 5
  lambda_bg_schedule: linear     # linear | step (| constant | cosine)
  filters:
    - name: dsat
      params: {num_classes: 7, init_threshold: 0.5}
    - name: dfl_entropy
      params: {threshold: 0.5}
"""


def _write(tmp_path, text, name="run.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_document_000_block_loads_as_is(tmp_path):
    cfg = load_config(_write(tmp_path, DOCUMENT_000_BLOCK))
    assert cfg.semi.burn_in == 5 and cfg.semi.lambda_bg_schedule == "linear"
    assert [f.name for f in cfg.semi.filters] == ["dsat", "dfl_entropy"]
    assert cfg.semi.filters[0].params == {"num_classes": 7, "init_threshold": 0.5}
    assert cfg.model == "yolov8n.yaml" and cfg.semi.mode == "supervised"


def test_dotted_overrides_with_yaml_typed_values(tmp_path):
    cfg = load_config(
        _write(tmp_path, DOCUMENT_000_BLOCK),
        ["semi.lambda_bg=0.5", "train.epochs=3", "train.cache=false", "semi.logit_clamp=10", "model=yolo11n.yaml"],
    )
    assert cfg.semi.lambda_bg == 0.5 and cfg.semi.logit_clamp == 10.0
    assert cfg.train == {"epochs": 3, "cache": False}
    assert cfg.model == "yolo11n.yaml"
    assert parse_overrides({"semi.burn_in": 2}) == {"semi.burn_in": 2}


def test_relative_data_path_is_taken_from_the_config_folder(tmp_path):
    (tmp_path / "data.yaml").write_text("names: [a]\n")
    cfg = load_config(_write(tmp_path, DOCUMENT_000_BLOCK))
    assert cfg.data == str(tmp_path / "data.yaml")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["semi.lamda_bg=1"], r"semi.lamda_bg: unknown key; did you mean 'semi.lambda_bg'\?"),
        (["modle=x.yaml"], r"modle: unknown key; did you mean 'model'\?"),
        (["semi.lambda_bg=-1"], r"semi.lambda_bg: Input should be greater than or equal to 0 \(got -1\)"),
        (["semi.burn_in=two"], r"semi.burn_in: Input should be a valid integer.*\(got 'two'\)"),
        (["semi.lambda_bg_schedule=exp"], r"semi.lambda_bg_schedule: Input should be 'constant', 'linear', 'step'"),
        (["semi.bg_mode=hinge"], r"semi.bg_mode: Input should be 'max', 'focal' or 'none'"),
        (["semi.mode=weak"], r"semi.mode: Input should be 'supervised', 'online' or 'offline'"),
        (["semi.filters=[{name: dsatt}]"], r"semi.filters.0.name: Input should be 'score', 'dsat'"),
        (["semi.filters=[{name: dsat, parms: {}}]"], r"semi.filters.0.parms: unknown key; did you mean"),
        (["semi.lambda_bg"], r"override 'semi.lambda_bg': expected key=value"),
        (["semi.burn_in.x=1"], r"override semi.burn_in.x: semi.burn_in is not a mapping"),
        (["semi.ship=better", "semi.validate_teacher=false"], r"ship better compares the teacher .* validate_teacher"),
        (
            ["semi.negative_coverage=0.9"],
            r"negative_coverage sets the uncertain tier's floor .* pseudo_trust holdout or val",
        ),
        (
            ["semi.pseudo_trust=holdout", "semi.dsat_holdout=0"],
            r"pseudo_trust holdout .* dsat_holdout is 0: set dsat_holdout > 0",
        ),
    ],
)
def test_bad_values_name_the_key_and_the_expectation(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(_write(tmp_path, DOCUMENT_000_BLOCK), overrides)


def test_every_problem_is_listed_at_once(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, DOCUMENT_000_BLOCK), ["semi.lambda_bg=-1", "semi.burn_in=-2"])
    assert "semi.lambda_bg" in str(err.value) and "semi.burn_in" in str(err.value)


def test_missing_data_key_and_yaml_syntax_errors(tmp_path):
    with pytest.raises(ConfigError, match="data: required key is missing"):
        load_config(_write(tmp_path, "semi: {lambda_bg: 1}\n"))
    bad = _write(tmp_path, "data: d.yaml\nsemi:\n  lambda_bg: [1\n", "bad.yaml")
    with pytest.raises(ConfigError, match=r"bad.yaml: YAML syntax error at line 4"):
        load_config(bad)
    with pytest.raises(ConfigError, match=r"nope.yaml: no such file"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(_write(tmp_path, "- a\n- b\n", "list.yaml"))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["semi.filters=[{name: score}, {name: score, params: {threshold: 1.5}}]"],
            r"semi.filters.1.params.threshold \(score\): score.threshold must lie in \[0, 1\], got 1.5",
        ),
        (
            ["semi.filters=[{name: cap, params: {max_per_image: 0}}]"],
            r"semi.filters.0.params.max_per_image \(cap\): cap.max_per_image must be >= 1, got 0",
        ),
        (
            ["semi.filters=[{name: score, params: {thresh: 0.5}}]"],
            r"semi.filters.0.params \(score\): unknown parameter\(s\) \['thresh'\]; accepted: \['threshold'\]",
        ),
        (
            ["semi.filters=[{name: dsat, params: {init_threshold: 0.95}}]"],
            r"semi.filters.0.params \(dsat\): dsat thresholds must satisfy 0 <= min_threshold <= init_threshold",
        ),
        (["semi.filters=[{name: dsat, params: {num_classes: 0}}]"], r"semi.filters.0.params.num_classes \(dsat\)"),
    ],
)
def test_bad_filter_parameters_are_refused_when_the_config_loads(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message) as err:
        load_config(_write(tmp_path, DOCUMENT_000_BLOCK), overrides)
    assert str(err.value).startswith(f"{tmp_path / 'run.yaml'}: invalid configuration:")


def test_checks_that_need_the_dataset_or_the_model_wait_for_them(tmp_path):
    # the source's block (docs/spec.md §9): dsat names 7 classes and dfl_entropy needs a DFL head, neither known
    # when the file loads
    cfg = load_config(_write(tmp_path, DOCUMENT_000_BLOCK))
    assert [f.name for f in cfg.semi.filters] == ["dsat", "dfl_entropy"]


def test_choices_come_from_the_core_registries():
    from typing import get_args

    from semiyolo.config import EMPTY_UNLABELED, MODES, REPORT_WEIGHTS, SemiConfig
    from semiyolo.losses import PENALTY_MODES, PENALTY_NORMALIZATIONS
    from semiyolo.pseudo import DEFAULT_FILTERS, FILTERS
    from semiyolo.schedules import SCHEDULES

    fields = SemiConfig.model_fields
    assert get_args(fields["bg_mode"].annotation) == PENALTY_MODES == ("max", "focal", "none")
    assert get_args(fields["bg_normalize"].annotation) == PENALTY_NORMALIZATIONS == ("bce", "bg_mean", "joint")
    assert get_args(fields["lambda_bg_schedule"].annotation) == SCHEDULES
    assert get_args(fields["mode"].annotation) == MODES == ("supervised", "online", "offline")
    assert get_args(fields["empty_unlabeled"].annotation) == EMPTY_UNLABELED
    assert get_args(fields["report_weights"].annotation) == REPORT_WEIGHTS
    from semiyolo.config import FilterSpec

    assert get_args(FilterSpec.model_fields["name"].annotation) == tuple(FILTERS)
    assert [f.model_dump() for f in SemiConfig().filters] == list(DEFAULT_FILTERS)


def test_the_teacher_pace_by_half_life_unless_a_decay_is_given_alone():
    from semiyolo.config import SemiConfig

    default = SemiConfig()
    assert default.teacher_half_life == 0.1 and default.pseudo_targets == "tiered"
    assert SemiConfig(teacher_decay=0.998).teacher_half_life is None  # a config written before the default
    assert SemiConfig(teacher_decay=0.998, teacher_half_life=0.2).teacher_half_life == 0.2
    for cfg in (default, SemiConfig(teacher_decay=0.998)):  # a dumped config validates to the same settings
        assert SemiConfig.model_validate(cfg.model_dump()) == cfg


@pytest.mark.parametrize("scale", [1e-9, 0.2, 4.5])
def test_a_teacher_scale_outside_the_one_rule_is_refused_by_training_and_pseudo_labelling(tmp_path, scale):
    from semiyolo.integrations.ultralytics.offline import pseudo_label_folder

    rule = r"expected a factor in \[0.25, 4\]"
    with pytest.raises(ConfigError, match=rf"semi.teacher_scale: .*{rule} \(got '?{scale}'?\)"):
        load_config(_write(tmp_path, DOCUMENT_000_BLOCK), [f"semi.teacher_scale={scale}"])
    with pytest.raises(ConfigError, match=rf"--teacher-scale: {rule}, got {scale}"):
        pseudo_label_folder(tmp_path / "w.pt", tmp_path, tmp_path / "out", teacher_scale=scale)
    assert not (tmp_path / "out").exists()
    assert load_config(_write(tmp_path, DOCUMENT_000_BLOCK), ["semi.teacher_scale=0.25"]).semi.teacher_scale == 0.25


def test_semi_trainer_given_a_list_names_what_it_takes():
    from semiyolo.integrations.ultralytics import semi_trainer

    with pytest.raises(ConfigError, match=r"semi_trainer: semi must be a SemiConfig or a mapping .*, got a list"):
        semi_trainer(["a"])


# --- the semi block by concern: one group per key, nested or flat, SUPERVISED_KEYS derived -------------------------

NESTED_BLOCK = """
data: data.yaml
semi:
  run: {mode: online, burn_in: 2}
  teacher: {decay: 0.99, half_life: null, teacher_tau: 50}
  penalty: {lambda_bg: 0.5, bg_mode: focal}
  data: {unlabeled: u, unlabeled_ratio: 2.0}
  pseudo: {min_score: 0.2, filters: [{name: score, params: {threshold: 0.4}}]}
  logit_clamp: 10
"""

TWICE = "teacher(_|.)decay: given twice"
FLAT_OF_NESTED_BLOCK = {
    "mode": "online",
    "burn_in": 2,
    "teacher_decay": 0.99,
    "teacher_half_life": None,
    "teacher_tau": 50,
    "lambda_bg": 0.5,
    "bg_mode": "focal",
    "unlabeled": "u",
    "unlabeled_ratio": 2.0,
    "pseudo_min_score": 0.2,
    "filters": [{"name": "score", "params": {"threshold": 0.4}}],
    "logit_clamp": 10,
}


def test_every_semi_key_has_exactly_one_group():
    from semiyolo.config import SEMI_GROUPS, SemiConfig

    grouped = [key for group in SEMI_GROUPS.values() for key in group.keys]
    assert sorted(grouped) == sorted(SemiConfig.model_fields)  # each field once, no stale name
    assert list(SEMI_GROUPS) == ["run", "penalty", "data", "teacher", "pseudo"]
    assert not set(SEMI_GROUPS) & set(SemiConfig.model_fields)  # a group's name is never a key's
    for group in SEMI_GROUPS.values():  # inside a group, each way of writing a key names that key alone
        assert all(group.flat_key(key) == group.flat_key(group.short(key)) == key for key in group.keys)


def test_supervised_keys_are_derived_from_the_groups_and_unchanged():
    from semiyolo.config import SEMI_GROUPS, SUPERVISED_KEYS

    assert set(SUPERVISED_KEYS) == {  # what a supervised or offline run reads (semiyolo ablate compares these)
        *("mode", "burn_in", "lambda_bg", "lambda_bg_warmup", "lambda_bg_schedule", "bg_mode", "bg_normalize"),
        *("bg_gamma", "logit_clamp", "max_grad_norm", "nonfinite_patience", "bg_fp_conf", "exact_resume"),
        *("keep_state", "max_optimizer_steps", "init_state", "report_weights", "pseudo_labels", "labeled_repeat"),
        "labeled_mixup",
        "mixup_max_overlap",
        "labeled_mosaic",
        "mosaic_cache",
    }
    assert len(SUPERVISED_KEYS) == len(set(SUPERVISED_KEYS))
    every_mode = {key for group in SEMI_GROUPS.values() if group.every_mode for key in group.keys}
    assert set(SUPERVISED_KEYS) == every_mode | {"pseudo_labels"}


def test_a_nested_semi_block_loads_as_its_flat_twin(tmp_path):
    from semiyolo.config import SemiConfig

    nested = load_config(_write(tmp_path, NESTED_BLOCK)).semi
    assert nested == SemiConfig(**{**FLAT_OF_NESTED_BLOCK, "unlabeled": nested.unlabeled})  # made absolute
    assert list(nested.model_dump()) == list(SemiConfig.model_fields)  # stored flat, as before
    assert nested.unlabeled.endswith("u") and nested.teacher_half_life is None
    alone = SemiConfig.model_validate({"teacher": {"decay": 0.998}})  # a decay given alone sets the pace, nested too
    assert alone.teacher_decay == 0.998 and alone.teacher_half_life is None


def test_nested_overrides_work_as_the_flat_ones(tmp_path):
    config = _write(tmp_path, DOCUMENT_000_BLOCK)
    flat = load_config(config, ["semi.teacher_decay=0.99", "semi.pseudo_min_score=0.3"]).semi
    nested = load_config(config, ["semi.teacher.decay=0.99", "semi.pseudo.pseudo_min_score=0.3"]).semi
    assert nested == flat and (flat.teacher_decay, flat.pseudo_min_score) == (0.99, 0.3)
    on_nested = load_config(_write(tmp_path, NESTED_BLOCK, "nested.yaml"), ["semi.teacher.tau=7", "lambda_bg=0.25"])
    assert (on_nested.semi.teacher_tau, on_nested.semi.lambda_bg, on_nested.semi.teacher_decay) == (7, 0.25, 0.99)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["semi.teacher.decay=0.9", "semi.teacher_decay=0.8"], rf"{TWICE} \(also as semi.teacher.decay\)"),
        (["semi.teacher.decay=0.9", "semi.teacher.teacher_decay=0.8"], rf"semi.teacher.{TWICE}"),
        (["semi.penalty={lambda_bg: 2}", "semi.lambda_bg=3"], r"semi.(penalty.)?lambda_bg: given twice"),
        (["semi.teacher.lambda_bg=1"], r"semi.teacher.lambda_bg: not a teacher key; did you mean 'semi.penalty.lam"),
        (["semi.pseudo.labels=p"], r"semi.pseudo.labels: not a pseudo key; did you mean 'semi.data.pseudo_labels'"),
        (["semi.teacher.decy=0.9"], r"semi.teacher.decy: unknown key; did you mean 'semi.teacher.decay'\?"),
        (["semi.teacher=0.9"], r"semi.teacher: expected a mapping of the teacher keys \(decay, tau, "),
    ],
)
def test_a_nested_key_given_twice_in_the_wrong_group_or_unknown_is_named(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(_write(tmp_path, DOCUMENT_000_BLOCK), overrides)


def test_a_config_file_giving_a_key_flat_and_nested_is_refused(tmp_path):
    twice = "data: d.yaml\nsemi:\n  teacher_decay: 0.9\n  teacher: {decay: 0.8}\n"
    with pytest.raises(ConfigError, match=rf"run.yaml: invalid configuration:\n  semi.{TWICE} \(also as semi.teacher"):
        load_config(_write(tmp_path, twice))


def test_cfg_prints_the_groups_and_a_nested_block_of_the_defaults_loads_back(capsys):
    import yaml

    from semiyolo.cli import main
    from semiyolo.config import SEMI_GROUPS, SemiConfig

    assert main(["cfg"]) == 0
    out = capsys.readouterr().out
    assert yaml.safe_load(out)["semi"] == SemiConfig().model_dump()
    for name in SEMI_GROUPS:
        assert f"\n  # --- {name}: " in out
    defaults = SemiConfig().model_dump()
    nested = {name: {key: defaults[key] for key in group.keys} for name, group in SEMI_GROUPS.items()}
    assert SemiConfig.model_validate(nested) == SemiConfig()


def test_a_variant_takes_nested_keys_as_their_flat_names():
    from semiyolo.cli_parser import _variant

    assert _variant("fast:teacher.decay=0.99,pseudo.min_score=0.2") == (
        "fast",
        {"teacher_decay": 0.99, "pseudo_min_score": 0.2},
        1.0,  # the learning rate of the other arms
    )


@pytest.mark.parametrize("doc", ["README.md", "docs/semi-supervised.md"])
def test_the_documented_grouped_block_is_the_flat_one_beside_it(doc):
    import re
    from pathlib import Path

    import yaml

    from semiyolo.config import SemiConfig

    text = (Path(__file__).resolve().parents[1] / doc).read_text()
    flat, grouped = (yaml.safe_load(block)["semi"] for block in re.findall(r"```yaml\n(.*?)```", text, re.S)[:2])
    assert not set(flat) & {"run", "teacher", "penalty"} and {"run", "penalty"} <= set(grouped)
    assert SemiConfig.model_validate(grouped) == SemiConfig.model_validate(flat)


def test_a_variant_named_alone_is_the_configs_own_method():
    import argparse

    from semiyolo.cli_parser import _variant

    assert _variant("default") == ("default", {}, 1.0)  # online with lambda_bg 1 and nothing else changed
    with pytest.raises(argparse.ArgumentTypeError, match="expected NAME or NAME:key=value"):
        _variant("default:")
