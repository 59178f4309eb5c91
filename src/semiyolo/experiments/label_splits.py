"""``semiyolo ablate CONFIG --splits N``: the protocol over N labeled subsets of one dataset.

Seeds reshuffle one continuation of one converged model on one split; which images happen to be labeled moves
the verdict more (docs/BENCHMARKS.md). With ``--splits N`` the config's own split (its data made by ``semiyolo
split``, which records the source dataset, fraction and seed in ``split.json``) is joined by N - 1 more, drawn from
the same dataset at the same fraction with the seeds that follow. Each runs the whole protocol in its own folder,
``OUT/split<seed>`` (its own converged run, controls and ceiling); ``OUT/ablation.md`` and ``OUT/ablation.csv``
then hold every split's runs, each continuation paired with its own split's baseline and ceiling
(``label_split``), so gap closed is a mean ± std over splits and seeds.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..config_loading import load_config
from ..data import split_dataset
from ..errors import ConfigError
from ..integrations.ultralytics import training_arguments


def split_manifest(config: str | Path, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """The ``split.json`` beside the config's data: the dataset, fraction and seed its labeled subset was drawn
    with. :class:`ConfigError` when the data was not made by ``semiyolo split``."""
    data = Path(load_config(config, overrides, train_keys=training_arguments()).data)
    manifest = data.parent / "split.json"
    try:
        found = json.loads(manifest.read_text())
        return {"source": found["source"], "fraction": float(found["fraction"]), "seed": int(found["seed"])}
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ConfigError(
            f"--splits: {data} was not made by 'semiyolo split' ({manifest}: {err}); more label splits are drawn "
            "the way it draws them, from its split.json"
        ) from err


def split_configs(config: str | Path, out: Path, splits: int, overrides: Sequence[str] = ()) -> list[tuple[int, list]]:
    """``(split seed, overrides)`` for each of ``splits`` label splits: the config's own first, then new ones
    (written once under ``out/split<seed>/data``) with their data and unlabeled folder as overrides."""
    manifest = split_manifest(config, overrides)
    first = manifest["seed"]
    plans = [(first, list(overrides))]
    for seed in range(first + 1, first + splits):
        folder = out / f"split{seed}" / "data"
        if not (folder / "split.json").is_file():  # written last by split_dataset: an earlier call finished it
            split_dataset(manifest["source"], manifest["fraction"], seed, folder)
        extra = [f"data={folder / 'data.yaml'}", f"semi.unlabeled={folder / 'unlabeled' / 'images'}"]
        plans.append((seed, [*overrides, *extra]))
    return plans


def label_split(data_yaml: str) -> Any:
    """Which labeled subset: the seed of the ``semiyolo split`` that wrote ``data_yaml`` (its ``split.json``), else
    the dataset's folder name."""
    manifest = Path(data_yaml).parent / "split.json"
    try:
        return json.loads(manifest.read_text()).get("seed", Path(data_yaml).parent.name)
    except (OSError, ValueError, AttributeError):  # no split.json, or not one 'semiyolo split' wrote
        return Path(data_yaml).parent.name
