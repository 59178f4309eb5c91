"""Issue 29, items 5 and 6: Ultralytics' flat keys on the command line, and where the keys are listed."""

import argparse
import csv

import pytest
import yaml

from semiyolo.cli import HANDLERS, main
from semiyolo.cli_parser import build_parser
from semiyolo.config import SemiConfig


def _config(tmp_path, data):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"model": "yolov8n.yaml", "data": str(data)}))
    return path


def test_flat_ultralytics_and_semi_keys_are_taken_as_train_and_semi_keys(tmp_path, tiny_data):
    from semiyolo.integrations.ultralytics import prepare

    cfg = prepare(_config(tmp_path, tiny_data), ["epochs=1", "imgsz=64", "lambda_bg=0.5", "semi.burn_in=0"])
    assert cfg.train == {"epochs": 1, "imgsz": 64}
    assert cfg.semi.lambda_bg == 0.5 and cfg.semi.burn_in == 0


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("epoch=1", "epoch: unknown key; did you mean 'train.epochs'?"),
        ("lamda_bg=1", "lamda_bg: unknown key; did you mean 'semi.lambda_bg'?"),
        ("mode=online", "mode: both an Ultralytics training argument and a semi key; did you mean 'semi.mode'?"),
    ],
)
def test_a_flat_key_that_is_neither_or_both_is_one_clear_line(tmp_path, tiny_data, capsys, override, message):
    assert main(["train", str(_config(tmp_path, tiny_data)), override]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_flat_key_in_a_config_file_is_pointed_to_its_block(tmp_path, tiny_data, capsys):
    path = tmp_path / "flat.yaml"
    path.write_text(f"data: {tiny_data}\nepochs: 3\n")
    assert main(["train", str(path)]) == 2
    assert "epochs: unknown key; did you mean 'train.epochs'?" in capsys.readouterr().err


def test_train_without_a_config_file_takes_every_key_from_the_command_line(tmp_path, tiny_data, capsys):
    args = ["epochs=1", "imgsz=64", "batch=4", "workers=0", "plots=false", f"project={tmp_path}", "name=r"]
    assert main(["train", f"data={tiny_data}", "model=yolov8n.yaml", *args]) == 0
    rows = list(csv.DictReader((tmp_path / "r" / "results.csv").open()))
    assert len(rows) == 1 and float(rows[0]["semi/lambda_bg"]) == 0  # semi defaults: burn-in 5 epochs
    assert f"Run folder: {tmp_path / 'r'}" in capsys.readouterr().out


def test_train_without_a_config_file_or_data_names_the_missing_key(capsys):
    assert main(["train", "model=yolov8n.yaml", "epochs=1"]) == 2
    assert "data: required key is missing" in capsys.readouterr().err


def test_every_semi_key_has_a_description():
    assert [key for key, field in SemiConfig.model_fields.items() if not field.description] == []


def test_cfg_lists_every_semi_key_with_its_default_and_description(capsys):
    assert main(["cfg"]) == 0
    out = capsys.readouterr().out
    listing = yaml.safe_load(out)  # a config template: comments hold the descriptions
    assert listing["semi"] == SemiConfig().model_dump()
    assert "# each labeled training image appears this many times per epoch" in out
    assert "\n  labeled_repeat: 1\n" in out


def test_train_help_shows_the_layout_and_points_to_cfg(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "semiyolo cfg" in out and "epochs=3" in out


def _parsers(parser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _parsers(sub)


def test_every_help_option_with_a_default_shows_it():
    hidden = []
    for parser in _parsers(build_parser(HANDLERS)):
        for action in parser._actions:
            if action.default in (None, False, [], argparse.SUPPRESS) or action.help == argparse.SUPPRESS:
                continue
            if "default" not in (action.help or ""):
                hidden.append(f"{parser.prog} {'/'.join(action.option_strings) or action.dest}")
    assert hidden == []
