"""``semiyolo ablate CONFIG``: the fair semi-supervised protocol on one dataset, label budget and split.

Arms (``kind`` in ``ablation.csv``):

- ``supervised_converged``: the labeled images alone, the config's schedule (``train.epochs``,
  ``semi.labeled_repeat``), trained through its whole learning-rate decay; the report shows its curve and how much
  it still gained over the last quarter of its steps.
- ``supervised_continued``: from that run's final state (:mod:`.continuation`), ``steps`` more optimizer steps on
  the labeled images alone. The baseline every other continuation is judged against.
- ``online`` (lambda_bg 0, each of ``lambdas``, the focal mode on request) and ``offline`` (pseudo-labels from the
  converged weights, labeled + pseudo-labeled images): the same continuation, the same ``steps``.
- ``oracle_continued``: the same continuation on the labeled and the unlabeled images with their hidden labels, as
  if the pseudo-labels were perfect: what ``steps`` optimizer steps can give at most to any pseudo-labels.
- ``fully_labeled``: the labeled and unlabeled images with their hidden labels, from the config's model, with the
  converged run's schedule in as many batches (so as many optimizer steps): the ceiling. The oracle and the
  ceiling are skipped, with a note, without hidden labels.

Every continuation uses the converged run's optimizer (its resolved class and peak learning rate), starts at
``continue_lr`` times that peak with no warm-up and decays linearly to the converged run's final learning rate, and
stops at exactly ``steps`` optimizer steps (``semi.max_optimizer_steps``). The continuations repeat over ``seeds``
seeds (the converged run and the offline pseudo-labels are shared). Metrics are those of each run's
final weights (``semi.report_weights: last``), not of its best epoch. Finished runs are skipped on re-runs.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import json
import math
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml

from ..config import BEFORE_THE_KEY, SUPERVISED_KEYS, SemiConfig, load_config
from ..data import check_detection_dataset, dataset_root, label_path, list_images, split_entries
from ..errors import ConfigError
from ..integrations.ultralytics import prepare, train, training_default
from ..integrations.ultralytics.offline import pseudo_label_folder
from .arms import CONTINUATIONS, CONTINUED, CONVERGED, FULLY_LABELED, ORACLE, VARIANTS
from .report import write_protocol_report


@dataclass(frozen=True)
class Protocol:
    """What the ablation runs besides the converged baseline."""

    steps: int = 200  # optimizer steps of every continuation arm
    seeds: int = 3
    lambdas: Sequence[float] = (1.0,)  # online lambda_bg values besides 0
    unpenalized: bool = True  # online with lambda_bg 0 as well
    focal: bool = False
    offline: bool = True
    oracle: bool = True  # the continuation on the hidden labels (needs them)
    continue_lr: float = 0.1  # the continuation's first learning rate, as a share of the converged run's peak
    only: tuple[str, ...] = ()  # run only these kinds besides the converged run (all when empty)
    only_seeds: tuple[int, ...] = ()  # run only these seeds' continuations and ceilings, 0-based (all when empty)
    ceiling_seeds: int = 1  # seeds of the fully labeled ceiling
    variants: tuple[tuple[str, dict[str, Any]], ...] = ()  # online arms (name, semi settings over lambda_bg 1)

    def __post_init__(self) -> None:
        if not 0 < self.continue_lr <= 1:
            raise ConfigError(
                f"--continue-lr: expected a share of the peak learning rate in (0, 1], got {self.continue_lr}"
            )
        object.__setattr__(self, "lambdas", tuple(dict.fromkeys(lam for lam in self.lambdas if lam != 0)))
        if VARIANTS in self.only and not self.variants:
            raise ConfigError(
                "--only variants: no --variant given, so there is nothing to train besides the converged run"
            )
        if self.ceiling_seeds < 1:
            raise ConfigError(f"--ceiling-seeds: expected at least 1 seed, got {self.ceiling_seeds}")
        most = max(self.seeds, self.ceiling_seeds)
        outside = [k for k in self.only_seeds if not 0 <= k < most]
        if outside:
            raise ConfigError(f"--only-seeds: {outside} outside the {most} seeds (0 to {most - 1})")

    def chosen_seeds(self, base_seed: int, count: int) -> set[int]:
        """The seeds of ``count`` that this invocation trains: ``--only-seeds``' (``base_seed + k``), else all."""
        return {base_seed + k for k in self.only_seeds or range(count)}

    def runs(self, kind: str) -> bool:
        return not self.only or kind in self.only

    def runs_arm(self, arm: Arm) -> bool:
        """Whether ``--only`` takes this continuation: its kind, or ``variants`` for a ``--variant`` arm."""
        return self.runs(arm.kind) or (arm.variant is not None and VARIANTS in self.only)


@dataclass
class Arm:
    name: str  # the run folder under the output folder
    kind: str
    seed: int
    semi: dict[str, Any] = field(default_factory=dict)  # semi settings over the config's
    variant: str | None = None  # a --variant's name


def continuation_arms(protocol: Protocol, seeds: Sequence[int]) -> list[Arm]:
    """The arms that continue from the converged run, ``seed<k>/<arm>`` for each seed."""
    arms = []
    for seed in seeds:
        arms.append(Arm(f"seed{seed}/{CONTINUED}", CONTINUED, seed, {"mode": "supervised", "lambda_bg": 0.0}))
        for lam in ((0.0,) if protocol.unpenalized else ()) + tuple(protocol.lambdas):
            arms.append(Arm(f"seed{seed}/online_bg{lam:g}", "online", seed, {"mode": "online", "lambda_bg": lam}))
        if protocol.focal:
            online = {"mode": "online", "lambda_bg": 1.0, "bg_mode": "focal"}
            arms.append(Arm(f"seed{seed}/online_focal1", "online", seed, online))
        for name, settings in protocol.variants:
            online = {"mode": "online", "lambda_bg": 1.0, **settings}
            arms.append(Arm(f"seed{seed}/online_{name}", "online", seed, online, variant=name))
        if protocol.offline:
            arms.append(Arm(f"seed{seed}/offline", "offline", seed, {"mode": "offline", "lambda_bg": 0.0}))
        if protocol.oracle:
            arms.append(Arm(f"seed{seed}/{ORACLE}", ORACLE, seed, {"mode": "supervised", "lambda_bg": 0.0}))
    return arms


def ceiling_runs(protocol: Protocol, base_seed: int) -> list[tuple[str, int]]:
    """The fully labeled runs, ``(folder, seed)``: ``fully_labeled`` at ``base_seed`` (the folder a single ceiling
    has always had), then ``seed<s>/fully_labeled`` for each further seed ``s``."""
    seeds = [base_seed + k for k in range(protocol.ceiling_seeds)]
    return [(FULLY_LABELED if s == base_seed else f"seed{s}/{FULLY_LABELED}", s) for s in seeds]


def ceilings_to_run(protocol: Protocol, base_seed: int, hidden_labels: bool) -> list[tuple[str, int]]:
    """The ceilings this invocation trains: none without hidden labels or when ``--only`` leaves them out, else
    ``--only-seeds``' seeds (``base_seed + k``)."""
    if not hidden_labels or not protocol.runs(FULLY_LABELED):
        return []
    seeds = protocol.chosen_seeds(base_seed, protocol.ceiling_seeds)
    return [(name, seed) for name, seed in ceiling_runs(protocol, base_seed) if seed in seeds]


def arms_to_run(protocol: Protocol, arms: Sequence[Arm], base_seed: int, hidden_labels: bool) -> list[Arm]:
    """The continuations this invocation trains: ``--only``'s kinds (``variants``: the ``--variant`` arms),
    ``--only-seeds``' seeds (``base_seed + k``), and the oracle only where the unlabeled images have hidden labels."""
    seeds = protocol.chosen_seeds(base_seed, protocol.seeds)
    return [a for a in arms if protocol.runs_arm(a) and a.seed in seeds and (a.kind != ORACLE or hidden_labels)]


def epochs_for(steps: int, images: int, batch: int, nbs: int) -> int:
    """Epochs that hold at least ``steps`` optimizer steps: Ultralytics steps every ``max(round(nbs / batch), 1)``
    batches, counted across epochs, and an epoch has ``ceil(images / batch)`` batches."""
    accumulate = max(round(nbs / batch), 1)
    return max(1, math.ceil(steps * accumulate / math.ceil(images / batch)))


def resolved_optimizer(run_dir: Path) -> dict[str, Any]:
    """The optimizer a finished run used, as Ultralytics training arguments (``optimizer: auto`` resolved: the
    class, the peak ``lr0`` and the warm-up's bias learning rate as Ultralytics wrote them back), the first
    momentum read from its final state, and the optimizer steps it took."""
    state = torch.load(run_dir / "weights" / "train_state.pt", map_location="cpu", weights_only=False)
    args = torch.load(run_dir / "weights" / "last.pt", map_location="cpu", weights_only=False)["train_args"]
    group = state["optimizer"]["param_groups"][0]
    momentum = group["betas"][0] if "betas" in group else group.get("momentum", args["momentum"])
    return {
        "optimizer": args["optimizer"],
        "lr0": float(args["lr0"]),
        "momentum": float(momentum),
        "lrf": float(args["lrf"]),
        "warmup_bias_lr": float(args["warmup_bias_lr"]),
        "steps": int(state.get("optimizer_steps", 0)),
    }


def ceiling_train_args(optim: dict[str, Any], converged_train: dict[str, Any], scale: float) -> dict[str, Any]:
    """The fully labeled run's schedule: the converged run's, in as many batches (``scale`` = the converged run's
    images per epoch over the ceiling's), with its resolved optimizer, so that warm-up, decay and optimizer steps
    match."""
    epochs = int(converged_train.get("epochs", training_default("epochs")))
    warmup = float(converged_train.get("warmup_epochs", training_default("warmup_epochs")))
    close_mosaic = int(converged_train.get("close_mosaic", training_default("close_mosaic")))
    return {
        "optimizer": optim["optimizer"],
        "lr0": optim["lr0"],
        "momentum": optim["momentum"],
        "warmup_bias_lr": optim["warmup_bias_lr"],
        "epochs": max(1, round(epochs * scale)),
        "warmup_epochs": warmup * scale,
        "close_mosaic": round(close_mosaic * scale),
    }


def continuation_train_args(optim: dict[str, Any], continue_lr: float) -> dict[str, Any]:
    """Training arguments of a continuation: the converged run's optimizer, starting at ``continue_lr`` of its
    peak, decaying linearly to its final learning rate, no warm-up."""
    start = optim["lr0"] * continue_lr
    final = optim["lr0"] * optim["lrf"]
    return {
        "optimizer": optim["optimizer"],
        "lr0": start,
        "lrf": min(1.0, final / start),
        "momentum": optim["momentum"],
        "warmup_epochs": 0,
        "cos_lr": False,
    }


def hidden_labels_dataset(data_yaml: str, unlabeled: str, out: Path) -> Path | None:
    """A ``data.yaml`` whose training images are the labeled and the unlabeled ones with their hidden labels
    (as ``semiyolo split`` keeps them), or ``None`` when the unlabeled images have no label files."""
    if not any(label_path(image).is_file() for image in list_images(unlabeled)):
        return None
    data = yaml.safe_load(Path(data_yaml).read_text())
    root = dataset_root(data, data_yaml)
    val = [str(v) for v in split_entries(data, root, "val")]
    full = {
        **data,
        "path": str(root),
        "train": [*map(str, split_entries(data, root, "train")), str(Path(unlabeled).resolve())],
        "val": val if len(val) > 1 else val[0],
    }
    path = out / "fully_labeled.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(full, sort_keys=False))
    return path


def _history(run_dir: Path) -> list[dict[str, str]]:
    path = run_dir / "results.csv"
    if not path.is_file():
        return []
    with open(path) as f:
        return [{k.strip(): v.strip() for k, v in row.items()} for row in csv.DictReader(f)]


def _fingerprint(run_cfg: dict[str, Any]) -> str:
    return hashlib.sha1(json.dumps(run_cfg, sort_keys=True, default=str).encode()).hexdigest()[:16]


def settings_differ(run_dir: Path, row: dict[str, Any], run_cfg: dict[str, Any]) -> list[str]:
    """The settings of ``run_cfg`` that a finished run (its ``args.yaml`` and the ``semi`` block of its row) had
    otherwise: model, data, every given training argument, and the ``semi`` keys its mode reads
    (:data:`~semiyolo.config.SUPERVISED_KEYS` unless online). A key the run predates counts as what runs did
    before it existed (:data:`~semiyolo.config.BEFORE_THE_KEY`), else as its default."""
    args = yaml.safe_load((run_dir / "args.yaml").read_text()) if (run_dir / "args.yaml").is_file() else {}
    given = {"model": run_cfg["model"], "data": run_cfg["data"], **run_cfg["train"]}
    differ = [k for k, v in given.items() if k not in ("project", "name", "exist_ok") and not _same(args.get(k), v)]
    stored, defaults = row.get("semi", {}), {**SemiConfig().model_dump(), **BEFORE_THE_KEY}
    online = run_cfg["semi"].get("mode") == "online"
    keys = [k for k in run_cfg["semi"] if online or k in SUPERVISED_KEYS]
    return differ + [f"semi.{k}" for k in keys if not _same(stored.get(k, defaults.get(k)), run_cfg["semi"][k])]


def _same(a: Any, b: Any) -> bool:
    return a == b or str(a) == str(b)


def _run(
    out: Path, name: str, kind: str, seed: int | None, run_cfg: dict[str, Any], variant: str | None = None
) -> dict[str, Any]:
    """Train ``run_cfg`` as ``out/name`` unless it finished earlier with the same settings; its table row. An
    unfinished earlier attempt's folder is removed first (Ultralytics would append to its results.csv)."""
    done = out / name / "ablation_row.json"
    fingerprint = _fingerprint(run_cfg)
    if done.is_file():
        row = json.loads(done.read_text())
        differ = settings_differ(out / name, row, run_cfg)
        if differ:
            raise ConfigError(
                f"{out / name}: finished earlier with other settings ({', '.join(differ[:5])}); give --out a new "
                "folder, or delete that run"
            )
        print(f"\n{name} (finished earlier, skipped)", flush=True)
        return row
    if (out / name).exists():
        print(f"\n{name}: removing an unfinished earlier attempt", flush=True)
        shutil.rmtree(out / name)
    print(f"\n{name}", flush=True)
    run_cfg = {**run_cfg, "train": {**run_cfg["train"], "project": str(out), "name": name, "exist_ok": True}}
    prepare(run_cfg)
    start = time.time()
    summary = train(run_cfg)
    last = (_history(out / name) or [{}])[-1]
    row = {
        **summary,
        "run": name,
        "kind": kind,
        "seed": seed,
        "mode": run_cfg["semi"]["mode"],
        "variant": variant,
        "lambda_bg": run_cfg["semi"]["lambda_bg"],
        "bg_mode": run_cfg["semi"].get("bg_mode", "max"),
        "semi/pl_precision": float(last.get("semi/pl_precision", "nan") or "nan"),
        "semi/pl_recall": float(last.get("semi/pl_recall", "nan") or "nan"),
        "minutes": (time.time() - start) / 60,
        "config_fingerprint": fingerprint,
    }
    done.write_text(json.dumps(row))
    return row


def _fixed_batch(train: dict[str, Any]) -> int:
    batch = train.get("batch", training_default("batch"))
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ConfigError(f"train.batch: the ablation needs a fixed batch size (an integer >= 1), got {batch!r}")
    return batch


@dataclass
class _Plan:
    """What every arm of one ablation shares."""

    out: Path
    base: dict[str, Any]  # the config, as a dict, with the protocol's reporting settings
    n_labeled: int
    n_unlabeled: int
    labeled_repeat: int
    full_data: Path | None  # data.yaml of the labeled and unlabeled images with their hidden labels, if they have them
    hidden_note: str = ""  # how many unlabeled images have no hidden label file, when some have none

    @property
    def converged_dir(self) -> Path:
        return self.out / CONVERGED


def run_ablation(
    config: str | Path,
    out: str | Path | None = None,
    protocol: Protocol = Protocol(),
    overrides: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """Run (or finish) the protocol on ``config`` and write the report; returns every finished run's row."""
    cfg = load_config(config, overrides)
    if not cfg.semi.unlabeled:
        raise ConfigError("semi.unlabeled: the ablation needs a folder of unlabeled images (see 'semiyolo split')")
    base = cfg.model_dump()
    base["semi"].update(report_weights="last", exact_resume=True)
    _fixed_batch(base["train"])
    out_dir = Path(out or Path("runs") / "ablate" / Path(str(config)).stem).resolve()
    plan = _Plan(
        out=out_dir,
        base=base,
        n_labeled=check_detection_dataset(cfg.data)["n_train"],
        n_unlabeled=len(list_images(cfg.semi.unlabeled)),
        labeled_repeat=cfg.semi.labeled_repeat,
        full_data=hidden_labels_dataset(cfg.data, cfg.semi.unlabeled, out_dir),
        hidden_note=_missing_hidden_labels(cfg.semi.unlabeled),
    )
    base_seed = int(base["train"].get("seed", 0))
    converged_cfg = copy.deepcopy(base)
    converged_cfg["semi"].update(mode="supervised", lambda_bg=0.0)
    _run(plan.out, CONVERGED, CONVERGED, base_seed, converged_cfg)
    optim = resolved_optimizer(plan.converged_dir)
    arms = continuation_arms(protocol, [base_seed + k for k in range(protocol.seeds)])
    hidden = [k for k in (ORACLE, FULLY_LABELED) if protocol.runs(k) and (k != ORACLE or protocol.oracle)]
    notes = [] if plan.full_data or not hidden else [f"{', '.join(hidden)}: skipped, {plan.hidden_note}"]
    notes += [plan.hidden_note] if plan.full_data and plan.hidden_note else []
    for note in notes:
        print(note)
    for arm in arms_to_run(protocol, arms, base_seed, hidden_labels=plan.full_data is not None):
        _run(plan.out, arm.name, arm.kind, arm.seed, _continuation_config(plan, arm, protocol, optim), arm.variant)
    for name, seed in ceilings_to_run(protocol, base_seed, hidden_labels=plan.full_data is not None):
        _run_ceiling(plan, optim, name, seed)
    names = [CONVERGED, *(a.name for a in arms), *(name for name, _ in ceiling_runs(protocol, base_seed))]
    rows = finished_rows(plan.out, names)
    notes += _step_mismatches(rows, protocol.steps)
    histories = {row["run"]: _history(plan.out / row["run"]) for row in rows}
    md = write_protocol_report(rows, histories, plan.out, notes=[n for n in notes if n])
    print(f"\n{md.read_text()}\nTables and plots are in {plan.out}")
    return rows


def finished_rows(out: Path, names: Sequence[str]) -> list[dict[str, Any]]:
    """The rows of every finished run under ``out``: ``names`` in their order, then runs this invocation did not
    name (another ``--variant``, ``--lambdas`` or ``--ceiling-seeds`` of an earlier call on the folder), so that
    the report never depends on which flags the last call had; the converged run first, the ceilings last."""
    found = sorted(str(f.parent.relative_to(out)) for f in out.glob("**/ablation_row.json"))
    ordered = list(dict.fromkeys([*names, *found]))
    rows = [json.loads(f.read_text()) for f in (out / n / "ablation_row.json" for n in ordered) if f.is_file()]
    rank = {CONVERGED: 0, FULLY_LABELED: 2}
    return sorted(rows, key=lambda row: rank.get(row["kind"], 1))


def _continuation_config(plan: _Plan, arm: Arm, protocol: Protocol, optim: dict[str, Any]) -> dict[str, Any]:
    run_cfg = copy.deepcopy(plan.base)
    offline, oracle = arm.kind == "offline", arm.kind == ORACLE
    images = plan.n_labeled + plan.n_unlabeled if offline or oracle else plan.n_labeled * plan.labeled_repeat
    batch, nbs = _fixed_batch(run_cfg["train"]), int(run_cfg["train"].get("nbs", training_default("nbs")))
    run_cfg["model"] = str(plan.converged_dir / "weights" / "last.pt")
    run_cfg["train"].update(
        continuation_train_args(optim, protocol.continue_lr),
        seed=arm.seed,
        epochs=epochs_for(protocol.steps, images, batch, nbs),
    )
    run_cfg["semi"].update(
        arm.semi,
        init_state=str(plan.converged_dir / "weights" / "train_state.pt"),
        max_optimizer_steps=protocol.steps,
        burn_in=0,
        teacher_tau=0.0,
    )
    if offline:
        pseudo = _pseudo_labels(plan.out, plan.converged_dir, run_cfg)
        run_cfg["semi"].update(labeled_repeat=1, pseudo_labels=str(pseudo))
    if oracle:
        run_cfg["data"] = str(plan.full_data)
        run_cfg["semi"].update(labeled_repeat=1)
    return run_cfg


def _run_ceiling(plan: _Plan, optim: dict[str, Any], name: str, seed: int) -> None:
    """Train a fully labeled run as ``name``: every training image with its (hidden) label, the converged run's
    schedule, ``seed``."""
    full_cfg = copy.deepcopy(plan.base)
    full_cfg["data"] = str(plan.full_data)
    scale = plan.n_labeled * plan.labeled_repeat / (plan.n_labeled + plan.n_unlabeled)
    full_cfg["train"].update(ceiling_train_args(optim, plan.base["train"], scale), seed=seed)
    full_cfg["semi"].update(mode="supervised", lambda_bg=0.0, labeled_repeat=1)
    _run(plan.out, name, FULLY_LABELED, seed, full_cfg)


def _missing_hidden_labels(unlabeled: str) -> str:
    """A note when some unlabeled images have no label file: the oracle and the ceiling train them as background."""
    images = list_images(unlabeled)
    missing = sum(not label_path(image).is_file() for image in images)
    if not missing:
        return ""
    if missing == len(images):
        return f"the unlabeled images ({unlabeled}) have no label files"
    return f"{missing} of {len(images)} unlabeled images ({unlabeled}) have no label file: trained as background there"


def _step_mismatches(rows: Sequence[dict[str, Any]], steps: int) -> list[str]:
    """A note for each continuation that took another number of optimizer steps than the budget."""
    odd = [
        f"{r['run']} ({r.get('optimizer_steps')})"
        for r in rows
        if r["kind"] in CONTINUATIONS and r.get("optimizer_steps") != steps
    ]
    return [f"WARNING: these runs did not take {steps} optimizer steps: {', '.join(odd)}"] if odd else []


def _pseudo_labels(out: Path, converged_dir: Path, run_cfg: dict[str, Any]) -> Path:
    """The offline arms' pseudo-labels: the converged run's final weights label the unlabeled folder once, with the
    config's teacher (``semi.teacher_flip``, ``semi.teacher_scale``); labels made with another teacher are made
    again."""
    target = out / "offline_pseudo_labels"
    semi = run_cfg["semi"]
    plain = {"flip": False, "scale": 1.0}  # what made summaries written before they recorded the teacher
    teacher = {"flip": bool(semi.get("teacher_flip", False)), "scale": float(semi.get("teacher_scale", 1.0))}
    summary = target / "summary.json"
    if not summary.is_file() or json.loads(summary.read_text()).get("teacher", plain) != teacher:
        pseudo_label_folder(
            converged_dir / "weights" / "last.pt",
            semi["unlabeled"],
            target,
            semi["filters"],
            imgsz=int(run_cfg["train"].get("imgsz", 640)),
            overwrite=True,  # no summary.json (an earlier attempt was cut short), or another teacher's labels
            teacher_flip=teacher["flip"],
            teacher_scale=teacher["scale"],
        )
    return target
