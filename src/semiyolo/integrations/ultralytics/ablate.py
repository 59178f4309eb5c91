"""``semiyolo ablate CONFIG``: supervised, offline and online training with lambda_bg 0 and more, on one
dataset, label budget and seed; a report with tables and plots. Finished runs are skipped on re-runs.

Both semi-supervised baselines build on the supervised run (a): offline, its best weights label the unlabeled
images once and a new model trains from scratch on both sets; online (by default), the student and the teacher
start from those weights, so run (a) is their burn-in (``semi.burn_in`` 0, and no EMA warm-up ramp, which is
meant for a teacher starting from random weights). ``online_from_supervised=False`` trains the online runs
from the config's model with its own ``burn_in`` instead.
"""

from __future__ import annotations

import copy
import csv
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ...config import load_config
from ...data import check_detection_dataset, list_images
from ...errors import ConfigError
from ...report import plot_against_lambda, plot_curves, write_tables
from .api import prepare, train
from .offline import pseudo_label_folder

SUPERVISED_RUN = "a_supervised"


def plan(
    cfg: dict[str, Any],
    lambdas: Sequence[float],
    focal: bool,
    online_from_supervised: bool = True,
    equal_steps_repeat: int | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """``(name, config)`` of each run. ``cfg`` is an online run config (``semi.unlabeled`` set). Online runs
    that start from run (a) have ``model`` set to ``None`` here; :func:`run_ablation` fills it in.
    ``equal_steps_repeat`` adds a supervised run whose labeled images repeat that many times per epoch, so that
    it takes as many steps as the offline run."""

    def variant(mode: str, lambda_bg: float, **semi) -> dict[str, Any]:
        run = copy.deepcopy(cfg)
        run["semi"] = {**run.get("semi", {}), "mode": mode, "lambda_bg": lambda_bg, **semi}
        if mode == "online" and online_from_supervised:
            run["model"] = None
            run["semi"].update(burn_in=0, teacher_tau=0.0)
        return run

    runs = [
        (SUPERVISED_RUN, variant("supervised", 0.0)),
        *(
            [(f"a2_supervised_x{equal_steps_repeat}", variant("supervised", 0.0, labeled_repeat=equal_steps_repeat))]
            if equal_steps_repeat
            else []
        ),
        ("b_offline", variant("offline", 0.0)),
        ("c_online_bg0", variant("online", 0.0)),
    ]
    runs += [(f"d_online_bg{lam:g}", variant("online", lam)) for lam in lambdas]
    if focal:
        runs.append(("e_online_focal1", variant("online", 1.0, bg_mode="focal")))
    return runs


def _history(run_dir: Path) -> list[dict[str, str]]:
    path = run_dir / "results.csv"
    if not path.is_file():
        return []
    with open(path) as f:
        return [{k.strip(): v.strip() for k, v in row.items()} for row in csv.DictReader(f)]


def run_ablation(
    config: str | Path,
    out: str | Path | None = None,
    lambdas: Sequence[float] = (0.5, 1.0, 1.5),
    focal: bool = False,
    overrides: Sequence[str] = (),
    online_from_supervised: bool = True,
    equal_steps: bool = False,
) -> list[dict[str, Any]]:
    cfg = load_config(config, overrides)
    if not cfg.semi.unlabeled:
        raise ConfigError("semi.unlabeled: the ablation needs a folder of unlabeled images (see 'semiyolo split')")
    out = Path(out or Path("runs") / "ablate" / Path(str(config)).stem).resolve()
    base = cfg.model_dump()
    base["train"] = {**base["train"], "project": str(out), "exist_ok": True}
    repeat = _offline_epoch_ratio(cfg.data, cfg.semi.unlabeled) if equal_steps else None
    runs = plan(base, lambdas, focal, online_from_supervised, repeat)
    rows, histories = [], {}
    for i, (name, run_cfg) in enumerate(runs, 1):
        run_dir = out / name
        done = run_dir / "ablation_row.json"
        print(f"\n[{i}/{len(runs)}] {name}" + (" (finished earlier, skipped)" if done.is_file() else ""), flush=True)
        if not done.is_file():
            if name == "b_offline":
                run_cfg["semi"]["pseudo_labels"] = str(_pseudo_labels(out, run_cfg))
            if run_cfg["model"] is None:
                run_cfg["model"] = str(out / SUPERVISED_RUN / "weights" / "best.pt")
            prepare(run_cfg)
            run_cfg["train"]["name"] = name
            start = time.time()
            summary = train(run_cfg)
            last = _history(run_dir)[-1] if _history(run_dir) else {}
            row = {
                **summary,
                "run": name,
                "mode": run_cfg["semi"]["mode"],
                "lambda_bg": run_cfg["semi"]["lambda_bg"],
                "bg_mode": run_cfg["semi"].get("bg_mode", "max"),
                "semi/pl_precision": float(last.get("semi/pl_precision", "nan") or "nan"),
                "semi/pl_recall": float(last.get("semi/pl_recall", "nan") or "nan"),
                "minutes": (time.time() - start) / 60,
            }
            done.write_text(json.dumps(row))
        rows.append(json.loads(done.read_text()))
        histories[name] = _history(run_dir)
    write_tables(rows, out)
    plot_against_lambda(rows, out)
    plot_curves(histories, out)
    print(f"\n{(out / 'ablation.md').read_text()}\nTables and plots are in {out}")
    return rows


def _offline_epoch_ratio(data_yaml: str, unlabeled: str) -> int:
    """How many times more images an offline epoch holds than a labeled-only one (labeled + unlabeled over
    labeled), rounded."""
    labeled = check_detection_dataset(data_yaml)["n_train"]
    return max(1, round((labeled + len(list_images(unlabeled))) / labeled))


def _pseudo_labels(out: Path, run_cfg: dict[str, Any]) -> Path:
    """Offline baseline: the supervised run's best weights label the unlabeled folder once."""
    weights = out / SUPERVISED_RUN / "weights" / "best.pt"
    target = out / "b_offline_pseudo_labels"
    if not (target / "summary.json").is_file():
        pseudo_label_folder(
            weights,
            run_cfg["semi"]["unlabeled"],
            target,
            run_cfg["semi"]["filters"],
            imgsz=int(run_cfg["train"].get("imgsz", 640)),
        )
    return target
