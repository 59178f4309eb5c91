"""The protocol script's arms are valid before two hours of training find out: every ``--variant`` in
benchmarks/ssod_controls.sh parses as ``semiyolo ablate`` parses it and gives a valid online ``semi`` block."""

import re
import shlex
from pathlib import Path

from semiyolo.cli_parser import _variant
from semiyolo.config import SemiConfig

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "ssod_controls.sh"
NO_REGRESS = re.search(r"^NO_REGRESS='(.*)'$", SCRIPT.read_text(), re.MULTILINE).group(1)


def _script_variants() -> list[str]:
    """Each ``--variant`` argument as bash passes it (the diagnostics array's too, with ``$NO_REGRESS`` expanded)."""
    lines = [line for line in SCRIPT.read_text().splitlines() if not line.lstrip().startswith("#")]
    text = "\n".join(lines).replace("$NO_REGRESS", NO_REGRESS)
    return [shlex.split(arg)[0] for arg in re.findall(r"--variant\s+(\"[^\"]*\"|[^\s)]+)", text)]


def test_every_protocol_arm_is_a_valid_online_method():
    variants = [_variant(text) for text in _script_variants()]
    names = [variant.name for variant in variants]
    # the three diagnostics (defined first, left out with DIAGNOSTICS=0), the six candidates, the lr-matched arms
    assert names == [
        "oracle_pl", "oracle_boxes", "no_regress",
        "default", "mix", "tiered_flip_s12", "tiered_flip_s12_r2", "mosaic", "views",
        "default_lr10", "tiered_flip_s12_r2_lr10",
    ]  # fmt: skip
    for name, settings, _ in variants:
        semi = SemiConfig(mode="online", unlabeled="unlabeled/images", **settings)
        assert all(getattr(semi, key) == value for key, value in settings.items() if key != "filters"), name
    by_name = {variant.name: variant for variant in variants}
    assert by_name["tiered_flip_s12_r2"].semi == {"teacher_flip": True, "teacher_scale": 1.2, "relabel_every": 2}
    # the lr-matched arms: the online recipe at the labeled-only sweep's top rate, pseudo-labels all that differ
    assert by_name["default_lr10"] == ("default_lr10", {}, 10.0)
    assert by_name["tiered_flip_s12_r2_lr10"] == (
        "tiered_flip_s12_r2_lr10",
        {**by_name["tiered_flip_s12_r2"].semi},
        10.0,
    )


def _same_history():
    import importlib.util

    spec = importlib.util.spec_from_file_location("same_history", SCRIPT.parent / "same_history.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_history_trained_again_is_compared_figure_by_figure_but_the_time():
    differences = _same_history().differences
    archived = [{"epoch": "1", "time": "50.2", "metrics/mAP50-95(B)": "0.5"}, {"epoch": "2", "time": "99", "x": "1"}]
    again = [{"epoch": "1", "time": "61.0", "metrics/mAP50-95(B)": "0.5"}, {"epoch": "2", "time": "120", "x": "1"}]
    assert differences(archived, again) == []  # only the wall-clock time differs
    again[1]["x"] = "1.0001"
    assert differences(archived, again) == ["epoch 2: x: 1 -> 1.0001"]
    assert differences(archived, again, tolerance=0.001) == []
    assert differences(archived, again[:1]) == ["2 epochs archived, 1 trained again"]
